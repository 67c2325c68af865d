#!/usr/bin/env python3
"""`ferry serve` when its store cannot grow: the host's files are held to a
size (RLIMIT_FSIZE, what `ulimit -f` or systemd's LimitFSIZE set; writes
past it fail as on a full disk) while signed webhooks keep coming, then
given room again. What a user must see:

  - while the store cannot write, each webhook is answered 503 with a
    message naming the store and what it said (so that its sender sends it
    again and its operator knows why), none is
    answered 2xx, and the host stays up (it is not killed by SIGXFSZ);
  - the host's log says so once (and again at most every 10 s), and
    /metrics counts the transactions that did not commit;
  - with room again, and no restart, webhooks are answered 202 at once and
    the log says the store commits again;
  - every webhook answered 202, also those whose executions were running
    when the store stopped writing, ran exactly once and is recorded as
    succeeded with its steps; none answered 503 ran.
  - while records wait to be written again, no queued execution starts
    (each would add its own) and /readyz answers 503; with room again they
    start, /readyz answers 200, and each runs once.
  - a schedule's ticks that the store could not record: a `run_once`
    schedule gets one catch-up execution for them once the store commits
    again, listing every one of them, and no fire time runs twice or is
    dropped; a `skip` schedule runs none of them;
  - SIGTERM while the store still cannot write: the host tries its records
    again for 3 s, then says in its log how many it lost and exits 1; at
    the next start the execution they belonged to is failed as
    interrupted, not left running.

Uses the Host helper of test_serve.py and its environment (FERRY_BIN,
FERRY_SERVE_FIXTURES, FERRY_SERVE_DEFS), and test_durability.py's signed
webhook flow (durability.integration.json and durability.instance.json).
Prints "ok - NAME" / "not ok - NAME: why", then "N passed, M failed".
"""

import http.client
import json
import os
import resource
import signal
import sqlite3
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_durability as td  # noqa: E402
import test_schedules as tsch  # noqa: E402
import test_serve as ts  # noqa: E402
from test_serve import check, case  # noqa: E402

ROOM = 64 * 1024  # what the host's log may grow by while its files are held
MAX_SENT = 3000    # webhooks sent at most before the store must refuse


class Sender:
    """Signed webhooks n = 0, 1, ... on one keep-alive connection; the
    answer of each n is kept."""

    def __init__(self, port):
        self.port = port
        self.conn = None
        self.next = 0
        self.status = {}  # n -> HTTP status
        self.body = {}    # n -> answer body (text)

    def send(self):
        n = self.next
        self.next += 1
        body, headers = td.signed(n)
        if self.conn is None:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port,
                                                   timeout=20)
        try:
            self.conn.request("POST", td.PATH, body=body, headers=headers)
            r = self.conn.getresponse()
            self.status[n] = r.status
            self.body[n] = r.read().decode(errors="replace")
        except (OSError, http.client.HTTPException) as e:
            self.status[n] = None  # no answer
            self.body[n] = repr(e)
            self.conn = None
        return n


def file_limit(pid, soft):
    """Sets the host's RLIMIT_FSIZE soft limit (the hard one stays)."""
    _, hard = resource.prlimit(pid, resource.RLIMIT_FSIZE)
    resource.prlimit(pid, resource.RLIMIT_FSIZE, (soft, hard))


def hold_files(h):
    """Holds the host's files to ROOM past its log's size: the log can
    still grow, but not the store, whose data (database and log together)
    is larger, so that no checkpoint can complete and start the log
    again: every commit that writes fails until the limit is lifted."""
    limit = os.path.getsize(h.log_path) + ROOM
    data = sum(os.path.getsize(h.db + x) for x in ("", "-wal")
               if os.path.exists(h.db + x))
    check(data > limit, "the store holds %d bytes, not more than %d"
          % (data, limit))
    file_limit(h.proc.pid, limit)


def wait_settled(h, timeout=30):
    """Waits until no execution is queued or running."""
    deadline = time.monotonic() + timeout
    while True:
        r = h.get("/api/v1/executions", query={"limit": 10000})
        check(r.status == 200, "list: %r" % r)
        busy = [x for x in r.json if x["status"] in ("queued", "running")]
        if not busy:
            return
        check(time.monotonic() < deadline,
              "%d executions still queued or running after %d s"
              % (len(busy), timeout))
        time.sleep(0.1)


def from_store(db):
    """n -> [(status, steps recorded)] of every execution, read from the
    host's SQLite file (it runs; the file is in WAL mode)."""
    c = sqlite3.connect("file:%s?mode=ro" % db, uri=True)
    try:
        rows = c.execute(
            "SELECT json_extract(e.trigger_json, '$.body.n'), e.status,"
            " (SELECT count(*) FROM steps s WHERE s.execution_id = e.id)"
            " FROM executions e").fetchall()
    finally:
        c.close()
    out = {}
    for n, status, steps in rows:
        out.setdefault(n, []).append((status, steps))
    return out


HOLD_INTEGRATION = {
    "name": "full-test", "version": "1.0.0",
    "flows": [
        {"name": "hold", "trigger": {"type": "manual"},
         "steps": [{"name": "nap", "action": "chaos.sleep",
                    "input": {"ms": 2000}}]},
        {"name": "hook", "trigger": {"type": "webhook"},
         "steps": [{"name": "echo", "action": "core.set",
                    "input": {"value": "{{ trigger.body.n }}"}}]}]}
HOLD_INSTANCE = {"integration": "full-test", "name": "full-1"}


def metric(h, name):
    """The value of an unlabelled metric in /metrics."""
    r = h.get("/metrics")
    check(r.status == 200, "/metrics: %r" % r)
    for ln in r.text.splitlines():
        if ln.startswith(name + " "):
            return float(ln.split()[-1])
    raise ts.Fail("no %s in /metrics" % name)


def start_hold(h):
    """Deploys HOLD_INTEGRATION and starts its 2 s execution: its id, once
    it runs."""
    r = h.deploy(integration=HOLD_INTEGRATION, instance=HOLD_INSTANCE)
    check(r.status == 201, "deploy answered %r" % r)
    r = h.request("POST", "/api/v1/instances/full-1/flows/hold/executions", {})
    check(r.status == 202, "starting hold: %r" % r)
    h.wait_status(r.json["id"], ("running",))
    return r.json["id"]


def paused_cases(root):
    """One worker, held by a 2 s execution, 5 webhooks queued behind it,
    then the store held to its size: when the held execution ends, its
    records cannot be written, and the queued ones must wait."""
    h = ts.Host(root, "paused", limits={"concurrency": 1})
    h.start()
    ts.current["host"] = h
    hook = "/webhooks/full-1/hook"

    def paused():
        t0 = time.monotonic()
        start_hold(h)
        acked = {}
        for n in range(5):
            r = h.request("POST", hook, {"n": n}, token=None)
            check(r.status == 202, "webhook %d: %r" % (n, r))
            acked[n] = r.json["execution_id"]
        hold_files(h)
        n = 5
        while n < MAX_SENT:
            r = h.request("POST", hook, {"n": n}, token=None)
            if r.status == 503:
                break
            check(r.status == 202, "webhook %d: %r" % (n, r))
            acked[n] = r.json["execution_id"]
            n += 1
        check(n < MAX_SENT, "no 503 in %d webhooks" % MAX_SENT)
        time.sleep(max(0.0, t0 + 3.5 - time.monotonic()))  # hold is over
        started = metric(h, "ferry_executions_started_total")
        time.sleep(1.0)
        again = metric(h, "ferry_executions_started_total")
        queued = metric(h, "ferry_queue_depth")
        check(again == started, "executions started while the store could "
              "not write: %d, then %d" % (started, again))
        check(queued >= len(acked) - 2, "%d queued of %d accepted"
              % (queued, len(acked)))
        r = h.get("/readyz", token=None)
        check(r.status == 503 and r.json.get("store") is False,
              "/readyz while records wait: %r" % r)
        print("# %d accepted, %d started of them while the store could not "
              "write, %d waited" % (len(acked), started - 1, queued),
              flush=True)

        file_limit(h.proc.pid, resource.RLIM_INFINITY)
        wait_settled(h)
        r = h.get("/readyz", token=None)
        check(r.status == 200, "/readyz with room again: %r" % r)
        got = {}
        for n, xid in acked.items():
            x = h.execution(xid)
            got[n] = (x["status"], len(x.get("steps") or []))
        wrong = {n: v for n, v in got.items() if v != ("succeeded", 1)}
        check(not wrong, "not succeeded with its step: %r" % wrong)
    case("records waiting to be written: no queued execution starts, "
         "/readyz 503; with room again each runs once, /readyz 200", paused)
    ts.stop(ts.current)


def cases(root):
    h = ts.Host(root, "full")
    h.start()
    ts.current["host"] = h
    s = Sender(h.port)
    state = {}

    def deploy():
        r = h.deploy(integration=td.INTEGRATION, instance=td.INSTANCE_DOC)
        check(r.status == 201, "deploy answered %r" % r)
    case("deploy", deploy)

    def with_room():
        for _ in range(50):
            s.send()
        bad = {n: st for n, st in s.status.items() if st != 202}
        check(not bad, "not 202: %r" % bad)
    case("50 webhooks with room: all 202", with_room)

    def no_room():
        state["first_full"] = s.next
        hold_files(h)
        refused = 0
        while refused < 20 and s.next < MAX_SENT:
            n = s.send()
            if s.status[n] == 503:
                refused += 1
        check(h.alive(), "the host died: %s" % h.log_tail())
        check(refused == 20, "only %d webhooks of %d answered 503"
              % (refused, s.next - state["first_full"]))
        first = min(n for n, st in s.status.items() if st == 503)
        state["first_503"] = first
        odd = {n: s.status[n] for n in range(state["first_full"], s.next)
               if s.status[n] not in (202, 503)}
        check(not odd, "neither 202 nor 503: %r" % odd)
        late = [n for n in range(first, s.next) if s.status[n] == 202]
        check(not late, "202 after the first 503: %r" % late)
        msg = json.loads(s.body[first])["error"]["message"]
        check("store" in msg, "the 503 does not name the store: %r" % msg)
        # what the store said (SQLite: "disk I/O error" past the limit,
        # "database or disk is full" on a full disk), not a bare errno
        check("disk" in msg, "the 503 does not say the store's reason: %r"
              % msg)
        print("# %d webhooks answered 202 before the first 503; the 503 "
              "says %r" % (first - state["first_full"], msg), flush=True)
    case("the store cannot grow: each webhook answered 503 naming the store, "
         "the host stays up", no_room)

    def told():
        with open(h.log_path, errors="replace") as f:
            log = f.read()
        check("store: a transaction did not commit" in log and "error=" in log,
              "the log does not say the store failed: %s" % h.log_tail())
        told = log.count("store: a transaction did not commit")
        check(told <= 3, "told %d times in a few seconds" % told)
        r = h.get("/metrics")
        check(r.status == 200, "/metrics: %r" % r)
        v = [float(ln.split()[-1]) for ln in r.text.splitlines()
             if ln.startswith("ferry_store_commit_failures_total")]
        check(v and v[0] >= 20, "ferry_store_commit_failures_total: %r" % v)
    case("the log says so, /metrics counts the failed commits", told)

    def room_again():
        file_limit(h.proc.pid, resource.RLIM_INFINITY)
        since = s.next
        for _ in range(50):
            s.send()
        bad = {n: s.status[n] for n in range(since, s.next)
               if s.status[n] != 202}
        check(not bad, "not 202 with room again: %r" % bad)
        deadline = time.monotonic() + 10
        while True:
            with open(h.log_path, errors="replace") as f:
                if "store: commits again" in f.read():
                    break
            check(time.monotonic() < deadline,
                  "the log does not say the store commits again: %s"
                  % h.log_tail())
            time.sleep(0.05)
    case("room again, no restart: webhooks 202 at once, the log says the "
         "store commits again", room_again)

    def exactly_once():
        wait_settled(h)
        got = from_store(h.db)
        acked = [n for n, st in s.status.items() if st == 202]
        refused = [n for n, st in s.status.items() if st != 202]
        wrong = {n: got.get(n) for n in acked
                 if got.get(n) != [("succeeded", 1)]}
        check(not wrong, "answered 202 and not run once, succeeded, with its "
              "step: %r" % dict(list(wrong.items())[:10]))
        ran = {n: got[n] for n in refused if n in got}
        check(not ran, "answered 503 and ran: %r" % ran)
        print("# %d answered 202 ran once each; %d answered 503 did not run"
              % (len(acked), len(refused)), flush=True)
    case("every webhook answered 202 ran once and succeeded, with its step; "
         "none answered 503 ran", exactly_once)
    ts.stop(ts.current)


def not_recorded(log_path):
    """flow -> [epoch s] of the ticks the host logged as not recorded."""
    out = {}
    with open(log_path, errors="replace") as f:
        for ln in f:
            if "schedule: the tick was not recorded" not in ln:
                continue
            fields = dict(w.split("=", 1) for w in ln.split() if "=" in w)
            out.setdefault(fields.get("flow"), []).append(
                tsch.parse_utc(fields.get("scheduled")))
    return out


def schedule_cases(root):
    """Two every-1s schedules, run_once and skip, while the files are
    held for 3.5 s."""
    h = ts.Host(root, "schedfull")
    h.start()
    ts.current["host"] = h
    state = {}

    def held():
        r = h.deploy(integration=tsch.INTEGRATION, instance=tsch.INSTANCE_DOC)
        check(r.status == 201, "deploy answered %r" % r)
        # A store with more than a few pages, as in cases(): rows added at
        # its end then land past the limit, and no checkpoint completes.
        r = h.deploy(integration=td.INTEGRATION, instance=td.INSTANCE_DOC)
        check(r.status == 201, "deploy answered %r" % r)
        s = Sender(h.port)
        for _ in range(200):
            s.send()
        check(set(s.status.values()) == {202}, "webhooks: %r"
              % sorted(set(s.status.values())))
        deadline = time.monotonic() + 10
        while not (tsch.executions(h, tsch.RUN_ONCE) and
                   tsch.executions(h, tsch.SKIP)):
            check(time.monotonic() < deadline, "no tick in 10 s")
            time.sleep(0.2)
        hold_files(h)
        time.sleep(3.5)
        file_limit(h.proc.pid, resource.RLIM_INFINITY)
        state["lifted"] = time.time()
        failed = not_recorded(h.log_path)
        for flow in (tsch.RUN_ONCE, tsch.SKIP):
            check(len(failed.get(flow, [])) >= 2, "%s: %d ticks not recorded "
                  "while the files were held 3.5 s: %s"
                  % (flow, len(failed.get(flow, [])), h.log_tail()))
        # The catch-up: 1 s after the first failure, then 2, then 4 s.
        deadline = time.monotonic() + 15
        while True:
            xs = tsch.executions(h, tsch.RUN_ONCE)
            if [x for x in xs if x["trigger"].get("misfire")]:
                break
            check(time.monotonic() < deadline, "no catch-up run 15 s after "
                  "the limit was lifted: %s" % h.log_tail())
            time.sleep(0.2)
        time.sleep(1.5)
        state["failed"] = not_recorded(h.log_path)
    case("ticks of two schedules not recorded while the store cannot write",
         held)

    def caught_up():
        check("failed" in state, "the case before did not get that far")
        xs = tsch.executions(h, tsch.RUN_ONCE)
        caught = [x for x in xs if x["trigger"].get("misfire")]
        check(len(caught) == 1, "%d catch-up executions: %r"
              % (len(caught), [x["trigger"] for x in caught]))
        c = caught[0]
        check(c["status"] == "succeeded", "catch-up run: %s" % c["status"])
        t = c["trigger"]
        check(t["missed"] == sorted(t["missed"]), "missed not oldest first: "
              "%r" % t["missed"])
        missed = [tsch.parse_utc(m) for m in t["missed"]]
        failed = sorted(set(state["failed"][tsch.RUN_ONCE]))
        check(missed == failed, "the catch-up lists %r, the ticks not "
              "recorded were %r" % (t["missed"], failed))
        check(t["missed_count"] == len(missed), "missed_count %r for %d"
              % (t["missed_count"], len(missed)))
        check(tsch.parse_utc(t["scheduled"]) == missed[-1], "catch-up "
              "scheduled %r, not the latest missed time" % t["scheduled"])
        times = tsch.scheduled_of(xs)
        check(len(set(times)) == len(times), "a time ran twice: %r" % times)
        ran = set(times)
        listed = set(missed)
        first, last = int(min(times)), int(max(times))
        dropped = [s for s in range(first, last + 1)
                   if s not in ran and s not in listed]
        check(not dropped, "fire times neither run nor listed: %r" % dropped)
        others = [s for s in missed[:-1] if s in ran]
        check(not others, "missed times that also ran: %r" % others)
        print("# %d ticks not recorded; one catch-up for them, %.1f s after "
              "the limit was lifted" % (len(missed), tsch.parse_utc(
                  c["trigger"]["actual"]) - state["lifted"]), flush=True)
    case("misfire run_once: one catch-up with every tick not recorded, no "
         "time run twice or dropped", caught_up)

    def skipped():
        check("failed" in state, "the case before did not get that far")
        xs = tsch.executions(h, tsch.SKIP)
        check(not [x for x in xs if x["trigger"].get("misfire")],
              "a skip schedule has a catch-up run")
        times = set(tsch.scheduled_of(xs))
        ran = [s for s in state["failed"][tsch.SKIP] if s in times]
        check(not ran, "ticks not recorded that ran: %r" % ran)
        with open(h.log_path, errors="replace") as f:
            log = f.read()
        check("not run (misfire skip)" in log, "the log does not say the "
              "skipped ticks were not run")
    case("misfire skip: the ticks not recorded are not run", skipped)
    ts.stop(ts.current)


def stop_cases(root):
    """SIGTERM while an execution's records cannot be written."""
    h = ts.Host(root, "stopfull", limits={"concurrency": 1}, grace="10s")
    h.start()
    ts.current["host"] = h
    state = {}

    def stop_full():
        state["id"] = start_hold(h)
        hold_files(h)
        ts.current["host"] = None
        t0 = time.monotonic()
        h.signal(signal.SIGTERM)
        rc = h.wait_exit(20)
        took = time.monotonic() - t0
        check(rc == 1, "exit status %r after SIGTERM with records lost: %s"
              % (rc, h.log_tail()))
        with open(h.log_path, errors="replace") as f:
            lost = [ln for ln in f if "records_lost" in ln]
        check(lost and "they are lost" in lost[-1],
              "the log does not say records were lost: %s" % h.log_tail())
        # The 2 s hold ends within the grace, then 3 s of tries.
        check(took >= 3.0, "stopped %.1f s after SIGTERM: the records were "
              "not tried again" % took)
        print("# stopped %.1f s after SIGTERM; %s" % (took, lost[-1].strip()),
              flush=True)
    case("SIGTERM while the store cannot write: records tried for 3 s, the "
         "loss logged, exit 1", stop_full)

    def after():
        check("id" in state, "the SIGTERM case did not get that far")
        h.kill_all()
        h.start()  # its own process: no file-size limit
        ts.current["host"] = h
        x = h.wait_done(state["id"], timeout=10)
        ts.expect_failed(x, "interrupted:")
    case("at the next start that execution is failed as interrupted", after)
    ts.stop(ts.current)


def all_cases(root):
    cases(root)
    paused_cases(root)
    schedule_cases(root)
    stop_cases(root)


def main():
    return ts.run_suite("ferry-full-", all_cases, (os.path.join(ts.FIXTURES,
                                                                "chaos.so"),))


if __name__ == "__main__":
    sys.exit(main())
