#!/usr/bin/env python3
"""The reliability benchmark (`bench/run reliability`), see docs/bench.md.

park: --executions executions whose HTTP step fails once (503) against a
  local service and is retried after 1 ms: the gap between the failed
  attempt's end and the next attempt's start is what parking costs (the
  worker ends, the store keeps the execution "waiting", the host's timer
  queues it again, a new worker restores its state). p50/p99 of that gap,
  next to the same gap for a baseline: the start of a fresh execution
  after the previous one ended, in the same run.
replay: --letters dead letters (the service down, two attempts each),
  then the service up and every letter replayed through the API:
  replayed executions per second until all have succeeded.
recover: --running executions blocked in a slow HTTP call and --queued
  more queued behind them (concurrency = --running), the host killed with
  SIGKILL, then started again: the time until /readyz answers 200 and a
  new execution is accepted. Target: serving again within 2 seconds.

A benchmark, not a test: it exits 0 whatever it measures and prints
"TARGET MISSED" where a figure misses its target. Python 3 standard
library.
"""

import argparse
import http.server
import json
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "serve"))
import serve_bench as sb  # noqa: E402  (Host, kill_all)


class Service:
    """/once/ID fails the first request per ID; /ok succeeds; /down fails
    while down is set; /slow sleeps a minute."""

    def __init__(self):
        self.seen = set()
        self.down = True
        self.lock = threading.Lock()
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(n)
                code = 200
                if self.path.startswith("/once/"):
                    with outer.lock:
                        if self.path not in outer.seen:
                            outer.seen.add(self.path)
                            code = 503
                elif self.path == "/down":
                    code = 503 if outer.down else 200
                elif self.path == "/slow":
                    time.sleep(60)
                self.send_response(code)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.server.daemon_threads = True
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def integration(url):
    def call(path, retry):
        step = {"name": "call", "action": "http.request",
                "input": {"method": "POST", "url": url + path,
                          "json": {"n": "{{ trigger.body.n }}"},
                          "max_retry_after": "0s", "timeout": "2m"}}
        if retry:
            step["retry"] = retry
        return [step]
    return {
        "name": "rel-bench", "version": "1.0.0",
        "flows": [
            {"name": "park",
             "steps": call("/once/{{ trigger.body.n }}",
                           {"max_attempts": 3, "initial": "1ms",
                            "max": "1ms", "jitter": False})},
            {"name": "plain", "steps": call("/ok", None)},
            {"name": "dead",
             "steps": call("/down", {"max_attempts": 2, "initial": "1ms",
                                     "max": "1ms", "jitter": False})},
            {"name": "slow", "steps": call("/slow", None)},
        ]}


def start(h, flow, n):
    st, body = h.request("POST", "/api/v1/instances/bench/flows/%s/"
                         "executions" % flow, {"n": n})
    if st != 202:
        raise RuntimeError("start %s: %d %s" % (flow, st, body[:200]))
    return json.loads(body)["id"]


def wait_all(h, ids, timeout=600):
    left = set(ids)
    deadline = time.monotonic() + timeout
    while left and time.monotonic() < deadline:
        for xid in list(left)[:200]:
            st, body = h.request("GET", "/api/v1/executions/" + xid)
            x = json.loads(body)
            if x["status"] in ("succeeded", "failed", "cancelled"):
                left.discard(xid)
        time.sleep(0.05)
    return not left


def us(text):
    """RFC 3339 UTC with a fraction to microseconds since the epoch."""
    import datetime
    body = text[:-1]
    fmt = "%Y-%m-%dT%H:%M:%S.%f" if "." in body else "%Y-%m-%dT%H:%M:%S"
    d = datetime.datetime.strptime(body, fmt).replace(
        tzinfo=datetime.timezone.utc)
    return int(d.timestamp() * 1e6)


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(len(v) * p / 100))] if v else float("nan")


def run_park(h, n):
    ids = [start(h, "park", i) for i in range(n)]
    wait_all(h, ids)
    gaps = []
    for xid in ids:
        x = json.loads(h.request("GET", "/api/v1/executions/" + xid)[1])
        calls = [s for s in x["steps"] if s["name"] == "call"]
        if len(calls) >= 2:
            end1 = us(calls[0]["started"]) + calls[0]["duration_us"]
            gaps.append((us(calls[1]["started"]) - end1) / 1000.0 - 1.0)
    # Baseline: one execution after another, the gap between the end of
    # one and the start of the next started as soon as it ended.
    base = []
    prev = None
    for i in range(min(n, 100)):
        xid = start(h, "plain", i)
        wait_all(h, [xid])
        x = json.loads(h.request("GET", "/api/v1/executions/" + xid)[1])
        s = x["steps"][0]
        if prev is not None:
            base.append((us(s["started"]) - prev) / 1000.0)
        prev = us(s["started"]) + s["duration_us"]
    print("park: %d executions parked once and resumed; gap from the "
          "failed attempt to the next: p50 %.1f ms, p99 %.1f ms; baseline "
          "(the next execution started by a client right after one ended): "
          "p50 %.1f ms, p99 %.1f ms" % (len(gaps), pct(gaps, 50),
                                        pct(gaps, 99), pct(base, 50),
                                        pct(base, 99)), flush=True)


def run_replay(h, svc, n):
    svc.down = True
    ids = [start(h, "dead", i) for i in range(n)]
    wait_all(h, ids)
    st, body = h.request("GET", "/api/v1/dead-letters?flow=dead&limit=100000")
    letters = [d["id"] for d in json.loads(body)]
    svc.down = False
    t0 = time.monotonic()
    new = []
    for lid in letters:
        st, body = h.request("POST", "/api/v1/dead-letters/%s/replay" % lid,
                             {})
        if st == 202:
            new.append(json.loads(body)["execution_id"])
    ok = wait_all(h, new)
    took = time.monotonic() - t0
    print("replay: %d dead letters replayed and run in %.2f s: %.0f "
          "executions/s%s" % (len(new), took, len(new) / took,
                              "" if ok else " (NOT ALL ENDED)"), flush=True)


def run_recover(build, root, svc, running, queued):
    h = sb.Host(build, root, "recover", concurrency=running)
    shutil.copy(os.path.join(build, "components", "http.so"), h.components)
    h.start()
    h.deploy(integration(svc.url), {"integration": "rel-bench",
                                    "name": "bench"})
    t0 = time.monotonic()
    lock = threading.Lock()
    count = [0]

    def starter(k):
        for i in range(k):
            start(h, "slow", i)
            with lock:
                count[0] += 1
    per = (running + queued) // 8 + 1
    threads = [threading.Thread(target=starter, args=(per,))
               for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    time.sleep(2)
    print("recover: %d executions started in %.1f s (%d running at once)"
          % (count[0], time.monotonic() - t0, running), flush=True)
    h.proc.send_signal(signal.SIGKILL)
    h.proc.wait()
    sb.kill_all()
    time.sleep(0.5)
    h.log = open(os.path.join(h.dir, "host2.log"), "w")
    h.port = None
    os.unlink(h.port_file)
    t0 = time.monotonic()
    h.start()
    ready = time.monotonic() - t0
    start(h, "plain", 1)
    serving = time.monotonic() - t0
    st, body = h.request("GET", "/metrics")
    print("recover: after SIGKILL with %d queued and %d running, ready "
          "(/readyz 200) in %.2f s, a new execution accepted at %.2f s%s"
          % (queued, running, ready, serving,
             "" if serving < 2.0 else "  TARGET MISSED (2 s)"), flush=True)
    h.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    ap.add_argument("--executions", type=int, default=300)
    ap.add_argument("--letters", type=int, default=500)
    ap.add_argument("--running", type=int, default=100)
    ap.add_argument("--queued", type=int, default=10000)
    ap.add_argument("--tmpdir")
    ap.add_argument("parts", nargs="*", default=["park", "replay", "recover"])
    a = ap.parse_args()
    signal.signal(signal.SIGTERM, sb.on_signal)
    root = tempfile.mkdtemp(prefix="ferry-bench-rel-", dir=a.tmpdir)
    svc = Service()
    try:
        if "park" in a.parts or "replay" in a.parts:
            h = sb.Host(a.build, root, "main", concurrency=16)
            shutil.copy(os.path.join(a.build, "components", "http.so"),
                        h.components)
            h.start()
            h.deploy(integration(svc.url), {"integration": "rel-bench",
                                            "name": "bench"})
            if "park" in a.parts:
                run_park(h, a.executions)
            if "replay" in a.parts:
                run_replay(h, svc, a.letters)
            h.stop()
        if "recover" in a.parts:
            run_recover(a.build, root, svc, a.running, a.queued)
    finally:
        sb.kill_all()
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
