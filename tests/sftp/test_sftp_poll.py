#!/usr/bin/env python3
"""sftp.new_files in `ferry serve`: a real host (tests/serve/test_serve.py's
Host helper) whose flow is triggered by the sftp component's file-listing
poll against a real sshd on loopback (sshd.py). Each execution downloads
its file with sftp.get; the host has the component move it to .done/ (or
.error/) after the execution.

Cases: a new file runs once and is moved to .done/, a failed one to
.error/, a file of the same name arriving later runs again and .done/
keeps both; 500 files arriving while the host runs, the host killed with
SIGKILL in the middle and restarted: every file ran exactly once and ended
in .done/.

Environment (set by CMakeLists.txt): FERRY_BIN, SFTP_SO; as for
test_serve.py otherwise. FERRY_TEST_KEEP=1 keeps the temporary directory.

Prints "ok - NAME" or "not ok - NAME: why" per case, then "N passed, M
failed"; exits 1 if anything failed, 77 if sshd is missing. Python 3
standard library only.
"""

import os
import signal
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "serve"))
import sshd  # noqa: E402
import test_serve as ts  # noqa: E402
from test_serve import case, check  # noqa: E402

SFTP_SO = os.path.abspath(os.environ.get("SFTP_SO",
                                         "build/components/sftp.so"))
INSTANCE = "sftp-poll"
BULK = 500        # files in the durability case
KILL_AFTER = 150  # bulk executions succeeded before the SIGKILL


def integration():
    def flow(name, every):
        return {
            "name": name,
            "trigger": {"type": "poll", "source": "sftp.new_files",
                        "every": every, "connection": "partner",
                        "options": {"path": "{{ config.%s }}" % name},
                        "files": {"include": "*.dat",
                                  "read_lock_interval": "300ms"}},
            "steps": [
                {"name": "get", "action": "sftp.get",
                 "connection": "partner",
                 "input": {"path": "{{ trigger.item.path }}", "as": "text"}},
                {"name": "bad", "jq": ".name | startswith(\"bad\")",
                 "input": "{{ trigger.item }}"},
                {"name": "check", "branch": [
                    {"when": "{{ steps.bad.output }}",
                     "steps": [{"name": "fail", "action": "core.fail",
                                "input": {"message":
                                          "bad {{ trigger.item.name }}"}}]}],
                 "else": [{"name": "ok", "action": "core.set",
                           "input": {"value": {
                               "name": "{{ trigger.item.name }}",
                               "text": "{{ steps.get.output.text }}"}}}]}]}
    return {"name": "sftp-poll", "version": "1.0.0",
            "config": {"inbox": {"type": "string", "required": True},
                       "bulk": {"type": "string", "required": True}},
            "connections": {"partner": {"type": "sftp.server"}},
            "flows": [flow("inbox", "1s"), flow("bulk", "1s")]}


def executions(h, flow, full=True):
    r = h.get("/api/v1/executions", query={"instance": INSTANCE,
                                           "flow": flow, "limit": 10000,
                                           "oldest_first": "true"})
    check(r.status == 200 and isinstance(r.json, list),
          "executions list: %r" % r)
    if not full:
        return r.json
    return [h.execution(x["id"]) for x in r.json]


def wait_for(what, fn, timeout=30, every=0.1):
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        check(time.monotonic() < deadline,
              "after %.0f s: %s" % (timeout, what))
        time.sleep(every)


def files_in(directory):
    out = []
    for base, _dirs, names in os.walk(directory):
        for n in names:
            out.append(os.path.relpath(os.path.join(base, n), directory))
    return sorted(out)


def cases(root, server):
    dirs = {}
    for k in ("inbox", "bulk", "staging"):
        dirs[k] = os.path.join(server.data, k)
        os.makedirs(dirs[k])
        server.own(dirs[k])
    comps = os.path.join(root, "components")
    os.makedirs(comps)
    os.symlink(SFTP_SO, os.path.join(comps, "sftp.so"))
    fields = {"host": "127.0.0.1", "port": server.port,
              "username": server.user, "host_key_sha256": server.fp,
              "private_key": server.key_text("ed25519"), "root": server.data}
    instance = {"integration": "sftp-poll", "name": INSTANCE,
                "config": {"inbox": dirs["inbox"], "bulk": dirs["bulk"]},
                "connections": {"partner": {"fields": fields}}}
    h = ts.Host(root, "poll", limits={"timeout": "30s"}, components=comps)
    h.start()
    ts.current["host"] = h
    staging = dirs["staging"]

    def drop(directory, name, text):
        """A whole file appears at once, as a careful uploader does it."""
        tmp = os.path.join(staging, name)
        with open(tmp, "w") as f:
            f.write(text)
        server.own(tmp)
        os.rename(tmp, os.path.join(directory, name))

    def deploy():
        r = h.deploy(integration=integration(), instance=instance)
        check(r.status == 201, "deploy answered %r" % r)
    case("deploy a flow triggered by sftp.new_files", deploy)
    if ts.results["failed"]:
        return

    def once():
        inbox = dirs["inbox"]
        drop(inbox, "a.dat", "alpha")
        drop(inbox, "bad1.dat", "broken")
        drop(inbox, "note.txt", "not included")

        def ended():
            xs = executions(h, "inbox")
            if len(xs) < 2 or any(x["status"] not in ts.FINAL for x in xs):
                return None
            return xs
        xs = wait_for("a.dat and bad1.dat did not both run", ended)
        by = {x["trigger"]["item"]["name"]: x for x in xs}
        check(sorted(by) == ["a.dat", "bad1.dat"], "ran: %r" % sorted(by))
        a = by["a.dat"]
        check(a["status"] == "succeeded" and
              a["output"] == {"name": "a.dat", "text": "alpha"},
              "a.dat: %s %r" % (a["status"], a.get("output")))
        item = a["trigger"]["item"]
        check(item["path"] == os.path.join(inbox, "a.dat") and
              item["relative"] == "a.dat" and item["size"] == 5 and
              a["trigger"]["source"] == "sftp.new_files",
              "the trigger payload: %r" % a["trigger"])
        check(by["bad1.dat"]["status"] == "failed" and
              "bad bad1.dat" in ts.message(by["bad1.dat"]),
              "bad1.dat: %r" % ts.message(by["bad1.dat"]))
        wait_for("not disposed of: %r" % files_in(inbox),
                 lambda: files_in(inbox) == [".done/a.dat", ".error/bad1.dat",
                                             "note.txt"])
        time.sleep(2.5)  # more polls: nothing runs again
        check(len(executions(h, "inbox", full=False)) == 2,
              "disposed files ran again")
        runs = [r for r in executions(h, "inbox:poll", full=False)
                if r["status"] in ts.FINAL]
        check(runs and all(r["status"] == "succeeded" for r in runs),
              "poll runs: %r" % [r["status"] for r in runs][:5])
    case("a new file runs once and is moved to .done/, a failed one to "
         ".error/, an excluded one stays", once)

    def again():
        inbox = dirs["inbox"]
        drop(inbox, "a.dat", "alpha, second version")
        xs = wait_for("the second a.dat did not run",
                      lambda: [x for x in executions(h, "inbox")
                               if x["status"] == "succeeded" and
                               x["output"]["text"] ==
                               "alpha, second version"])
        check(len(xs) == 1, "%d executions" % len(xs))
        wait_for("not beside the first in .done/: %r" % files_in(inbox),
                 lambda: len([n for n in files_in(inbox)
                              if n.startswith(".done/a.dat")]) == 2 and
                 "a.dat" not in files_in(inbox))
        with open(os.path.join(inbox, ".done", "a.dat")) as f:
            check(f.read() == "alpha", "the first a.dat was replaced")
    case("a file of the same name with new content runs again; .done/ "
         "keeps both", again)

    def bulk():
        d = dirs["bulk"]
        names = ["f%03d.dat" % i for i in range(BULK)]
        for n in names:
            with open(os.path.join(staging, n), "w") as f:
                f.write("file " + n)
            server.own(os.path.join(staging, n))
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
        wait_for("not %d executions" % KILL_AFTER, enough, timeout=120,
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
                 drained, timeout=240, every=0.2)
        print("# drained %.1f s after the first file"
              % (time.monotonic() - t0), flush=True)
        xs = executions(h, "bulk")
        ran = {}
        interrupted, other = 0, []
        for x in xs:
            if x["status"] == "succeeded":
                ran.setdefault(x["output"]["name"], []).append(x["id"])
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
    ts.stop(ts.current)


def main():
    try:
        server = sshd.Sshd()
    except sshd.Unavailable as e:
        print("SKIP: %s" % e)
        return sshd.SKIP
    try:
        server.start()
        return ts.run_suite("ferry-sftp-poll-",
                            lambda root: cases(root, server), (SFTP_SO,))
    finally:
        if ts.results["failed"]:
            print("# sshd log (tail):\n# " + server.log_tail(20)
                  .replace("\n", "\n# "))
        server.stop()


if __name__ == "__main__":
    sys.exit(main())
