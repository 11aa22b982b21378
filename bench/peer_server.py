"""The line protocol of the PyTorch peers (torch_bench.py, train_row.py): one JSON request per line on
stdin, one JSON answer per line on stdout ({"ok": true, ...} or {"ok": false, "error": "..."});
{"op": "quit"} ends it. `handlers` maps each op to a function of the request returning a dict."""
import json
import sys


def serve(handlers):
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        try:
            req = json.loads(line)
            if req.get("op") == "quit":
                break
            answer = handlers[req["op"]](req)
            answer["ok"] = True
        except Exception as exc:
            answer = {"ok": False, "error": "%s: %s" % (type(exc).__name__, exc)}
        print(json.dumps(answer), flush=True)
