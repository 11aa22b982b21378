#!/usr/bin/env python3
"""PyTorch peer of bench/train-row.ts: one optimizer step of the demo's char-LM, over stdin/stdout.

train-row.ts starts it once per run and sends one JSON request per line; each answer is one JSON
line on stdout ({"ok": true, ...} or {"ok": false, "error": "..."}). Times are taken here, around
each step only (time.perf_counter), so the pipe adds nothing to the numbers.

Requests:
  {"op": "hello"}  -> {"torch", "python", "threads": torch.get_num_threads() at start}
  {"op": "setup", "B", "T", "V", "E", "H", "x": [ids], "y": [ids]}  -> {"config": description}
      nn.Embedding(V, E) + nn.LSTM(E, H, num_layers=2, dropout=0.1, batch_first=True) + nn.Linear(H, V),
      Adam(lr 0.006), clip_grad_norm_(5), CrossEntropyLoss; x and y are [B, T] ids (row-major).
  {"op": "measure", "calls", "threads"} -> {"ms": [one wall time per step], "threads": torch.get_num_threads()}
  {"op": "quit"}
"""
import json
import platform
import sys
import time

from peer_server import serve

try:
    import torch
    from torch import nn
except Exception as exc:  # torch is optional: report why, and let train-row.ts skip it
    print(json.dumps({"ok": False, "error": "cannot import torch: %s" % exc}), flush=True)
    sys.exit(0)

START_THREADS = torch.get_num_threads()
state = {}


class CharLM(nn.Module):
    def __init__(self, V, E, H):
        super().__init__()
        self.embedding = nn.Embedding(V, E)
        self.lstm = nn.LSTM(E, H, num_layers=2, dropout=0.1, batch_first=True)
        self.dense = nn.Linear(H, V)

    def forward(self, x):
        out, _ = self.lstm(self.embedding(x))
        return self.dense(out)


def hello(_req):
    return {"torch": torch.__version__, "python": platform.python_version(), "threads": START_THREADS}


def setup(req):
    B, T, V, E, H = int(req["B"]), int(req["T"]), int(req["V"]), int(req["E"]), int(req["H"])
    torch.manual_seed(1)
    model = CharLM(V, E, H)
    model.train()  # dropout on, as in rnnkit's computeGradients and tfjs's trainOnBatch
    x = torch.tensor(req["x"], dtype=torch.long).reshape(B, T)
    y = torch.tensor(req["y"], dtype=torch.long).reshape(B, T)
    state.update(
        model=model,
        params=list(model.parameters()),
        opt=torch.optim.Adam(model.parameters(), lr=0.006),
        loss=nn.CrossEntropyLoss(),
        x=x,
        y=y,
        V=V,
    )
    config = (
        "nn.Embedding(%d, %d) + nn.LSTM(%d, %d, num_layers=2, dropout=0.1, batch_first=True) + nn.Linear(%d, %d); "
        "Adam(lr=0.006); clip_grad_norm_(5); CrossEntropyLoss; float32" % (V, E, E, H, H, V)
    )
    return {"config": config}


def step():
    s = state
    s["opt"].zero_grad(set_to_none=True)
    logits = s["model"](s["x"])
    loss = s["loss"](logits.reshape(-1, s["V"]), s["y"].reshape(-1))
    loss.backward()
    nn.utils.clip_grad_norm_(s["params"], 5.0)
    s["opt"].step()
    return loss


def measure(req):
    threads = int(req.get("threads", 1))
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    times = []
    for _ in range(int(req["calls"])):
        t0 = time.perf_counter()
        step()
        times.append((time.perf_counter() - t0) * 1e3)
    return {"ms": times, "threads": torch.get_num_threads()}


HANDLERS = {"hello": hello, "setup": setup, "measure": measure}


if __name__ == "__main__":
    serve(HANDLERS)
