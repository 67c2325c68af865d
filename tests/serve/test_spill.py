#!/usr/bin/env python3
"""The queue past `limits.queue_in_memory` in `ferry serve`: a host that may
hold 4 queued executions in memory and run 1 at a time is sent many more
while a long execution holds its only worker. What a user must see:

  - every accepted request answered 202 with its execution id, at once;
  - /metrics: ferry_queue_depth counts them all, ferry_queue_spilled the
    ones past the 4 held in memory;
  - every execution runs exactly once, and a sequential flow's in the order
    the requests arrived, also when requests keep arriving while the queue
    drains and is refilled from the list;
  - DELETE of one waiting in the store's spill list cancels it (200) and it
    never runs;
  - a sync webhook that arrives while the queue is past the limit is
    answered 202 with its execution id instead of waiting behind it, and
    runs later;
  - a singleton flow's run is never spilled, so that a second one is
    refused (409) while the first waits, also past the limit;
  - SIGTERM with executions waiting in the list: none is lost, the next
    start runs each once, in order.

Uses the Host helper of test_serve.py and its environment (FERRY_BIN,
FERRY_SERVE_FIXTURES, ...); the chaos fixture component gives the long
execution (chaos.sleep).

Prints "ok - NAME" or "not ok - NAME: why" per case, then "N passed, M
failed"; exits 1 if anything failed. Python 3 standard library only.
"""

import http.client
import json
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_serve as ts  # noqa: E402
from test_serve import check, case  # noqa: E402

CAP = 4
INSTANCE = "spill-1"
INTEGRATION = {
    "name": "spill-test",
    "version": "1.0.0",
    "description": "Flows for the queue past limits.queue_in_memory",
    "flows": [
        {"name": "hold", "trigger": {"type": "manual"},
         "steps": [{"name": "nap", "action": "chaos.sleep",
                    "input": {"ms": 3000}}]},
        {"name": "ordered",
         "trigger": {"type": "webhook"},
         "concurrency": {"mode": "sequential"},
         "steps": [{"name": "n", "action": "core.set",
                    "input": {"value": "{{ trigger.body.n }}"}}]},
        {"name": "single",
         "trigger": {"type": "webhook"},
         "concurrency": {"mode": "singleton"},
         "steps": [{"name": "n", "action": "core.set",
                    "input": {"value": "{{ trigger.body.n }}"}}]},
        {"name": "answer",
         "trigger": {"type": "webhook", "response": "sync",
                     "timeout": "20s"},
         "steps": [{"name": "n", "action": "core.set",
                    "input": {"value": "{{ trigger.body.n }}"}}]},
    ],
}
INSTANCE_DOC = {"integration": "spill-test", "name": INSTANCE}


def start(h, flow, body):
    r = h.request("POST", "/api/v1/instances/%s/flows/%s/executions"
                  % (INSTANCE, flow), body)
    check(r.status == 202 and r.json and r.json.get("id"),
          "starting %s: %r" % (flow, r))
    return r.json["id"]


class Hooks:
    """Webhook POSTs on one keep-alive connection, in order."""

    def __init__(self, port):
        self.c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def post(self, flow, n):
        body = json.dumps({"n": n}).encode()
        self.c.request("POST", "/webhooks/%s/%s" % (INSTANCE, flow),
                       body=body,
                       headers={"Content-Type": "application/json"})
        r = self.c.getresponse()
        data = r.read()
        try:
            doc = json.loads(data)
        except ValueError:
            doc = None
        return r.status, doc

    def close(self):
        self.c.close()


def gauges(h):
    r = h.get("/metrics")
    check(r.status == 200, "/metrics: %r" % r)
    out = {}
    for line in r.text.splitlines():
        for name in ("ferry_queue_depth", "ferry_queue_spilled"):
            if line.startswith(name + " "):
                out[name] = float(line.split()[1])
    check(len(out) == 2, "/metrics lacks the queue gauges: %r" % out)
    return out


def send_ordered(h, first, count):
    """POSTs n = first .. first+count-1 to the sequential flow; returns
    {n: execution id}."""
    hooks = Hooks(h.port)
    ids = {}
    try:
        for n in range(first, first + count):
            status, doc = hooks.post("ordered", n)
            check(status == 202 and doc and doc.get("execution_id"),
                  "webhook n=%d answered %s %r" % (n, status, doc))
            ids[n] = doc["execution_id"]
    finally:
        hooks.close()
    check(len(set(ids.values())) == count, "an execution id given twice")
    return ids


def check_ran_in_order(h, ids, skip=()):
    """Every execution of ids (but skip) succeeded once, with its n, and
    they started in the order of n."""
    started = []
    for n, xid in sorted(ids.items()):
        if n in skip:
            continue
        x = h.wait_done(xid, timeout=60 if ts.SANITIZED else 30)
        check(x["status"] == "succeeded" and x.get("output") == n,
              "n=%d: %s %r %r" % (n, x["status"], x.get("output"),
                                  x.get("error_message")))
        check(len(x.get("steps") or []) == 1,
              "n=%d ran %d steps" % (n, len(x.get("steps") or [])))
        started.append((x["started"], n))
    order = [n for _, n in sorted(started)]
    want = [n for n in sorted(ids) if n not in skip]
    check(order == want, "started out of arrival order: %r" % order[:20])


def all_executions(h):
    r = h.get("/api/v1/executions", query={"limit": 10000})
    check(r.status == 200 and isinstance(r.json, list), "list: %r" % r)
    return r.json


def cases(root):
    h = ts.Host(root, "spill", limits={"concurrency": 1,
                                       "queue_in_memory": CAP},
                grace="300ms")
    h.start()
    ts.current["host"] = h
    state = {}

    def deploy():
        r = h.deploy(integration=INTEGRATION, instance=INSTANCE_DOC)
        check(r.status == 201, "deploy answered %r" % r)
    case("deploy", deploy)

    def burst():
        # The only worker is busy for 3 s: everything sent meanwhile queues.
        hold = start(h, "hold", {})
        h.wait_status(hold, ("running",))
        ids = send_ordered(h, 0, 40)
        g = gauges(h)
        holding = h.execution(hold)["status"] == "running"
        print("# 40 accepted; queue depth %d, spilled %d, hold %s"
              % (g["ferry_queue_depth"], g["ferry_queue_spilled"],
                 "still running" if holding else "over"), flush=True)
        if holding:
            check(g["ferry_queue_depth"] == 40,
                  "ferry_queue_depth %s, not 40" % g["ferry_queue_depth"])
            check(g["ferry_queue_spilled"] == 40 - CAP,
                  "ferry_queue_spilled %s, not %d"
                  % (g["ferry_queue_spilled"], 40 - CAP))
        else:
            check(g["ferry_queue_spilled"] > 0, "nothing spilled: %r" % g)
        state.update(ids=ids, hold=hold, holding=holding)

        # The newest is in the spill list: DELETE takes it off.
        last = ids[39]
        r = h.request("DELETE", "/api/v1/executions/" + last)
        check(r.status in (200, 202), "DELETE of a spilled one: %r" % r)
        if holding:
            check(r.status == 200 and r.json.get("status") == "cancelled",
                  "DELETE of a spilled one answered %r" % r)
        # A sync webhook behind them is answered 202 at once.
        hooks = Hooks(h.port)
        t0 = time.monotonic()
        status, doc = hooks.post("answer", 1000)
        took = time.monotonic() - t0
        hooks.close()
        check(status == 202 and doc and doc.get("execution_id"),
              "sync webhook past the limit: %s %r" % (status, doc))
        check(took < 3, "the sync webhook waited %.1f s" % took)
        state["sync"] = doc["execution_id"]
        # A singleton flow's run stays in memory past the limit, so the
        # next one is refused while it waits.
        hooks = Hooks(h.port)
        s1 = hooks.post("single", 2000)
        s2 = hooks.post("single", 2001)
        hooks.close()
        check(s1[0] == 202 and s1[1] and s1[1].get("execution_id"),
              "the first singleton webhook: %s %r" % s1)
        check(s2[0] == 409, "the second singleton webhook while the first "
              "waits: %s %r, not 409" % s2)
        if holding:
            g2 = gauges(h)
            check(g2["ferry_queue_spilled"] == g["ferry_queue_spilled"]
                  - (1 if r.status == 200 else 0) + 1,
                  "the spill list after the singleton webhook: %r (was %r)"
                  % (g2, g))
        state["single"] = s1[1]["execution_id"]
    case("%d queued in memory, 40 webhooks behind a busy worker: all 202, "
         "the rest spilled; DELETE of a spilled one; a sync webhook answered "
         "202 at once; a singleton's second run refused" % CAP, burst)

    def drained():
        ids = state.get("ids")
        check(ids is not None, "no burst")
        x = h.wait_done(ids[39])
        check(x["status"] == "cancelled", "the deleted one: %s"
              % x["status"])
        check(not x.get("steps"), "the deleted one ran %d steps"
              % len(x.get("steps") or []))
        check_ran_in_order(h, ids, skip=(39,))
        x = h.wait_done(state["sync"])
        check(x["status"] == "succeeded" and x.get("output") == 1000,
              "the sync webhook's execution: %s %r" % (x["status"],
                                                       x.get("output")))
        x = h.wait_done(state["single"])
        check(x["status"] == "succeeded" and x.get("output") == 2000,
              "the singleton webhook's execution: %s %r" % (x["status"],
                                                            x.get("output")))
        g = gauges(h)
        check(g["ferry_queue_depth"] == 0 and g["ferry_queue_spilled"] == 0,
              "the queue gauges after the drain: %r" % g)
    case("the 39 others ran once each, in arrival order; the deleted one "
         "never ran; the sync one ran; the gauges are back to 0", drained)

    def while_draining():
        # No hold: executions run while requests arrive, so the queue is
        # drained and refilled from the list while new ones come in. None
        # may overtake an older one waiting in the list.
        ids = send_ordered(h, 200, 200)
        check_ran_in_order(h, ids)
    case("200 webhooks while the queue drains and refills: each ran once, "
         "in arrival order", while_draining)

    def across_restart():
        hold = start(h, "hold", {})
        h.wait_status(hold, ("running",))
        ids = send_ordered(h, 100, 30)
        g = gauges(h)
        check(g["ferry_queue_spilled"] > 0, "nothing spilled: %r" % g)
        # SIGTERM: the hold is cancelled after the grace; the 30 stay queued.
        ts.current["host"] = None
        h.signal(signal.SIGTERM)
        check(h.wait_exit(15) is not None, "the host did not exit")
        queued = [x for x in all_executions_from_db(h.db)
                  if x[1] == "queued"]
        check(len(queued) == 30, "%d queued in the store after the stop, "
              "not 30" % len(queued))
        h.start()
        ts.current["host"] = h
        check_ran_in_order(h, ids)
        log = open(h.log_path, encoding="utf-8", errors="replace").read()
        check("queued executions taken up again" in log and "count=30" in log,
              "the restarted host does not say it took up 30: %s"
              % h.log_tail())
        statuses = sorted(x["status"] for x in all_executions(h)
                          if x.get("flow") == "ordered")
        check(statuses == ["cancelled"] + ["succeeded"] * 269,
              "the sequential flow's 270 executions: %d, %d succeeded"
              % (len(statuses), statuses.count("succeeded")))
    case("SIGTERM with 30 waiting past the limit: the next start runs each "
         "once, in order", across_restart)
    ts.stop(ts.current)


def all_executions_from_db(path):
    """(id, status) of every execution, read from the stopped host's
    SQLite file."""
    import sqlite3
    db = sqlite3.connect(path)
    try:
        return db.execute("SELECT id, status FROM executions").fetchall()
    finally:
        db.close()


def main():
    return ts.run_suite("ferry-spill-", cases, (os.path.join(ts.FIXTURES,
                                                             "chaos.so"),))


if __name__ == "__main__":
    sys.exit(main())
