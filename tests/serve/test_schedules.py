#!/usr/bin/env python3
"""Integration test of schedule triggers in `ferry serve`: a real host with
an integration whose flows fire every second, then a restart on the same
database after the host was down, for both misfire policies.

Environment (set by CMakeLists.txt): as for test_serve.py, whose Host
class and helpers this reuses. FERRY_TEST_KEEP=1 keeps the temporary
directory.

Prints "ok - NAME" or "not ok - NAME: why" per case, then "N passed, M
failed"; exits 1 if anything failed. Python 3 standard library only.
"""

import datetime
import json
import os
import signal
import sqlite3
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_serve as ts  # noqa: E402

check = ts.check

with open(os.path.join(ts.DEFS, "schedules.integration.json")) as f:
    INTEGRATION = json.load(f)
with open(os.path.join(ts.DEFS, "schedules.instance.json")) as f:
    INSTANCE_DOC = json.load(f)
INSTANCE = INSTANCE_DOC["name"]
RUN_ONCE = "every_run_once"
SKIP = "every_skip"


def parse_utc(text):
    """RFC 3339 UTC ("...Z", with or without a fraction) to epoch seconds
    (float)."""
    check(isinstance(text, str) and text.endswith("Z"),
          "not an RFC 3339 UTC time: %r" % (text,))
    body = text[:-1]
    fmt = "%Y-%m-%dT%H:%M:%S.%f" if "." in body else "%Y-%m-%dT%H:%M:%S"
    d = datetime.datetime.strptime(body, fmt)
    return d.replace(tzinfo=datetime.timezone.utc).timestamp()


def executions(h, flow):
    """Every execution of flow of the instance, with its trigger, oldest
    first."""
    r = h.get("/api/v1/executions", query={"instance": INSTANCE, "flow": flow,
                                           "limit": 1000})
    check(r.status == 200 and isinstance(r.json, list),
          "executions list: %r" % r)
    out = [h.wait_done(x["id"]) for x in r.json]
    out.sort(key=lambda x: x.get("trigger", {}).get("scheduled", ""))
    return out


def ticks(db, flow):
    """(fire_us, execution_id) rows of the schedule_ticks table."""
    c = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=5)
    try:
        return c.execute("SELECT fire_us, execution_id FROM schedule_ticks"
                         " WHERE instance = ? AND flow = ? ORDER BY fire_us",
                         (INSTANCE, flow)).fetchall()
    finally:
        c.close()


def ticks_of(db, flow, xs):
    """The ticks up to the latest scheduled time of xs (the schedule keeps
    firing between reading xs through the API and reading the ticks)."""
    last = max(round(t * 1e6) for t in scheduled_of(xs)) if xs else -1
    return [r for r in ticks(db, flow) if r[0] <= last]


def scheduled_of(xs):
    return [parse_utc(x["trigger"]["scheduled"]) for x in xs]


def cases(root):
    h = ts.Host(root, "sched")
    state = {}

    def fires_every_second():
        h.start()
        ts.current["host"] = h
        r = h.deploy(integration=INTEGRATION, instance=INSTANCE_DOC)
        check(r.status == 201, "deploy answered %r, not 201" % r)
        time.sleep(3.5)
        xs = executions(h, RUN_ONCE)
        check(2 <= len(xs) <= 4, "%d executions in 3.5 s of an every-1s "
              "schedule, expected 3 +- 1" % len(xs))
        for x in xs:
            check(x["status"] == "succeeded", "execution %s: %s %r"
                  % (x["id"], x["status"], x.get("error")))
            t = x.get("trigger") or {}
            check(t.get("type") == "schedule" and t.get("timezone") == "UTC"
                  and t.get("local") and t.get("actual"),
                  "trigger payload %r" % t)
            check(x.get("output") == t, "the step echoed %r, not the "
                  "trigger %r" % (x.get("output"), t))
            lag = parse_utc(t["actual"]) - parse_utc(t["scheduled"])
            check(0 <= lag < 1.0, "fired %.3f s after its time" % lag)
        times = scheduled_of(xs)
        check(all(t == int(t) for t in times), "not on whole seconds: %r"
              % times)
        check(len(set(times)) == len(times), "a time fired twice: %r" % times)
        steps = [b - a for a, b in zip(times, times[1:])]
        check(all(s == 1 for s in steps), "not 1 s apart: %r" % times)
        # The schedule keeps firing: ticks after the last listed execution
        # were made after the list was read.
        rows = [(f, e) for f, e in ticks(h.db, RUN_ONCE)
                if f / 1e6 <= max(times)]
        check(sorted(e for _, e in rows) == sorted(x["id"] for x in xs),
              "ticks %r do not match the executions %r"
              % (rows, [x["id"] for x in xs]))
        check([f / 1e6 for f, _ in rows] == times, "tick times %r, "
              "execution times %r" % (rows, times))
    ts.case("an every-1s schedule fires about 3 times in 3.5 s, on whole "
            "seconds, one recorded tick per execution", fires_every_second)

    def down_three_seconds():
        check(h.alive(), "the host is not running")
        ts.current["host"] = None
        h.signal(signal.SIGTERM)
        rc = h.wait_exit(10)
        check(rc == 0, "exit status %r after SIGTERM: %s" % (rc, h.log_tail()))
        state["last_run_once"] = max(f for f, _ in ticks(h.db, RUN_ONCE)) / 1e6
        state["last_skip"] = max(f for f, _ in ticks(h.db, SKIP)) / 1e6
        state["before_skip"] = len(ticks(h.db, SKIP))
        time.sleep(3)
        state["restart"] = time.time()
        h.start()  # same database, same deployments
        state["started"] = time.time()
        ts.current["host"] = h
        time.sleep(1.5)
    ts.case("the host stops on SIGTERM with its timers, and starts again "
            "after 3 s down", down_three_seconds)

    def run_once():
        check("restart" in state, "the restart case did not get that far")
        xs = executions(h, RUN_ONCE)
        caught = [x for x in xs if x["trigger"].get("misfire")]
        check(len(caught) == 1, "%d catch-up executions, expected 1: %r"
              % (len(caught), [x["trigger"] for x in caught]))
        t = caught[0]["trigger"]
        check(t["misfire"] == "run_once", "misfire %r" % t["misfire"])
        missed = [parse_utc(m) for m in t.get("missed", [])]
        check(2 <= len(missed) <= 5, "missed %r: expected the 3 or so "
              "seconds the host was down" % t.get("missed"))
        check(missed[0] == state["last_run_once"] + 1 and
              all(b - a == 1 for a, b in zip(missed, missed[1:])) and
              missed[-1] <= state["started"],
              "missed %r after the last tick at %s, host up again at %.3f"
              % (t.get("missed"), state["last_run_once"], state["started"]))
        check(parse_utc(t["scheduled"]) == missed[-1],
              "catch-up scheduled %r, not the latest missed time"
              % t["scheduled"])
        check(caught[0]["status"] == "succeeded", "catch-up run: %s"
              % caught[0]["status"])
        # Nothing else fired for the time the host was down.
        times = scheduled_of(xs)
        gap = [s for s in times if state["last_run_once"] < s
               < state["restart"] and s != missed[-1]]
        check(not gap, "runs for missed times besides the catch-up: %r" % gap)
        rows = ticks_of(h.db, RUN_ONCE, xs)
        check(len(rows) == len(xs), "%d ticks, %d executions"
              % (len(rows), len(xs)))
        check(sorted(r[1] for r in rows) == sorted(x["id"] for x in xs),
              "ticks and executions name different executions")
        check(len(set(times)) == len(times), "a time fired twice: %r" % times)
    ts.case("misfire run_once: one catch-up execution with the missed "
            "times", run_once)

    def skip():
        check("restart" in state, "the restart case did not get that far")
        xs = executions(h, SKIP)
        check(not [x for x in xs if "misfire" in x["trigger"]],
              "a skip flow has a catch-up run")
        times = scheduled_of(xs)
        during = [s for s in times
                  if state["last_skip"] < s <= state["restart"]]
        check(not during, "runs for times the host was down: %r" % during)
        check(len(xs) > state["before_skip"], "nothing fired after the "
              "restart: %r" % times)
        rows = ticks_of(h.db, SKIP, xs)
        check(len(rows) == len(xs) and sorted(r[1] for r in rows) ==
              sorted(x["id"] for x in xs), "ticks and executions differ")
    ts.case("misfire skip: no run for the times the host was down", skip)

    def stops():
        ts.current["host"] = None
        h.signal(signal.SIGTERM)
        rc = h.wait_exit(10)
        check(rc == 0, "exit status %r after SIGTERM: %s" % (rc, h.log_tail()))
    ts.case("a host with armed schedules stops on SIGTERM with status 0",
            stops)


def main():
    return ts.run_suite("ferry-sched-", cases, ())


if __name__ == "__main__":
    sys.exit(main())
