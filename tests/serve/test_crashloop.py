#!/usr/bin/env python3
"""Crash loop: `ferry serve` under a mixed load — signed webhooks, a
schedule every second, a polled directory filling up, executions parked
for retries against a flaky service — killed with SIGKILL 20 times at
random moments and restarted each time on the same store.

Afterwards: no execution is left "running" (or "queued"); every webhook
that was answered 202 has its execution, ended; every polled file ran to
an end and was moved out of the directory; no step succeeded twice in one
execution (a resumed execution does not repeat what it had done); every
waiting retry was taken up.

Environment: as for test_serve.py, plus FERRY_COMPONENTS_BUILD (http.so).
Prints "ok - NAME" / "not ok - NAME: why", then "N passed, M failed".
Python 3 standard library only.
"""

import hashlib
import hmac
import http.client
import http.server
import json
import os
import random
import shutil
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_serve as ts  # noqa: E402
from test_serve import check, case  # noqa: E402

COMPONENTS_BUILD = os.environ.get("FERRY_COMPONENTS_BUILD", "")
INSTANCE = "looped"
SECRET = "crash-secret-" + os.urandom(4).hex()
KILLS = 20


class Flaky:
    def __init__(self):
        self.lock = threading.Lock()
        self.accepted = {}
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(n) or b"{}")
                ok = random.random() < 0.5
                if ok:
                    with outer.lock:
                        k = str(body.get("id"))
                        outer.accepted[k] = outer.accepted.get(k, 0) + 1
                self.send_response(200 if ok else 503)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b"{}")

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def integration(url, inbox):
    return {
        "name": "crashloop", "version": "1.0.0",
        "config": {"secret": {"type": "string", "secret": True,
                              "required": True}},
        "flows": [
            {"name": "hook",
             "trigger": {"type": "webhook",
                         "verify": {"scheme": "hmac", "header": "X-Sig",
                                    "algorithm": "sha256", "encoding": "hex",
                                    "secret": "{{ config.secret }}"}},
             "steps": [{"name": "a", "action": "core.set",
                        "input": {"value": "{{ trigger.body.n }}"}},
                       {"name": "nap", "action": "chaos.isleep",
                        "input": {"ms": 30}},
                       {"name": "b", "action": "core.set",
                        "input": {"value": "{{ steps.a.output }}"}}]},
            {"name": "tick",
             "trigger": {"type": "schedule", "every": "1s",
                         "misfire": "run_once"},
             "steps": [{"name": "t", "action": "core.set",
                        "input": {"value": "{{ trigger.scheduled }}"}}]},
            {"name": "files",
             "trigger": {"type": "poll", "source": "file.poll", "every": "1s",
                         "options": {"directory": inbox,
                                     "read_lock": "none"}},
             "steps": [{"name": "f", "action": "core.set",
                        "input": {"value": "{{ trigger.item.name }}"}},
                       {"name": "nap", "action": "chaos.isleep",
                        "input": {"ms": 50}}]},
            {"name": "deliver",
             "steps": [{"name": "call", "action": "http.request",
                        "retry": {"max_attempts": 40, "initial": "200ms",
                                  "max": "500ms"},
                        "input": {"method": "POST", "url": url,
                                  "json": {"id": "{{ trigger.body.id }}"},
                                  "max_retry_after": "0s"}}]},
        ]}


class Load:
    """Sends webhooks and starts deliveries until stopped; remembers
    every acknowledged webhook and started delivery."""

    def __init__(self, h, inbox):
        self.h = h
        self.inbox = inbox
        self.acked = {}
        self.delivers = {}
        self.files = []
        self.n = 0
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            self.n += 1
            n = self.n
            body = json.dumps({"n": n}).encode()
            sig = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.h.port,
                                               timeout=5)
                c.request("POST", "/webhooks/%s/hook" % INSTANCE, body=body,
                          headers={"Content-Type": "application/json",
                                   "X-Sig": sig})
                r = c.getresponse()
                data = r.read()
                c.close()
                if r.status == 202:
                    self.acked[n] = json.loads(data)["execution_id"]
                if n % 5 == 0:
                    r = self.h.request(
                        "POST", "/api/v1/instances/%s/flows/deliver/"
                        "executions" % INSTANCE, {"id": "d%d" % n}, timeout=5)
                    if r.status == 202:
                        self.delivers["d%d" % n] = r.json["id"]
                if n % 3 == 0:
                    name = "f%05d.txt" % n
                    tmp = os.path.join(self.inbox, "..", name)
                    with open(tmp, "w") as f:
                        f.write(name)
                    os.rename(tmp, os.path.join(self.inbox, name))
                    self.files.append(name)
            except (OSError, http.client.HTTPException, ts.Fail, ValueError):
                time.sleep(0.05)
            time.sleep(0.01)


def cases(root):
    svc = Flaky()
    comps = os.path.join(root, "components")
    os.makedirs(comps)
    shutil.copy(os.path.join(COMPONENTS_BUILD, "http.so"), comps)
    shutil.copy(os.path.join(ts.FIXTURES, "chaos.so"), comps)
    inbox = os.path.join(root, "inbox")
    os.makedirs(inbox)
    h = ts.Host(root, "loop", components=comps, limits={"timeout": "30s"})
    h.start()
    ts.current["host"] = h
    state = {}

    def deploy():
        r = h.deploy(
            integration=integration("http://127.0.0.1:%d/" % svc.port, inbox),
            instance={"integration": "crashloop", "name": INSTANCE,
                      "config": {"secret": SECRET}})
        check(r.status == 201, "deploy: %r" % r)
    case("deploy webhook, schedule, poll and retrying flows", deploy)

    def loop():
        load = Load(h, inbox)
        t = threading.Thread(target=load.run, daemon=True)
        t.start()
        rnd = random.Random(7)
        for k in range(KILLS):
            time.sleep(rnd.uniform(0.3, 1.2))
            os.kill(h.proc.pid, signal.SIGKILL)
            h.proc.wait(5)
            ts.wait_gone(h.dir, 3)
            h.kill_all()
            h.start()
        time.sleep(1.0)
        load.stop.set()
        t.join(10)
        state["load"] = load
        print("# %d kills; %d webhooks acknowledged, %d deliveries started, "
              "%d files dropped" % (KILLS, len(load.acked),
                                    len(load.delivers), len(load.files)),
              flush=True)
        check(load.acked and load.files and load.delivers,
              "the load did not get through at all")
    case("20 SIGKILLs at random moments during the load, each followed by "
         "a restart", loop)

    def settled():
        load = state.get("load")
        check(load, "no load")
        deadline = time.monotonic() + 180
        while True:
            xs = h.get("/api/v1/executions", query={"limit": 10000}).json
            busy = [x for x in xs
                    if x["status"] in ("running", "queued", "waiting")]
            files_left = [n for n in os.listdir(inbox)
                          if not n.startswith(".")]
            if not busy and not files_left:
                break
            check(time.monotonic() < deadline,
                  "after 180 s: %d executions %r, %d files left"
                  % (len(busy), sorted({x["status"] for x in busy}),
                     len(files_left)))
            time.sleep(0.5)
        state["xs"] = xs
    case("everything settles: nothing running, queued or waiting, the "
         "directory empty", settled)

    def end_states():
        load, xs = state.get("load"), state.get("xs")
        check(load and xs is not None, "no settled state")
        by_id = {x["id"]: x for x in xs}
        missing = [n for n, xid in load.acked.items() if xid not in by_id]
        check(not missing, "%d acknowledged webhooks have no execution: %r"
              % (len(missing), missing[:5]))
        statuses = {}
        for xid in load.acked.values():
            st = by_id[xid]["status"]
            statuses[st] = statuses.get(st, 0) + 1
        check(set(statuses) <= {"succeeded", "failed"},
              "webhook statuses: %r" % statuses)
        done = set(os.listdir(os.path.join(inbox, ".done"))) | set(
            os.listdir(os.path.join(inbox, ".error"))
            if os.path.isdir(os.path.join(inbox, ".error")) else [])
        lost = [f for f in load.files if f not in done]
        check(not lost, "%d dropped files not moved: %r" % (len(lost),
                                                             lost[:5]))
        dl = {x["id"] for x in xs if x["flow"] == "deliver" and
              x["status"] == "succeeded"}
        doubled = {k: v for k, v in svc.accepted.items() if v > 1}
        print("# webhook executions %r; deliveries succeeded %d of %d; "
              "records accepted twice %d" % (statuses, len(dl),
                                             len(load.delivers),
                                             len(doubled)), flush=True)
        twice = []
        sample = [x for x in xs if x["flow"] in ("hook", "files")][-300:]
        for x in sample:
            full = h.execution(x["id"])
            names = [s["path"] for s in full["steps"]
                     if s["status"] == "succeeded"]
            if len(names) != len(set(names)):
                twice.append((x["id"], names))
        check(not twice, "steps that succeeded twice in one execution: %r"
              % twice[:3])
    case("every acknowledged webhook and polled file ran to an end; no step "
         "succeeded twice in one execution", end_states)
    ts.stop(ts.current)
    svc.server.shutdown()


def main():
    return ts.run_suite("ferry-crashloop-", cases,
                        (os.path.join(COMPONENTS_BUILD, "http.so"),))


if __name__ == "__main__":
    sys.exit(main())
