#!/usr/bin/env python3
"""The sample's ERP: a small order API on 127.0.0.1.

    erp-api.py --port-file FILE --received DIR [--token T]
               [--fail-first N] [--down-for ORDER]...

POST /v1/orders takes an order {"orderId": ID, "lines": [...], ...} and
answers 201 {"orderId": ID, "lines": N}; each accepted order is written
to DIR/ID.json.
--token: requests must carry "Authorization: Bearer T" (401 otherwise).
--fail-first N: the first N posts (of orders not in --down-for) get a 503 (a passing outage, which the
flow's step retry absorbs). --down-for NAME: every post of that order gets
a 503 (an outage that outlasts the retries). GET /__report answers what
was received: {"orders": {ID: lines}, "posts", "rejected", "failed"}.
Exits when its standard input closes. Python 3 standard library only.
"""

import argparse
import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

lock = threading.Lock()
state = {"orders": {}, "posts": 0, "rejected": 0, "failed": 0}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--received", required=True)
    ap.add_argument("--token")
    ap.add_argument("--fail-first", type=int, default=0)
    ap.add_argument("--down-for", action="append", default=[])
    a = ap.parse_args()
    left = [a.fail_first]

    class H(BaseHTTPRequestHandler):
        def answer(self, status, body):
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            if self.path == "/__report":
                with lock:
                    return self.answer(200, state)
            self.answer(404, {"error": "not found"})

        def do_POST(self):
            n = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(n)
            if self.path != "/v1/orders":
                return self.answer(404, {"error": "not found"})
            with lock:
                state["posts"] += 1
            if a.token and self.headers.get("Authorization") != \
                    "Bearer " + a.token:
                with lock:
                    state["rejected"] += 1
                return self.answer(401, {"error": "invalid token"})
            try:
                body = json.loads(raw)
                name, rows = body["orderId"], body["lines"]
                assert isinstance(name, str) and isinstance(rows, list)
                assert "/" not in name and not name.startswith(".")
            except (ValueError, KeyError, TypeError, AssertionError):
                with lock:
                    state["rejected"] += 1
                return self.answer(400, {"error": "expected an order with orderId and lines"})
            with lock:
                if name in a.down_for or left[0] > 0:
                    if name not in a.down_for:
                        left[0] -= 1
                    state["failed"] += 1
                    return self.answer(503, {"error": "try again later"})
                state["orders"][name] = len(rows)
            with open(os.path.join(a.received, name + ".json"), "w") as f:
                json.dump(body, f, indent=1)
            self.answer(201, {"orderId": name, "lines": len(rows)})

        def log_message(self, fmt, *args):
            sys.stderr.write("erp-api: %s\n" % (fmt % args))

    srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
    tmp = a.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % srv.server_address[1])
    os.rename(tmp, a.port_file)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    sys.stdin.read()  # until the run script ends
    srv.shutdown()


if __name__ == "__main__":
    main()
