#!/usr/bin/env python3
"""Retries, parked executions and dead letters in `ferry serve`, against a
flaky loopback HTTP service (in this process) that fails requests with 503,
some with Retry-After, and records every record it accepted.

Cases: 1,000 records through a flow with a retry policy all arrive exactly
once, the retries parking the executions (no worker waits); with the
service down, every record ends in the dead letters after its attempts, and
`ferry dlq replay --all` after it recovers delivers them all; on_error
"continue"; a replay from the failing step; an execution parked across a
host restart goes on after it.

Environment (set by CMakeLists.txt): as for test_serve.py, plus
FERRY_COMPONENTS_BUILD (where http.so is). Prints "ok - NAME" / "not ok -
NAME: why", then "N passed, M failed". Python 3 standard library only.
"""

import http.server
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_serve as ts  # noqa: E402
from test_serve import check, case  # noqa: E402

COMPONENTS_BUILD = os.environ.get("FERRY_COMPONENTS_BUILD", "")
INSTANCE = "retrier"
RECORDS = 200 if ts.SANITIZED else 1000
DOWN_RECORDS = 40


class Flaky:
    """The service: mode "flaky" fails half the requests with 503 (a third
    of those with Retry-After: 1), "down" fails all, "up" fails none. A
    record is accepted once per 200 answer; accepted[id] counts them."""

    def __init__(self):
        self.mode = "flaky"
        self.lock = threading.Lock()
        self.accepted = {}
        self.requests = 0
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(n) or b"{}")
                with outer.lock:
                    outer.requests += 1
                    fail = outer.mode == "down" or (
                        outer.mode == "flaky" and random.random() < 0.5)
                    if not fail:
                        rid = str(body.get("id"))
                        outer.accepted[rid] = outer.accepted.get(rid, 0) + 1
                if fail:
                    self.send_response(503)
                    if random.random() < 0.33:
                        self.send_header("Retry-After", "1")
                    self.send_header("Content-Type", "application/json")
                    self.end_headers()
                    self.wfile.write(b'{"error":"busy"}')
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(json.dumps({"ok": True}).encode())

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self):
        return "http://127.0.0.1:%d/records" % self.port


def integration():
    call = {"name": "call", "action": "http.request",
            "input": {"method": "POST", "url": "{{ config.url }}",
                      "json": {"id": "{{ trigger.body.id }}"},
                      "max_retry_after": "0s"}}
    return {
        "name": "retries-test", "version": "1.0.0",
        "config": {"url": {"type": "string", "required": True}},
        "flows": [
            {"name": "deliver",
             "steps": [dict(call, retry={"max_attempts": 30,
                                         "initial": "100ms", "max": "400ms"})]},
            {"name": "give_up",
             "steps": [dict(call, retry={"max_attempts": 3,
                                         "initial": "50ms", "max": "100ms"})]},
            {"name": "lenient",
             "steps": [dict(call, on_error="continue"),
                       {"name": "after", "action": "core.set",
                        "input": {"value": "{{ steps.call.output }}"}}]},
            {"name": "two_steps",
             "steps": [{"name": "prepare", "action": "core.set",
                        "input": {"value": {"id": "{{ trigger.body.id }}",
                                            "prepared": True}}},
                       {"name": "send", "action": "http.request",
                        "on_error": "dead_letter",
                        "input": {"method": "POST", "url": "{{ config.url }}",
                                  "json": "{{ steps.prepare.output }}"}}]},
            {"name": "resumable",
             "steps": [{"name": "first", "action": "core.set",
                        "input": {"value": {"id": "{{ trigger.body.id }}"}}},
                       {"name": "nap", "action": "chaos.isleep",
                        "input": {"ms": 3000}},
                       {"name": "last", "action": "core.set",
                        "input": {"value": "{{ steps.first.output }}"}}]},
            {"name": "not_resumable",
             "steps": [{"name": "first", "action": "core.set",
                        "input": {"value": 1}},
                       {"name": "nap", "action": "chaos.sleep",
                        "input": {"ms": 3000}}]},
            {"name": "slow",
             "steps": [dict(call, retry={"max_attempts": 3, "initial": "4s",
                                         "max": "4s", "jitter": False})]},
        ]}


def start(h, flow, rid):
    r = h.request("POST", "/api/v1/instances/%s/flows/%s/executions"
                  % (INSTANCE, flow), {"id": rid})
    check(r.status == 202, "start %s: %r" % (flow, r))
    return r.json["id"]


def executions(h, flow):
    r = h.get("/api/v1/executions", query={"instance": INSTANCE,
                                           "flow": flow, "limit": 10000})
    check(r.status == 200, "list: %r" % r)
    return r.json


def wait_all_final(h, flow, n, timeout):
    deadline = time.monotonic() + timeout
    while True:
        xs = executions(h, flow)
        done = [x for x in xs if x["status"] in ts.FINAL]
        if len(xs) >= n and len(done) == len(xs):
            return xs
        check(time.monotonic() < deadline,
              "%d of %d executions of %s ended after %d s (statuses %r)"
              % (len(done), n, flow, timeout,
                 sorted({x["status"] for x in xs})))
        time.sleep(0.2)


def wait_for_value(what, fn, timeout):
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        check(time.monotonic() < deadline, what)
        time.sleep(0.2)


def dlq(h, *args):
    p = subprocess.run([ts.FERRY, "dlq"] + list(args) +
                       ["--host", "http://127.0.0.1:%d" % h.port,
                        "--api-token", ts.TOKEN],
                       capture_output=True, text=True, timeout=120)
    return p


def cases(root):
    svc = Flaky()
    comps = os.path.join(root, "components")
    os.makedirs(comps)
    shutil.copy(os.path.join(COMPONENTS_BUILD, "http.so"), comps)
    shutil.copy(os.path.join(ts.FIXTURES, "chaos.so"), comps)
    h = ts.Host(root, "retries", components=comps,
                limits={"timeout": "30s", "concurrency": 8})
    h.start()
    ts.current["host"] = h

    def deploy():
        r = h.deploy(integration=integration(),
                     instance={"integration": "retries-test",
                               "name": INSTANCE,
                               "config": {"url": svc.url()}})
        check(r.status == 201, "deploy: %r" % r)
    case("deploy flows with retry policies", deploy)

    def exactly_once():
        t0 = time.monotonic()
        for i in range(RECORDS):
            start(h, "deliver", "r%d" % i)
        xs = wait_all_final(h, "deliver", RECORDS, 300)
        bad = [x for x in xs if x["status"] != "succeeded"]
        check(not bad, "%d executions did not succeed: %r"
              % (len(bad), [(x["id"], ts.message(x)) for x in bad[:3]]))
        want = {"r%d" % i for i in range(RECORDS)}
        missing = want - set(svc.accepted)
        doubled = {k: v for k, v in svc.accepted.items() if v != 1}
        check(not missing, "%d records never arrived" % len(missing))
        check(not doubled, "records accepted more than once: %r"
              % list(doubled.items())[:5])
        # Retries happened, and parked: a step recorded more than once.
        sample = [h.execution(x["id"]) for x in xs[:60]]
        retried = [x for x in sample
                   if sum(1 for s in x["steps"] if s["name"] == "call") > 1]
        parked = [x for x in sample if any(
            "the execution waits, parked" in ln["message"]
            for ln in x["logs"])]
        print("# %d records in %.1f s, %d service requests; of 60 looked "
              "at, %d retried, %d parked"
              % (RECORDS, time.monotonic() - t0, svc.requests, len(retried),
                 len(parked)), flush=True)
        check(retried and parked, "no retry seen in 60 executions")
    case("1,000 records through a flaky service with retries: each arrives "
         "exactly once" if not ts.SANITIZED else
         "200 records through a flaky service with retries: each arrives "
         "exactly once", exactly_once)

    def dead_letters():
        svc.mode = "down"
        for i in range(DOWN_RECORDS):
            start(h, "give_up", "d%d" % i)
        xs = wait_all_final(h, "give_up", DOWN_RECORDS, 120)
        check(all(x["status"] == "failed" for x in xs), "statuses: %r"
              % sorted({x["status"] for x in xs}))
        r = h.get("/api/v1/dead-letters", query={"flow": "give_up"})
        check(r.status == 200 and len(r.json) == DOWN_RECORDS,
              "dead letters: %r" % r)
        d = r.json[0]
        check(d["step"] == "call" and d["attempts"] == 3 and
              d["state"] == "open" and "503" in d["error_message"],
              "a letter: %r" % d)
        p = dlq(h, "show", d["id"])
        check(p.returncode == 0, "dlq show: %s" % p.stderr)
        full = json.loads(p.stdout)
        check(full["trigger"]["body"]["id"].startswith("d") and
              full["input"]["method"] == "POST",
              "shown: %r" % {k: full.get(k) for k in ("trigger", "input")})
        p = dlq(h, "list", "--flow", "give_up")
        check(p.returncode == 0 and len(p.stdout.splitlines()) ==
              DOWN_RECORDS, "dlq list: %s %s" % (p.stdout[:300], p.stderr))
        before = dict(svc.accepted)
        svc.mode = "up"
        p = dlq(h, "replay", "--all", "--flow", "give_up")
        check(p.returncode == 0 and ("%d dead letter(s) replayed"
                                     % DOWN_RECORDS) in p.stdout,
              "replay --all: %s %s" % (p.stdout[-300:], p.stderr))
        xs = wait_all_final(h, "give_up", 2 * DOWN_RECORDS, 120)
        replays = [x for x in xs if x["status"] == "succeeded"]
        check(len(replays) == DOWN_RECORDS, "%d replays succeeded"
              % len(replays))
        got = {k for k, v in svc.accepted.items() if k.startswith("d")}
        check(got == {"d%d" % i for i in range(DOWN_RECORDS)} and
              not any(k.startswith("d") for k in before),
              "delivered after the replay: %d" % len(got))
        r = h.get("/api/v1/dead-letters", query={"flow": "give_up",
                                                 "state": "replayed"})
        check(len(r.json) == DOWN_RECORDS and
              all(x["replayed_by"] for x in r.json), "replayed: %r"
              % r.json[:1])
        x = h.execution(replays[0]["id"])
        check(x["trigger"]["replay"]["dead_letter"].startswith("dl"),
              "replay link: %r" % x["trigger"].get("replay"))
        p = dlq(h, "replay", d["id"])
        check(p.returncode != 0 and "not open" in p.stderr,
              "a second replay: %d %s" % (p.returncode, p.stderr))
    case("with the service down every record ends in the dead letters; "
         "`ferry dlq replay --all` delivers them all", dead_letters)

    def lenient():
        svc.mode = "down"
        x = h.wait_done(start(h, "lenient", "l1"))
        check(x["status"] == "succeeded" and
              x["output"]["error"]["code"] == "FERRY_EUNAVAIL",
              "on_error continue: %s %r" % (x["status"], x.get("output")))
        svc.mode = "up"
    case("on_error continue: the error becomes the step's output", lenient)

    def from_step():
        svc.mode = "down"
        x = h.wait_done(start(h, "two_steps", "s1"))
        check(x["status"] == "failed", "two_steps: %s" % x["status"])
        r = h.get("/api/v1/dead-letters", query={"flow": "two_steps"})
        check(len(r.json) == 1 and r.json[0]["step"] == "send",
              "letters: %r" % r.json)
        svc.mode = "up"
        p = dlq(h, "replay", r.json[0]["id"], "--from-step", "prepare")
        check(p.returncode != 0 and "only from the step that failed" in
              p.stderr, "from another step: %s" % p.stderr)
        p = dlq(h, "replay", r.json[0]["id"], "--from-step", "send")
        check(p.returncode == 0, "replay: %s" % p.stderr)
        xid = p.stdout.split()[-1]
        x = h.wait_done(xid)
        check(x["status"] == "succeeded" and
              [s["name"] for s in x["steps"]] == ["send"],
              "went on from send: %s %r" % (x["status"],
                                            [s["name"] for s in x["steps"]]))
        check(svc.accepted.get("s1") == 1, "delivered: %r"
              % svc.accepted.get("s1"))
    case("a replay from the failing step goes on with the outputs it had",
         from_step)

    def across_restart():
        svc.mode = "down"
        xid = start(h, "slow", "w1")
        h.wait_status(xid, ("waiting",), timeout=20)
        h.signal(signal.SIGTERM)
        check(h.wait_exit(15) == 0, "the host did not stop")
        ts.wait_gone(h.dir, 5)
        svc.mode = "up"
        h.start()
        x = h.wait_done(xid, timeout=30)
        check(x["status"] == "succeeded", "after the restart: %s %s"
              % (x["status"], ts.message(x)))
        calls = [s for s in x["steps"] if s["name"] == "call"]
        check(len(calls) == 2 and calls[0]["status"] == "failed",
              "steps: %r" % [(s["name"], s["status"]) for s in x["steps"]])
        check(svc.accepted.get("w1") == 1, "w1 delivered %r times"
              % svc.accepted.get("w1"))
    case("an execution parked for a retry goes on after a host restart",
         across_restart)

    def cancel_waiting():
        svc.mode = "down"
        xid = start(h, "slow", "c9")
        h.wait_status(xid, ("waiting",), timeout=20)
        r = h.request("DELETE", "/api/v1/executions/" + xid)
        check(r.status == 200 and r.json["status"] == "cancelled",
              "cancel: %r" % r)
        time.sleep(5)  # past its due time: it must not run again
        x = h.execution(xid)
        check(x["status"] == "cancelled" and
              len([s for s in x["steps"] if s["name"] == "call"]) == 1,
              "after its due time: %s %r" % (x["status"],
                                             [s["name"] for s in x["steps"]]))
        svc.mode = "up"
    case("an execution waiting for a retry can be cancelled", cancel_waiting)

    def crash_resume():
        a = start(h, "resumable", "c1")
        b = start(h, "not_resumable", "c2")
        for xid in (a, b):
            wait = time.monotonic() + 20
            while True:
                x = h.execution(xid)
                if any(s["name"] == "first" for s in x["steps"]):
                    break
                check(time.monotonic() < wait, "%s never got going" % xid)
                time.sleep(0.05)
        time.sleep(0.3)  # both inside their 3 s nap
        ts.current["host"] = None
        os.kill(h.proc.pid, signal.SIGKILL)
        h.proc.wait(5)
        ts.wait_gone(h.dir, 3)
        h.kill_all()
        h.start()
        ts.current["host"] = h
        x = h.wait_done(a, timeout=30)
        names = [s["name"] for s in x["steps"]]
        check(x["status"] == "succeeded" and x["output"] == {"id": "c1"} and
              names.count("first") == 1 and names[-1] == "last",
              "the idempotent step's execution: %s %r %r"
              % (x["status"], x.get("output"), names))
        y = h.wait_done(b, timeout=30)
        check(y["status"] == "failed" and
              ts.message(y).startswith("interrupted:"),
              "the other: %s %r" % (y["status"], ts.message(y)))
    case("after a SIGKILL, an execution whose running step is idempotent "
         "goes on from it (earlier steps not run again); another is "
         "interrupted", crash_resume)
    def retention():
        h.signal(signal.SIGTERM)
        check(h.wait_exit(15) == 0, "the host did not stop")
        ts.wait_gone(h.dir, 5)
        with open(h.config) as f:
            cfg = json.load(f)
        cfg["retention"] = {"executions": "3s", "dead_letters": "3s"}
        with open(h.config, "w") as f:
            json.dump(cfg, f)
        svc.mode = "down"
        h.start()
        before = len(h.get("/api/v1/executions",
                           query={"limit": 10000}).json)
        open_before = len(h.get("/api/v1/dead-letters",
                                query={"state": "open"}).json)
        keep = start(h, "slow", "k1")  # parks for 4 s: never deleted
        h.wait_status(keep, ("waiting",), timeout=20)

        def pruned():
            xs = h.get("/api/v1/executions", query={"limit": 10000}).json
            return xs if len(xs) <= 2 else None
        xs = wait_for_value("old executions not deleted", pruned, 30)
        check(keep in [x["id"] for x in xs], "the waiting execution was "
              "deleted")
        letters = h.get("/api/v1/dead-letters", query={"state": "all"}).json
        check(all(d["state"] == "open" for d in letters) and
              len(letters) == open_before,
              "dead letters after retention: %r"
              % sorted({d["state"] for d in letters}))
        m = h.get("/metrics").text
        print("# %d executions before, %d after; %s" % (
            before, len(xs), [ln for ln in m.splitlines()
                              if ln.startswith("ferry_pruned_total")]),
              flush=True)
        svc.mode = "up"
    case("retention deletes old ended executions and replayed letters, "
         "never a waiting one or an open letter", retention)
    ts.stop(ts.current)
    svc.server.shutdown()


def main():
    return ts.run_suite("ferry-retries-", cases,
                        (os.path.join(COMPONENTS_BUILD, "http.so"),))


if __name__ == "__main__":
    sys.exit(main())
