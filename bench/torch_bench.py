#!/usr/bin/env python3
"""PyTorch peer of bench/bench.ts: a small server driven over stdin/stdout.

bench.ts starts it once per run and sends one JSON request per line; each answer is one
JSON line on stdout ({"ok": true, ...} or {"ok": false, "error": "..."}). Timing happens
here, around each call only (time.perf_counter), so the pipe adds nothing to the numbers.
Keeping one process alive lets bench.ts interleave PyTorch with the other implementations.

Requests:
  {"op": "hello"}                        -> {"torch": version, "python": version, "blas": ...}
  {"op": "setup", "id", "cell": "lstm"|"gru", "work": "forward"|"train",
   "B", "T", "I", "H", "layers", "bidirectional",
   "params": [[name, [shape...]], ...], "weights": path, "x": path, "dy": path|null}
      Builds nn.LSTM / nn.GRU (batch_first) and loads the weights: the file `weights` holds the
      float32 tensors of `params` back to back (PyTorch names, layouts and gate orders, which are
      rnnkit's own). `x` is [B, T, I], `dy` [B, T, dirs*H], raw little-endian float32.
  {"op": "check", "id", "out": path}     -> writes the inference output [B, T, dirs*H] to `out`
  {"op": "measure", "id", "calls", "threads"} -> {"ms": [one wall time per call]}
  {"op": "release", "id"}
  {"op": "quit"}

"forward" is inference (torch.no_grad). "train" is forward plus backward: torch.autograd.grad of
the output with grad_outputs=dy, for every parameter and for x (rnnkit's backward returns dx too).
"""
import array
import json
import platform
import sys
import time

from peer_server import serve

try:
    import torch
except Exception as exc:  # torch is optional: report why, and let bench.ts skip it
    print(json.dumps({"ok": False, "error": "cannot import torch: %s" % exc}), flush=True)
    sys.exit(0)

torch.set_grad_enabled(False)
models = {}


def read_f32(path, shape):
    with open(path, "rb") as f:
        data = bytearray(f.read())
    t = torch.frombuffer(data, dtype=torch.float32)
    n = 1
    for d in shape:
        n *= d
    if t.numel() != n:
        raise ValueError("%s holds %d floats, expected %d for shape %s" % (path, t.numel(), n, shape))
    return t.reshape(shape).clone()


def setup(req):
    B, T, I, H = req["B"], req["T"], req["I"], req["H"]
    bidirectional = bool(req.get("bidirectional", False))
    dirs = 2 if bidirectional else 1
    cls = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[req["cell"]]
    model = cls(I, H, num_layers=req.get("layers", 1), bidirectional=bidirectional, batch_first=True)
    with open(req["weights"], "rb") as f:
        blob = bytearray(f.read())
    flat = torch.frombuffer(blob, dtype=torch.float32)
    state, offset = {}, 0
    for name, shape in req["params"]:
        n = 1
        for d in shape:
            n *= d
        state[name] = flat[offset:offset + n].reshape(shape).clone()
        offset += n
    if offset != flat.numel():
        raise ValueError("weights file holds %d floats, params describe %d" % (flat.numel(), offset))
    model.load_state_dict(state, strict=True)
    model.eval()
    x = read_f32(req["x"], [B, T, I])
    dy = read_f32(req["dy"], [B, T, dirs * H]) if req.get("dy") else None
    models[req["id"]] = {"model": model, "x": x, "dy": dy, "work": req["work"]}
    return {}


def check(req):
    m = models[req["id"]]
    out, _ = m["model"](m["x"])
    flat = out.contiguous().reshape(-1)
    try:
        data = flat.numpy().tobytes()
    except Exception:  # a torch without numpy
        data = array.array("f", flat.tolist()).tobytes()
    with open(req["out"], "wb") as f:
        f.write(data)
    return {}


def measure(req):
    m = models[req["id"]]
    threads = int(req.get("threads", 1))
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    model, x, dy = m["model"], m["x"], m["dy"]
    times = []
    if m["work"] == "forward":
        for _ in range(int(req["calls"])):
            t0 = time.perf_counter()
            out, _ = model(x)
            times.append((time.perf_counter() - t0) * 1e3)
    else:
        params = list(model.parameters())
        xg = x.detach().requires_grad_(True)
        for _ in range(int(req["calls"])):
            t0 = time.perf_counter()
            with torch.enable_grad():
                out, _ = model(xg)
                torch.autograd.grad(out, params + [xg], grad_outputs=dy)
            times.append((time.perf_counter() - t0) * 1e3)
    return {"ms": times}


def hello(_req):
    return {
        "torch": torch.__version__,
        "python": platform.python_version(),
        "threads": torch.get_num_threads(),
    }


def release(req):
    models.pop(req["id"], None)
    return {}


HANDLERS = {"hello": hello, "setup": setup, "check": check, "measure": measure, "release": release}


if __name__ == "__main__":
    serve(HANDLERS)
