#!/usr/bin/env python3
"""Integration test of file.poll triggers in `ferry serve`: a real host
watching directories of the test's own, files dropped into them as a user
(or another program) would, and what became of each file afterwards.

Cases: a file is taken once it is stable and moved to .done/, a failed one
to .error/, include/exclude, a file still being written is not taken until
its size and mtime stop changing, a file of the same name with new content
runs again, batches with max_per_poll, sort_by and delete, recursive with
keep, a file dropped while the host was down, and durability: 500 files
dropped while the host runs, the host killed with SIGKILL in the middle and
restarted; every file ran exactly once and ended in .done/.

Environment (set by CMakeLists.txt): as for test_serve.py, whose Host class
and helpers this reuses; the chaos fixture component gives chaos.sleep.
Definitions: polling.integration.json. FERRY_TEST_KEEP=1 keeps the
temporary directory.

Prints "ok - NAME" or "not ok - NAME: why" per case, then "N passed, M
failed"; exits 1 if anything failed. Python 3 standard library only.
"""

import json
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_serve as ts  # noqa: E402
from test_serve import check, case  # noqa: E402

with open(os.path.join(ts.DEFS, "polling.integration.json")) as f:
    INTEGRATION = json.load(f)
INSTANCE = "poller"
BULK = 500         # files in the durability case
KILL_AFTER = 150   # bulk executions succeeded before the SIGKILL


def executions(h, flow, full=True):
    r = h.get("/api/v1/executions", query={"instance": INSTANCE,
                                           "flow": flow, "limit": 10000,
                                           "oldest_first": "true"})
    check(r.status == 200 and isinstance(r.json, list),
          "executions list: %r" % r)
    if not full:
        return r.json
    return [h.execution(x["id"]) for x in r.json]


def wait_for(what, fn, timeout=20, every=0.05):
    """Calls fn until it returns a true value; fails after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        check(time.monotonic() < deadline, "after %.0f s: %s" % (timeout, what))
        time.sleep(every)


def write(path, text):
    """Writes a file the way a careful producer does not: in place."""
    with open(path, "w") as f:
        f.write(text)


def drop(staging, directory, name, text):
    """Writes a file beside the directory, then renames it in (a whole
    file appears at once)."""
    tmp = os.path.join(staging, name)
    write(tmp, text)
    os.rename(tmp, os.path.join(directory, name))


def files_in(directory):
    """Relative paths of the files under directory, dot dirs included."""
    out = []
    for base, _dirs, names in os.walk(directory):
        for n in names:
            out.append(os.path.relpath(os.path.join(base, n), directory))
    return sorted(out)


def cases(root):
    dirs = {k: os.path.join(root, k) for k in
            ("inbox", "batches", "kept", "bulk", "staging", "listed")}
    for d in dirs.values():
        os.makedirs(d, exist_ok=True)
    lines_file = os.path.join(root, "lines.txt")
    write(lines_file, "")
    instance = {"integration": INTEGRATION["name"], "name": INSTANCE,
                "config": dict({k: dirs[k] for k in
                                ("inbox", "batches", "kept", "bulk",
                                 "listed")},
                               lines=lines_file)}
    h = ts.Host(root, "poll", limits={"timeout": "30s"})
    h.start()
    ts.current["host"] = h
    inbox, staging = dirs["inbox"], dirs["staging"]
    state = {}

    def deploy():
        r = h.deploy(integration=INTEGRATION, instance=instance)
        check(r.status == 201, "deploy answered %r" % r)
    case("deploy four file.poll flows and a component poll", deploy)

    def done_once():
        drop(staging, inbox, "a.xml", "<a>1</a>")
        write(os.path.join(inbox, "ignore-1.xml"), "<x/>")
        write(os.path.join(inbox, "note.txt"), "not xml")
        xs = wait_for("no execution for a.xml",
                      lambda: [x for x in executions(h, "inbox")
                               if x["status"] == "succeeded"])
        check(len(xs) == 1, "%d executions" % len(xs))
        item = xs[0]["output"]
        check(item["name"] == "a.xml" and item["relative"] == "a.xml" and
              item["size"] == 8 and item["path"] ==
              os.path.join(inbox, "a.xml"),
              "the item: %r" % item)
        check(xs[0]["trigger"]["item"] == item and
              xs[0]["trigger"]["items"] == [item] and
              xs[0]["trigger"]["source"] == "file.poll",
              "the trigger payload: %r" % xs[0]["trigger"])
        wait_for("a.xml not in .done/: %r" % files_in(inbox),
                 lambda: files_in(inbox) == [".done/a.xml", "ignore-1.xml",
                                             "note.txt"])
        with open(os.path.join(inbox, ".done", "a.xml")) as f:
            check(f.read() == "<a>1</a>", "content changed")
        time.sleep(2.5)  # a scheduled look more: still nothing else
        check(len(executions(h, "inbox", full=False)) == 1,
              "excluded or not included files ran")
    case("a new file runs once and is moved to .done/; exclude and include "
         "leave the others alone", done_once)

    def failed():
        drop(staging, inbox, "bad1.xml", "<bad/>")
        x = wait_for("no failed execution",
                     lambda: [x for x in executions(h, "inbox")
                              if x["status"] == "failed"])
        check(len(x) == 1 and "bad file bad1.xml" in ts.message(x[0]),
              "failed: %r" % [ts.message(e) for e in x])
        wait_for("bad1.xml not in .error/: %r" % files_in(inbox),
                 lambda: ".error/bad1.xml" in files_in(inbox) and
                 "bad1.xml" not in files_in(inbox))
    case("a file whose execution failed is moved to .error/", failed)

    def stable():
        path = os.path.join(inbox, "growing.xml")
        chunk = "<r>" + "x" * 1000 + "</r>\n"
        before = len(executions(h, "inbox", full=False))
        with open(path, "w") as f:
            for _ in range(20):  # 2 s of writing, 100 ms apart
                f.write(chunk)
                f.flush()
                last_write = time.time()
                time.sleep(0.1)
                check(len(executions(h, "inbox", full=False)) == before,
                      "taken while still being written")
        size = os.path.getsize(path)
        xs = wait_for("growing.xml never ran",
                      lambda: [x for x in executions(h, "inbox")
                               if x["status"] == "succeeded" and
                               x["output"]["name"] == "growing.xml"])
        check(len(xs) == 1, "%d executions" % len(xs))
        check(xs[0]["output"]["size"] == size == 20 * len(chunk),
              "taken at %d bytes of %d" % (xs[0]["output"]["size"], size))
        created = ts_parse(xs[0]["created"])
        # Two looks 400 ms apart after the last write, less a millisecond
        # of the loop's cached clock.
        check(created >= last_write + 0.399,
              "taken %.3f s after the last write (read_lock_interval "
              "400ms)" % (created - last_write))
    case("a file still being written is taken only once it is stable",
         stable)

    def again():
        drop(staging, inbox, "a.xml", "<a>second version</a>")
        xs = wait_for("the second a.xml never ran",
                      lambda: [x for x in executions(h, "inbox")
                               if x["status"] == "succeeded" and
                               x["output"]["name"] == "a.xml" and
                               x["output"]["size"] == 21])
        check(len(xs) == 1, "%d executions" % len(xs))
        renamed = ".done/a.xml." + xs[0]["id"]
        wait_for("not moved beside the first: %r" % files_in(inbox),
                 lambda: renamed in files_in(inbox))
        with open(os.path.join(inbox, ".done", "a.xml")) as f:
            check(f.read() == "<a>1</a>", "the first a.xml was replaced")
    case("a file of the same name with new content runs again; .done/ "
         "keeps both", again)

    def batches():
        d = dirs["batches"]
        names = ["b%02d.dat" % i for i in range(23)]
        for n in names:
            write(os.path.join(staging, n), n)
        for n in names:
            os.rename(os.path.join(staging, n), os.path.join(d, n))
        wait_for("files left: %r" % files_in(d), lambda: files_in(d) == [],
                 timeout=20)
        xs = wait_for("executions still running",
                      lambda: (lambda v: v if all(
                          x["status"] == "succeeded" for x in v) else None)(
                          executions(h, "batches")))
        got = [x["output"] for x in xs]
        flat = [n for o in got for n in o]
        check(sorted(flat) == names, "names run: %r" % got)
        check(all(1 <= len(o) <= 10 for o in got), "batch sizes %r"
              % [len(o) for o in got])
        check(all(o == sorted(o, reverse=True) for o in got),
              "not sorted by -name: %r" % got)
        check(not os.path.exists(os.path.join(d, ".done")),
              "delete: true still moved files")
        print("# batches: %r" % [len(o) for o in got], flush=True)
    case("batch_size 10, sort_by -name, delete: 23 files in batches, each "
         "once, then deleted", batches)

    def kept():
        d = dirs["kept"]
        os.makedirs(os.path.join(d, "sub"))
        write(os.path.join(d, "sub", "x.csv"), "a,b\n")
        write(os.path.join(d, "y.csv"), "c,d\n")
        write(os.path.join(d, "z.txt"), "no")
        xs = wait_for("not both ran",
                      lambda: (lambda v: v if len(v) == 2 and all(
                          x["status"] == "succeeded" for x in v) else None)(
                          executions(h, "kept")))
        check(sorted(x["output"] for x in xs) == ["sub/x.csv", "y.csv"],
              "ran: %r" % [x["output"] for x in xs])
        time.sleep(2.5)
        check(len(executions(h, "kept", full=False)) == 2, "kept files ran "
              "again")
        check(files_in(d) == ["sub/x.csv", "y.csv", "z.txt"],
              "files moved: %r" % files_in(d))
    case("recursive with keep: files in subdirectories run once and stay",
         kept)

    def lines_output():
        return sorted(x["output"] for x in executions(h, "lines")
                      if x["status"] == "succeeded")

    def polls():
        return executions(h, "lines:poll", full=False)

    def wait_poll_after(t):
        """Waits for a poll run created after t (epoch s) to end."""
        return wait_for("no poll run after the change",
                        lambda: [x for x in polls()
                                 if ts_parse(x["created"]) > t and
                                 x["status"] not in ("queued", "running")])

    def component():
        with open(lines_file, "a") as f:
            f.write("one\ntwo\n")
        wait_for("lines did not run: %r" % (lines_output(),),
                 lambda: lines_output() == ["one", "two"])
        ps = polls()
        check(ps and all(p["flow"] == "lines:poll" for p in ps),
              "poll runs not recorded as lines:poll: %r" % ps[:2])
        x = h.execution(ps[-1]["id"])
        check(x["trigger"]["type"] == "poll_run" and
              x["trigger"]["options"] == {"file": lines_file},
              "poll run trigger: %r" % x["trigger"])
        with open(lines_file, "a") as f:
            f.write("three\none\n")
        wait_for("three did not run", lambda: "three" in lines_output())
        wait_poll_after(time.time())
        check(lines_output() == ["one", "three", "two"],
              "a key seen before ran again: %r" % lines_output())
    case("a component's poll trigger (chaos.lines) runs in a worker: new "
         "items run once, a key seen before is dropped", component)

    def component_fails():
        with open(lines_file, "a") as f:
            f.write("FAIL\n")
        t = time.time()
        x = wait_poll_after(t)[-1]
        x = h.execution(x["id"])
        check(x["status"] == "failed" and "says FAIL" in ts.message(x),
              "the failing poll: %s %r" % (x["status"], ts.message(x)))
        # The cursor did not move: the line, made good, is read next.
        with open(lines_file) as f:
            text = f.read()
        write(lines_file, text.replace("FAIL\n", "four\n"))
        wait_for("four did not run", lambda: "four" in lines_output())
        if os.environ.get("FERRY_SANITIZED") == "1":
            return
        with open(lines_file, "a") as f:
            f.write("CRASH\n")
        x = wait_poll_after(time.time())[-1]
        x = h.execution(x["id"])
        check(x["status"] == "failed" and "SIGSEGV" in ts.message(x),
              "the crashing poll: %s %r" % (x["status"], ts.message(x)))
        with open(lines_file) as f:
            text = f.read()
        write(lines_file, text.replace("CRASH\n", "five\n"))
        wait_for("five did not run", lambda: "five" in lines_output())
    case("a poll that fails or crashes keeps its cursor; the host goes on",
         component_fails)

    def listed():
        d = dirs["listed"]
        drop(staging, d, "a.txt", "aaa")
        drop(staging, d, "bad1.txt", "bbb")
        write(os.path.join(d, "skip.csv"), "not included")
        def outcomes():
            xs = executions(h, "listed")
            if len(xs) < 2 or any(x["status"] not in ts.FINAL for x in xs):
                return None
            return xs
        xs = wait_for("listed files did not both run", outcomes)
        check(sorted((x["status"], x["trigger"]["item"]["name"]) for x in xs)
              == [("failed", "bad1.txt"), ("succeeded", "a.txt")],
              "outcomes: %r" % [(x["status"], x["trigger"]["item"]["name"])
                                for x in xs])
        check(xs[0]["trigger"]["item"]["key"].startswith(
            xs[0]["trigger"]["item"]["relative"] + "|"),
              "item key: %r" % xs[0]["trigger"]["item"])
        # The next poll run disposes of them, through the component.
        wait_for("not disposed of: %r" % files_in(d),
                 lambda: files_in(d) == [".done/a.txt", ".error/bad1.txt",
                                         "skip.csv"])
        time.sleep(2.5)
        check(len(executions(h, "listed", full=False)) == 2,
              "disposed files ran again")
        # Every poll run that ended succeeded (the newest may still be
        # running: the poll runs every second).
        runs = [r for r in executions(h, "listed:poll", full=False)
                if r["status"] in ts.FINAL]
        check(runs and all(r["status"] == "succeeded" for r in runs),
              "poll runs: %r" % [r["status"] for r in runs][:5])
        # A file being written is taken only once it is stable.
        path = os.path.join(d, "growing.txt")
        with open(path, "w") as f:
            for _ in range(8):  # 1.6 s, the poll runs every second
                f.write("x" * 100)
                f.flush()
                time.sleep(0.2)
        x = wait_for("growing.txt did not run",
                     lambda: [x for x in executions(h, "listed")
                              if x["trigger"]["item"]["name"] ==
                              "growing.txt"])
        check(len(x) == 1 and x[0]["trigger"]["item"]["size"] == 800,
              "taken at %r bytes" % [e["trigger"]["item"]["size"] for e in x])
    case("a component's file-listing trigger (chaos.files): the host "
         "selects, dedupes and has the component move files after their "
         "runs", listed)

    def while_down():
        h.signal(signal.SIGTERM)
        check(h.wait_exit(10) == 0, "the host did not stop")
        ts.wait_gone(h.dir, 3)
        drop(staging, inbox, "c.xml", "<c/>")
        h.start()
        xs = wait_for("c.xml never ran",
                      lambda: [x for x in executions(h, "inbox")
                               if x["status"] == "succeeded" and
                               x["output"]["name"] == "c.xml"])
        check(len(xs) == 1, "%d executions" % len(xs))
        wait_for("c.xml not moved", lambda: ".done/c.xml" in files_in(inbox))
        # The stored cursor survived: no line ran again after the start.
        wait_poll_after(time.time())
        want = ["five", "four", "one", "three", "two"]
        if os.environ.get("FERRY_SANITIZED") == "1":
            want.remove("five")
        check(lines_output() == want, "lines after the restart: %r"
              % lines_output())
    case("a file dropped while the host was down runs after the start",
         while_down)

    def bulk():
        d = dirs["bulk"]
        names = ["f%03d.dat" % i for i in range(BULK)]
        for n in names:
            write(os.path.join(staging, n), "file " + n)
        state["names"] = names
        t0 = time.monotonic()
        moved = 0
        # 50 files every 50 ms while the host works through them.
        while moved < BULK:
            for n in names[moved:moved + 50]:
                os.rename(os.path.join(staging, n), os.path.join(d, n))
            moved += 50
            time.sleep(0.05)

        def enough():
            xs = executions(h, "bulk", full=False)
            return sum(1 for x in xs if x["status"] == "succeeded") \
                >= KILL_AFTER
        wait_for("not %d executions" % KILL_AFTER, enough, timeout=60,
                 every=0.02)
        ts.current["host"] = None
        os.kill(h.proc.pid, signal.SIGKILL)
        h.proc.wait(5)
        ts.wait_gone(h.dir, 3)
        h.kill_all()
        left = len([n for n in os.listdir(d) if not n.startswith(".")])
        print("# killed after %.2f s with %d files still in the directory"
              % (time.monotonic() - t0, left), flush=True)
        check(left > 0, "every file was done before the kill; the case "
              "proves nothing")
        h.start()
        ts.current["host"] = h

        def drained():
            if [n for n in os.listdir(d) if not n.startswith(".")]:
                return False
            xs = executions(h, "bulk", full=False)
            return all(x["status"] not in ("queued", "running") for x in xs)
        wait_for("files or executions left: %d files"
                 % len([n for n in os.listdir(d) if not n.startswith(".")]),
                 drained, timeout=120, every=0.2)
        xs = executions(h, "bulk")
        ran = {}
        interrupted, other = 0, []
        for x in xs:
            if x["status"] == "succeeded":
                ran.setdefault(x["output"], []).append(x["id"])
            elif x["status"] == "failed" and \
                    ts.message(x).startswith("interrupted:"):
                interrupted += 1
            else:
                other.append((x["id"], x["status"], ts.message(x)))
        dups = {n: v for n, v in ran.items() if len(v) > 1}
        missing = [n for n in names if n not in ran]
        done = files_in(os.path.join(d, ".done"))
        print("# %d executions: %d succeeded, %d interrupted by the kill "
              "(their files were taken again), %d other; %d files in .done/"
              % (len(xs), sum(len(v) for v in ran.values()), interrupted,
                 len(other), len(done)), flush=True)
        check(not other, "executions neither succeeded nor interrupted: %r"
              % other[:3])
        check(not missing, "%d files never ran: %r" % (len(missing),
                                                        missing[:5]))
        check(not dups, "%d files ran twice: %r" % (len(dups),
                                                     sorted(dups)[:3]))
        check(done == names, "in .done/: %d files, first differences %r"
              % (len(done), sorted(set(done) ^ set(names))[:5]))
        check(not os.path.exists(os.path.join(d, ".error")),
              "files in .error/: %r" % files_in(os.path.join(d, ".error")))
    case("500 files, SIGKILL of the host in the middle, restart: every file "
         "ran exactly once and ended in .done/", bulk)

    def metrics():
        # This host's life counts what it took: one more file.
        drop(staging, inbox, "m.xml", "<m/>")
        wait_for("m.xml did not run",
                 lambda: [x for x in executions(h, "inbox")
                          if x["status"] == "succeeded" and
                          x["output"]["name"] == "m.xml"])
        r = h.get("/metrics")
        check(r.status == 200 and 'ferry_poll_items_total{source="file.poll"}'
              in r.text, "no poll metric: %r" % r)
    case("the poll metric counts taken items", metrics)
    ts.stop(ts.current)


def ts_parse(text):
    import datetime
    body = text[:-1]
    fmt = "%Y-%m-%dT%H:%M:%S.%f" if "." in body else "%Y-%m-%dT%H:%M:%S"
    d = datetime.datetime.strptime(body, fmt)
    return d.replace(tzinfo=datetime.timezone.utc).timestamp()


def main():
    return ts.run_suite("ferry-polling-", cases,
                        (os.path.join(ts.FIXTURES, "chaos.so"),))


if __name__ == "__main__":
    sys.exit(main())
