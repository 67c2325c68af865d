#!/usr/bin/env python3
"""Durability of webhooks in `ferry serve`: a host is sent 2,000 signed
async webhooks from several keep-alive connections, killed with SIGKILL in
the middle of the burst, and restarted on the same store. Every request
that was answered 2xx must have its execution in the store exactly once,
with the execution id it was answered with, and none may be lost or doubled.

What counts:
  acknowledged  the requests answered 202 before the kill;
  ran once      acknowledged, exactly one execution, "succeeded", output n;
  interrupted   acknowledged, exactly one execution, "failed" with
                "interrupted: ..." -- it was running when the host died,
                and the host does not run it again (a queued one is run
                after the restart). It started once and never twice, so it
                is not a duplicate and not lost; the count is reported;
  lost          acknowledged and no execution (must be 0);
  duplicates    any n with more than one execution (must be 0).
A request that got no answer (in flight at the kill) may have run or not,
but at most once; one never sent must not have run.

Uses the Host helper of test_serve.py and its environment (FERRY_BIN,
FERRY_SERVE_FIXTURES, FERRY_SERVE_DEFS); FERRY_QUEUE_IN_MEMORY sets the
host's limits.queue_in_memory (run so by test_durability_spill). Definitions:
durability.integration.json and durability.instance.json.

Prints "ok - NAME" or "not ok - NAME: why" per case, then "N passed, M
failed"; exits 1 if anything failed. Python 3 standard library only.
"""

import hashlib
import hmac
import http.client
import json
import os
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_serve as ts  # noqa: E402
from test_serve import check, case  # noqa: E402

with open(os.path.join(ts.DEFS, "durability.integration.json")) as f:
    INTEGRATION = json.load(f)
with open(os.path.join(ts.DEFS, "durability.instance.json")) as f:
    INSTANCE_DOC = json.load(f)
INSTANCE = INSTANCE_DOC["name"]
FLOW = "hook"
SECRET = INSTANCE_DOC["config"]["webhook_secret"].encode()
PATH = "/webhooks/%s/%s" % (INSTANCE, FLOW)

TOTAL = 2000      # requests in the burst
KILL_AFTER = 700  # answered requests before the SIGKILL
THREADS = 8       # senders, each on one keep-alive connection
# FERRY_QUEUE_IN_MEMORY: the host's limits.queue_in_memory (default: the
# host's own), so that the burst also goes through the spill list.
QUEUE_IN_MEMORY = int(os.environ.get("FERRY_QUEUE_IN_MEMORY", "0"))


def signed(n):
    body = json.dumps({"n": n, "pad": "x" * 64}).encode()
    sig = "sha256=" + hmac.new(SECRET, body, hashlib.sha256).hexdigest()
    return body, {"Content-Type": "application/json", "X-Signature": sig}


class Burst:
    """THREADS senders taking n = 0 .. TOTAL-1 in turn."""

    def __init__(self, port, start=0):
        self.port = port
        self.lock = threading.Lock()
        self.next = start
        self.acked = {}       # n -> execution id (202)
        self.other = {}       # n -> status of a non-202 answer
        self.unanswered = set()  # sent, no answer (the kill)
        self.answered = 0
        self.stop = threading.Event()

    def take(self):
        with self.lock:
            if self.stop.is_set() or self.next >= TOTAL:
                return None
            n = self.next
            self.next += 1
            return n

    def sender(self):
        c = None
        while True:
            n = self.take()
            if n is None:
                break
            body, headers = signed(n)
            try:
                if c is None:
                    c = http.client.HTTPConnection("127.0.0.1", self.port,
                                                   timeout=10)
                c.request("POST", PATH, body=body, headers=headers)
                r = c.getresponse()
                data = r.read()
            except (OSError, http.client.HTTPException):
                with self.lock:
                    self.unanswered.add(n)
                if c is not None:
                    c.close()
                c = None
                if self.stop.is_set():
                    break
                time.sleep(0.01)
                continue
            with self.lock:
                self.answered += 1
                if r.status == 202:
                    try:
                        self.acked[n] = json.loads(data)["execution_id"]
                    except (ValueError, KeyError, TypeError):
                        self.other[n] = "202 without an execution_id: %r" \
                            % data[:200]
                else:
                    self.other[n] = "%d %r" % (r.status, data[:200])
        if c is not None:
            c.close()


def list_executions(h):
    r = h.get("/api/v1/executions", query={"instance": INSTANCE,
                                           "flow": FLOW, "limit": 10000})
    check(r.status == 200 and isinstance(r.json, list), "list: %r" % r)
    return r.json


def cases(root):
    limits = {"timeout": "30s"}
    if QUEUE_IN_MEMORY:
        # One worker: the queue grows past the limit during the burst.
        limits["queue_in_memory"] = QUEUE_IN_MEMORY
        limits["concurrency"] = 1
        print("# limits.queue_in_memory %d, concurrency 1: most of the burst "
              "waits in the store's spill list" % QUEUE_IN_MEMORY, flush=True)
    h = ts.Host(root, "dur", limits=limits)
    h.start()
    ts.current["host"] = h
    state = {}

    def deploy():
        r = h.deploy(integration=INTEGRATION, instance=INSTANCE_DOC)
        check(r.status == 201, "deploy answered %r" % r)
    case("deploy the signed async webhook flow", deploy)

    def burst():
        b = Burst(h.port)
        threads = [threading.Thread(target=b.sender, daemon=True)
                   for _ in range(THREADS)]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        deadline = t0 + 20
        while True:
            with b.lock:
                answered = b.answered
            if answered >= KILL_AFTER:
                break
            check(time.monotonic() < deadline, "only %d answers in 20 s"
                  % answered)
            check(h.alive(), "the host died: %s" % h.log_tail())
            time.sleep(0.001)
        spilled = None
        if QUEUE_IN_MEMORY:
            r = h.get("/metrics")
            for line in r.text.splitlines() if r.status == 200 else ():
                if line.startswith("ferry_queue_spilled "):
                    spilled = float(line.split()[1])
        ts.current["host"] = None
        os.kill(h.proc.pid, signal.SIGKILL)
        b.stop.set()
        h.proc.wait(5)
        took = time.monotonic() - t0
        for t in threads:
            t.join(15)
        check(not any(t.is_alive() for t in threads), "a sender hangs")
        # The orphaned zygote exits when its control socket closes.
        ts.wait_gone(h.dir, 3)
        h.kill_all()
        state["b"] = b
        sent = b.next
        print("# killed after %.2f s: %d sent, %d answered 202, %d answered "
              "otherwise, %d unanswered, %d never sent"
              % (took, sent, len(b.acked), len(b.other), len(b.unanswered),
                 TOTAL - sent), flush=True)
        if QUEUE_IN_MEMORY:
            print("# ferry_queue_spilled just before the kill: %s" % spilled,
                  flush=True)
            check(spilled is not None and spilled > 0,
                  "nothing in the spill list before the kill (%s)" % spilled)
        check(not b.other, "%d non-202 answers, first: %r"
              % (len(b.other), sorted(b.other.items())[:1]))
        check(len(b.acked) >= KILL_AFTER, "%d acknowledged" % len(b.acked))
        check(len(set(b.acked.values())) == len(b.acked),
              "one execution id answered for two requests")
    case("2,000 signed webhooks, SIGKILL of the host after %d answers"
         % KILL_AFTER, burst)

    def restart():
        h.start()
        ts.current["host"] = h
        b = state.get("b")
        check(b is not None, "no burst")
        # The rest of the 2,000, to the restarted host: all answered 202.
        rest = Burst(h.port, start=b.next)
        threads = [threading.Thread(target=rest.sender, daemon=True)
                   for _ in range(THREADS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        check(not any(t.is_alive() for t in threads), "a sender hangs")
        print("# after the restart: %d sent, %d answered 202"
              % (TOTAL - b.next, len(rest.acked)), flush=True)
        check(not rest.other and not rest.unanswered and
              len(rest.acked) == TOTAL - b.next,
              "after the restart: %d answered otherwise (%r), %d unanswered"
              % (len(rest.other), sorted(rest.other.items())[:1],
                 len(rest.unanswered)))
        first = len(b.acked)
        b.acked.update(rest.acked)
        state["first"] = first
        b.next = TOTAL
        # Executions the kill interrupted inside an idempotent step go on
        # after the restart; under a sanitizer each worker is slow.
        drain = 120 if ts.SANITIZED else 45
        deadline = time.monotonic() + drain
        while True:
            xs = list_executions(h)
            busy = [x for x in xs if x.get("status") in ("queued", "running",
                                                         "waiting")]
            if not busy:
                break
            check(time.monotonic() < deadline, "%d executions still queued "
                  "or running %d s after the restart" % (len(busy), drain))
            time.sleep(0.1)
        state["list"] = xs
    case("restart on the same store, send the rest of the 2,000: all "
         "answered 202, every execution ends", restart)

    def exactly_once():
        b, xs = state.get("b"), state.get("list")
        check(b is not None and xs is not None, "no burst or no restart")
        by_n = {}
        bad_n = []
        for x in xs:
            full = h.execution(x["id"])
            body = (full.get("trigger") or {}).get("body") or {}
            n = body.get("n")
            if not isinstance(n, int):
                bad_n.append(x["id"])
                continue
            by_n.setdefault(n, []).append(full)
        check(not bad_n, "%d executions without an n: %r"
              % (len(bad_n), bad_n[:3]))
        dups = {n: [x["id"] for x in v] for n, v in by_n.items()
                if len(v) > 1}
        lost, wrong_id, ran, interrupted, other = [], [], 0, [], []
        for n, xid in sorted(b.acked.items()):
            v = by_n.get(n)
            if not v:
                lost.append(n)
                continue
            x = v[0]
            if len(v) == 1 and x["id"] != xid:
                wrong_id.append((n, xid, x["id"]))
            if x["status"] == "succeeded" and x.get("output") == n:
                ran += 1
            elif x["status"] == "failed" and \
                    ts.message(x).startswith("interrupted:"):
                interrupted.append(n)
            else:
                other.append((n, x["status"], ts.message(x),
                              x.get("output")))
        sent = set(range(b.next))
        unsent_ran = sorted(n for n in by_n if n not in sent)
        unanswered_ran = sum(1 for n in b.unanswered if n in by_n)
        print("# acknowledged %d (%d before the kill), ran once %d, interrupted %d (failed "
              "\"interrupted:\", not re-run), lost %d, duplicates %d; "
              "unanswered %d of which %d ran; executions in the store %d"
              % (len(b.acked), state.get("first", 0), ran, len(interrupted), len(lost), len(dups),
                 len(b.unanswered), unanswered_ran, len(xs)), flush=True)
        check(not lost, "%d acknowledged requests have no execution: n = %r"
              % (len(lost), lost[:10]))
        check(not dups, "%d requests ran more than once: %r"
              % (len(dups), sorted(dups.items())[:3]))
        check(not wrong_id, "answered with another execution id: %r"
              % wrong_id[:3])
        check(not other, "%d acknowledged executions neither succeeded nor "
              "were interrupted: %r" % (len(other), other[:3]))
        check(not unsent_ran, "requests never sent ran: %r" % unsent_ran[:5])
        check(ran + len(interrupted) == len(b.acked), "counts do not add up")
    case("every acknowledged request ran exactly once (none lost, none "
         "doubled)", exactly_once)

    def still_serves():
        body, headers = signed(TOTAL + 1)
        c = http.client.HTTPConnection("127.0.0.1", h.port, timeout=10)
        try:
            c.request("POST", PATH, body=body, headers=headers)
            r = c.getresponse()
            data = r.read()
        finally:
            c.close()
        check(r.status == 202, "after the restart: %d %r" % (r.status, data))
        x = h.wait_done(json.loads(data)["execution_id"])
        check(x["status"] == "succeeded" and x.get("output") == TOTAL + 1,
              "execution: %s %r" % (x["status"], x.get("output")))
    case("the restarted host takes webhooks again", still_serves)
    ts.stop(ts.current)


def main():
    return ts.run_suite("ferry-durability-", cases, ())


if __name__ == "__main__":
    sys.exit(main())
