#!/usr/bin/env python3
"""The sftp benchmark (`bench/run sftp`), see docs/bench.md.

--files files of --size bytes (500 of 20 KB, random bytes) in a directory
on a real OpenSSH sshd on 127.0.0.1 (tests/sftp/sshd.py, run under
reaper.py so that the CPU of all its processes is counted), each read
whole and moved to .done/ in that directory, two ways, in --rounds
alternating rounds:

- baseline: OpenSSH's own client, `sftp -b BATCH` over one connection,
  a `get` into a local directory and a `rename` into .done/ per file; the
  wall clock of the whole process, and the same minus the median of three
  connections with an empty batch (the connection set-up);
- ferry: a real `ferry serve` (the Release build) and
  bench/sftp/sftp.integration.json: a flow triggered by sftp.new_files on
  that directory (every 1s, read_lock "none", no max_per_poll;
  limits.concurrency --concurrency), `sftp.get` of the file into a blob
  and `core.set` of its name and size; the host has each file moved to
  .done/ after its execution. Timed from the deploy (the host is up and
  ready; deploying starts the first poll) until the last file is in
  .done/. Checked afterwards: every file in .done/ once and unchanged, one
  succeeded execution per file whose output has the file's size, every
  poll item marked "moved" (the store, read-only).

Then, once each and each after a baseline run of its own: ferry with the
trigger's defaults (every 60s, read_lock "changed" over 1s,
limits.concurrency 16), and ferry with batch_size B for each of
--batch-sizes (the steps in a for_each over trigger.items: one execution,
and one SSH session, per B files).

Targets: ferry within 2 times the baseline, and under 10 s for the 500
files. A benchmark, not a test: it exits 0 whatever it measures, prints
"TARGET MISSED" where a figure is over its target and "ERROR" where a
check failed, and ends with key=value lines. Python 3 standard library,
/usr/sbin/sshd, ssh-keygen and OpenSSH's sftp.
"""

import argparse
import json
import os
import resource
import shlex
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "sftp"))
sys.path.insert(0, os.path.join(ROOT, "bench", "serve"))
import sshd  # noqa: E402  (a real sshd on loopback)
import serve_bench as sb  # noqa: E402  (Host, /proc helpers, kill_all)

INSTANCE = "sftp-bench"
FLOW = "take"
TARGET_RATIO = 2.0
TARGET_S = 10.0


# ---- small helpers ----

def median(xs):
    return statistics.median(xs) if xs else float("nan")


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100 * (len(xs) - 1) + 0.5))] \
        if xs else float("nan")


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def tree_cpu(pid):
    """CPU seconds of pid and everything under it, alive or reaped."""
    c = sb.proc_cpu(pid)
    total = c[0] + c[1] if c else 0.0
    for kid in sb.proc_children(pid):
        total += tree_cpu(kid)
    return total


def children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def start_server(root):
    """A real sshd (tests/sftp/sshd.py) run under reaper.py, so that the
    CPU of every process it starts is counted (see reaper.py). sshd.py
    starts the program its SSHD names: here, a wrapper script."""
    server = sshd.Sshd()
    wrapper = os.path.join(root, "sshd-under-reaper")
    with open(wrapper, "w") as f:
        f.write("#!/bin/sh\nexec %s %s %s \"$@\"\n" % (
            shlex.quote(sys.executable),
            shlex.quote(os.path.join(HERE, "reaper.py")),
            shlex.quote(sshd.SSHD)))
    os.chmod(wrapper, 0o755)
    sshd.SSHD = wrapper
    try:
        server.start()
    except BaseException:
        server.stop()
        raise
    return server


def settle(server, timeout=3):
    """Waits until the connections' processes have ended (the reaper's
    only descendant is then sshd itself), so that the CPU they used is
    counted."""
    deadline = time.monotonic() + timeout
    while len(server.sessions()) > 1 and time.monotonic() < deadline:
        time.sleep(0.01)


def error(msg):
    print("  ERROR: " + msg, flush=True)


def read_bytes(path):
    with open(path, "rb") as f:
        return f.read()


# ---- the files ----

class Files:
    """The files on the server: made again before every run, checked
    after it."""

    def __init__(self, server, n, size):
        self.server = server
        self.inbox = os.path.join(server.data, "in")
        self.done = os.path.join(self.inbox, ".done")
        self.size = size
        self.names = ["f%04d.dat" % i for i in range(n)]
        self.content = {name: os.urandom(size) for name in self.names}

    def make(self):
        shutil.rmtree(self.inbox, ignore_errors=True)
        os.makedirs(self.inbox)
        self.server.own(self.inbox)
        for name in self.names:
            path = os.path.join(self.inbox, name)
            with open(path, "wb") as f:
                f.write(self.content[name])
            self.server.own(path)

    def count_done(self):
        try:
            return len(os.listdir(self.done))
        except FileNotFoundError:
            return 0

    def check_moved(self, who):
        """Every file in .done/ under its own name, whole, once; nothing
        left or elsewhere. Returns the problems (empty when none)."""
        problems = []
        left = sorted(n for n in os.listdir(self.inbox)
                      if not n.startswith("."))
        if left:
            problems.append("%s: %d files not moved (%s...)"
                            % (who, len(left), left[0]))
        done = sorted(os.listdir(self.done)) if os.path.isdir(self.done) \
            else []
        if done != self.names:
            extra = sorted(set(done) - set(self.names))
            problems.append("%s: %d files in .done/ for %d (%d unexpected, "
                            "e.g. %s)" % (who, len(done), len(self.names),
                                          len(extra), extra[:3]))
        bad = [n for n in done if n in self.content and
               read_bytes(os.path.join(self.done, n)) != self.content[n]]
        if bad:
            problems.append("%s: %d files changed in .done/" % (who, len(bad)))
        others = sorted(n for n in os.listdir(self.inbox)
                        if n.startswith(".") and n != ".done")
        if others:
            problems.append("%s: unexpected %s" % (who, others))
        return problems


# ---- the baseline: OpenSSH's sftp -b ----

class Baseline:
    def __init__(self, server, files, root):
        self.server = server
        self.files = files
        self.local = os.path.join(root, "got")
        self.known_hosts = os.path.join(root, "known_hosts")
        with open(server.host_key + ".pub") as f:
            kind, key = f.read().split()[:2]
        with open(self.known_hosts, "w") as f:
            f.write("[127.0.0.1]:%d %s %s\n" % (server.port, kind, key))
        self.batch = os.path.join(root, "batch")
        with open(self.batch, "w") as f:
            f.write("-mkdir %s\n" % files.done)
            for name in files.names:
                src = os.path.join(files.inbox, name)
                f.write("get %s %s\n" % (src, os.path.join(self.local, name)))
                f.write("rename %s %s\n"
                        % (src, os.path.join(files.done, name)))
        self.empty = os.path.join(root, "empty-batch")
        open(self.empty, "w").close()

    def sftp(self, batch):
        s = self.server
        cmd = ["sftp", "-q", "-b", batch, "-F", "/dev/null",
               "-i", s.keys["ed25519"], "-P", str(s.port),
               "-o", "UserKnownHostsFile=" + self.known_hosts,
               "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes",
               "-o", "IdentitiesOnly=yes", "%s@127.0.0.1" % s.user]
        cpu0, sshd0 = children_cpu(), tree_cpu(s.proc.pid)
        t0 = time.monotonic()
        p = subprocess.run(cmd, stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                           text=True)
        wall = time.monotonic() - t0
        settle(s)
        if p.returncode:
            raise RuntimeError("sftp -b exited with %d: %s"
                               % (p.returncode, p.stderr.strip()[-300:]))
        return {"s": wall, "client_cpu": children_cpu() - cpu0,
                "sshd_cpu": tree_cpu(s.proc.pid) - sshd0}

    def run(self):
        shutil.rmtree(self.local, ignore_errors=True)
        os.makedirs(self.local)
        self.files.make()
        r = self.sftp(self.batch)
        empty = [self.sftp(self.empty) for _ in range(3)]
        for k in ("s", "client_cpu", "sshd_cpu"):
            r["connect_" + k] = median([e[k] for e in empty])
        r["net_s"] = r["s"] - r["connect_s"]
        got = sorted(os.listdir(self.local))
        r["problems"] = self.files.check_moved("baseline")
        if got != self.files.names or any(
                read_bytes(os.path.join(self.local, n))
                != self.files.content[n] for n in got):
            r["problems"].append("baseline: %d files downloaded, not the %d "
                                 "whole" % (len(got), len(self.files.names)))
        return r


# ---- ferry ----

def integration(settings, batch_size=1):
    """sftp.integration.json with the trigger's settings: those given in
    settings replace the file's (None keeps it); settings None removes
    them all, leaving the defaults. With batch_size over 1, each execution
    takes that many files and reads them in a for_each."""
    with open(os.path.join(HERE, "sftp.integration.json")) as f:
        doc = json.load(f)
    flow = doc["flows"][0]
    trig = flow["trigger"]
    files = trig["files"]
    if settings is None:
        trig.pop("every", None)
        for k in ("read_lock", "read_lock_interval", "max_per_poll"):
            files.pop(k, None)
    else:
        for k, v in settings.items():
            if v is None:
                continue
            if k == "every":
                trig[k] = v
            else:
                files[k] = v
    if batch_size > 1:
        trig["batch_size"] = batch_size
        text = json.dumps(flow["steps"]).replace("trigger.item.", "file.")
        flow["steps"] = [{"name": "files", "for_each": "{{ trigger.items }}",
                          "as": "file", "steps": json.loads(text)}]
    return doc


def describe(doc, concurrency):
    trig = doc["flows"][0]["trigger"]
    files = trig["files"]
    text = ("every %s, read_lock %s, max_per_poll %s, limits.concurrency %d"
            % (trig.get("every", "60s (default)"),
               files.get("read_lock", "\"changed\" over 1s (default)"),
               files.get("max_per_poll", "0 = no limit (default)"),
               concurrency))
    if trig.get("batch_size", 1) > 1:
        text += ", batch_size %d (a for_each over trigger.items)" \
            % trig["batch_size"]
    return text


class Ferry:
    def __init__(self, build, server, files, root, timeout):
        self.build = build
        self.server = server
        self.files = files
        self.root = root
        self.timeout = timeout
        self.sftp_so = os.path.join(build, "components", "sftp.so")
        self.runs = 0
        s = server
        self.instance = {
            "integration": "bench-sftp", "name": INSTANCE,
            "config": {"inbox": files.inbox},
            "connections": {"partner": {"fields": {
                "host": "127.0.0.1", "port": s.port, "username": s.user,
                "private_key": s.key_text("ed25519"),
                "host_key_sha256": s.fp, "root": s.data}}}}

    def run(self, doc, concurrency):
        """One run: a new host, the files made again, the instance
        deployed, timed until every file is in .done/."""
        self.runs += 1
        self.files.make()
        h = sb.Host(self.build, self.root, "ferry-%d" % self.runs,
                    concurrency=concurrency)
        os.symlink(self.sftp_so, os.path.join(h.components, "sftp.so"))
        h.start()
        n = len(self.files.names)
        sshd_pid = self.server.proc.pid
        try:
            cpu0 = (tree_cpu(h.proc.pid), sb.proc_cpu(h.proc.pid)[0],
                    tree_cpu(sshd_pid))
            t0_us = time.time() * 1e6
            t0 = time.monotonic()
            h.deploy(doc, self.instance)
            while self.files.count_done() < n and \
                    time.monotonic() - t0 < self.timeout:
                time.sleep(0.01)
            wall = time.monotonic() - t0
            settle(self.server)
            cpu1 = (tree_cpu(h.proc.pid), sb.proc_cpu(h.proc.pid)[0],
                    tree_cpu(sshd_pid))
            # The host marks the items disposed of once the poll run that
            # moved them has ended: wait for that too (outside the time).
            wait_marked(h.db, n, 10)
        finally:
            h.stop()
        r = {"s": wall, "n": n, "ferry_cpu": cpu1[0] - cpu0[0],
             "host_cpu": cpu1[1] - cpu0[1], "sshd_cpu": cpu1[2] - cpu0[2],
             "timed_out": self.files.count_done() < n}
        r.update(store_figures(h.db, t0_us))
        batch = doc["flows"][0]["trigger"].get("batch_size", 1)
        r["problems"] = self.check(r, -(-n // batch))
        return r

    def check(self, r, executions):
        n = len(self.files.names)
        problems = []
        if r["timed_out"]:
            problems.append("ferry: only %d of %d files in .done/ after "
                            "%.0f s" % (self.files.count_done(), n,
                                        self.timeout))
        problems += self.files.check_moved("ferry")
        st = r["status"]
        if st.get("succeeded", 0) != executions or \
                sum(st.values()) != executions:
            problems.append("ferry: executions %s, not %d succeeded"
                            % (st, executions))
        ran = {}
        for o in r["outputs"]:
            ran.setdefault(o.get("name"), []).append(o.get("bytes"))
        missing = [x for x in self.files.names if x not in ran]
        twice = [x for x, v in ran.items() if len(v) > 1]
        short = [x for x, v in ran.items() if v[0] != self.files.size]
        if missing or twice or short or len(ran) != n:
            problems.append("ferry: of %d files, %d never ran, %d ran more "
                            "than once, %d were not read whole, %d unknown "
                            "ran" % (n, len(missing), len(twice), len(short),
                                     len(set(ran) - set(self.files.names))))
        if r["moved"] != n or r["items"] != n:
            problems.append("ferry: %d poll items, %d marked moved, not %d"
                            % (r["items"], r["moved"], n))
        return problems


def ro(db):
    return sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=30)


def wait_marked(db, n, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        c = ro(db)
        try:
            k = c.execute("SELECT count(*) FROM poll_items "
                          "WHERE disposed_us IS NOT NULL").fetchone()[0]
        finally:
            c.close()
        if k >= n:
            return
        time.sleep(0.05)


def store_figures(db, t0_us):
    """What the store says about the run, times relative to the deploy."""
    c = ro(db)
    try:
        rows = c.execute("SELECT id, status, created_us, started_us, "
                         "ended_us, output_json FROM executions "
                         "WHERE flow = ?", (FLOW,)).fetchall()
        polls = c.execute("SELECT created_us, started_us, ended_us "
                          "FROM executions WHERE flow = ? ORDER BY created_us",
                          (FLOW + ":poll",)).fetchall()
        gets = [r[0] for r in c.execute(
            "SELECT s.duration_us FROM steps s JOIN executions x "
            "ON x.id = s.execution_id WHERE x.flow = ? AND s.name = 'get'",
            (FLOW,))]
        connects = [r[0] for r in c.execute(
            "SELECT l.message FROM logs l JOIN executions x "
            "ON x.id = l.execution_id WHERE x.flow = ? "
            "AND l.message LIKE 'connected to %'", (FLOW,))]
        items = c.execute("SELECT count(*), sum(disposition = 'moved'), "
                          "max(disposed_us) FROM poll_items").fetchone()
    finally:
        c.close()
    status, outputs = {}, []
    for _id, st, _c, _s, _e, out in rows:
        status[st] = status.get(st, 0) + 1
        o = json.loads(out) if out else None
        # {"name", "bytes"}, or a list of them when batched
        outputs += o if isinstance(o, list) else [o] if o else []
    ended = [r for r in rows if r[3] and r[4]]
    connect_ms = [float(m.rsplit(" in ", 1)[1].split()[0])
                  for m in connects if " in " in m]

    def rel(us):
        return (us - t0_us) / 1e6 if us else float("nan")
    return {
        "status": status, "outputs": outputs,
        "polls": len(polls),
        "first_poll_s": rel(polls[0][0]) if polls else float("nan"),
        "first_start_s": rel(min(r[3] for r in ended)) if ended
        else float("nan"),
        "last_end_s": rel(max(r[4] for r in ended)) if ended
        else float("nan"),
        "last_moved_s": rel(items[2]),
        "run_ms": [(r[4] - r[3]) / 1000 for r in ended],
        "wait_ms": [(r[3] - r[2]) / 1000 for r in ended],
        "get_ms": [d / 1000 for d in gets if d is not None],
        "connect_ms": connect_ms,
        "items": items[0] or 0, "moved": items[1] or 0,
    }


# ---- the report ----

def files_per_s(n, secs):
    return n / secs if secs > 0 else float("nan")


def round_line(i, n, b, f):
    return ("  round %d: baseline %.2f s (%.2f s without the connection, "
            "%.3f s), ferry %.2f s: %.1f files/s against %.0f, ratio %.2f"
            % (i, b["s"], b["net_s"], b["connect_s"], f["s"],
               files_per_s(n, f["s"]), files_per_s(n, b["s"]),
               f["s"] / b["s"]))


def ferry_detail(f):
    return [
        "    timeline from the deploy: first poll run created at %.2f s, "
        "first execution started %.2f s, last ended %.2f s, last file "
        "marked moved %.2f s; %d poll runs"
        % (f["first_poll_s"], f["first_start_s"], f["last_end_s"],
           f["last_moved_s"], f["polls"]),
        "    per execution: queue wait p50 %.0f ms, p99 %.0f ms; run "
        "(worker start to end) p50 %.1f ms, p99 %.1f ms; sftp.get step "
        "p50 %.1f ms; SSH session set-up (its log line) p50 %.0f ms, "
        "p99 %.0f ms"
        % (pct(f["wait_ms"], 50), pct(f["wait_ms"], 99),
           pct(f["run_ms"], 50), pct(f["run_ms"], 99),
           pct(f["get_ms"], 50), pct(f["connect_ms"], 50),
           pct(f["connect_ms"], 99)),
        "    CPU: host %.2f s, zygote and workers %.2f s, sshd %.2f s: "
        "%.1f, %.1f and %.1f ms a file"
        % (f["host_cpu"], f["ferry_cpu"] - f["host_cpu"], f["sshd_cpu"],
           1e3 * f["host_cpu"] / f["n"],
           1e3 * (f["ferry_cpu"] - f["host_cpu"]) / f["n"],
           1e3 * f["sshd_cpu"] / f["n"]),
    ]


def report(n, size, rounds, extras, settings_text):
    bs = [b for b, _ in rounds]
    fs = [f for _, f in rounds]
    b_s = median([b["s"] for b in bs])
    b_net = median([b["net_s"] for b in bs])
    connect_s = median([b["connect_s"] for b in bs])
    f_s = median([f["s"] for f in fs])
    ratio = f_s / b_s
    ratio_net = f_s / b_net if b_net > 0 else float("nan")
    mid = sorted(fs, key=lambda f: f["s"])[len(fs) // 2]
    mid_b = sorted(bs, key=lambda b: b["s"])[len(bs) // 2]
    print()
    print("  baseline, sftp -b over one connection: median %.2f s, %.0f "
          "files/s (rounds %s); without the connection set-up (median "
          "%.3f s) %.2f s, %.0f files/s"
          % (b_s, files_per_s(n, b_s), ", ".join("%.2f" % b["s"] for b in bs),
             connect_s, b_net, files_per_s(n, b_net)))
    print("    CPU: sftp and ssh %.2f s, sshd %.2f s: %.1f and %.1f ms a "
          "file; an empty batch (the connection alone): %.0f and %.0f ms"
          % (mid_b["client_cpu"], mid_b["sshd_cpu"],
             1e3 * mid_b["client_cpu"] / n, 1e3 * mid_b["sshd_cpu"] / n,
             1e3 * mid_b["connect_client_cpu"],
             1e3 * mid_b["connect_sshd_cpu"]))
    print("  ferry, sftp.new_files in ferry serve (%s): median %.2f s, "
          "%.0f files/s (rounds %s)"
          % (settings_text, f_s, files_per_s(n, f_s),
             ", ".join("%.2f" % f["s"] for f in fs)))
    for line in ferry_detail(mid):
        print(line)
    print("  ferry / baseline: %.2f (rounds %s; %.2f against the baseline "
          "without its connection): target <= %.0f%s"
          % (ratio, ", ".join("%.2f" % (f["s"] / b["s"]) for b, f in rounds),
             ratio_net, TARGET_RATIO,
             "" if ratio <= TARGET_RATIO else " TARGET MISSED"))
    print("  ferry, %d files: %.2f s: target < %.0f s%s"
          % (n, f_s, TARGET_S, "" if f_s < TARGET_S else " TARGET MISSED"))
    for name, text, b, f in extras:
        print("  %s (%s): %.2f s, %.0f files/s; %.2f times the baseline run "
              "just before it (%.2f s)"
              % (name, text, f["s"], files_per_s(n, f["s"]), f["s"] / b["s"],
                 b["s"]))
        for line in ferry_detail(f):
            print(line)
    print(flush=True)
    print("sftp.baseline: files=%d size=%d median_s=%.3f files_per_s=%.1f "
          "connect_s=%.3f net_s=%.3f rounds_s=%s"
          % (n, size, b_s, files_per_s(n, b_s), connect_s, b_net,
             ",".join("%.3f" % b["s"] for b in bs)))
    print("sftp.ferry: files=%d median_s=%.3f files_per_s=%.1f ratio=%.2f "
          "ratio_net=%.2f rounds_s=%s cpu_s=%.2f sshd_cpu_s=%.2f"
          % (n, f_s, files_per_s(n, f_s), ratio, ratio_net,
             ",".join("%.3f" % f["s"] for f in fs), mid["ferry_cpu"],
             mid["sshd_cpu"]))
    for name, _text, b, f in extras:
        print("sftp.ferry.%s: files=%d s=%.3f files_per_s=%.1f ratio=%.2f "
              "baseline_s=%.3f"
              % (name.replace(" ", "_"), n, f["s"], files_per_s(n, f["s"]),
                 f["s"] / b["s"], b["s"]))

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", required=True)
    ap.add_argument("--files", type=int, default=500)
    ap.add_argument("--size", type=int, default=20480)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--concurrency", type=int, default=8,
                    help="limits.concurrency of the host (8)")
    ap.add_argument("--every", help="the trigger's every (as in "
                    "sftp.integration.json: 1s)")
    ap.add_argument("--read-lock", help="files.read_lock (none)")
    ap.add_argument("--max-per-poll", type=int,
                    help="files.max_per_poll (not set: no limit)")
    ap.add_argument("--defaults", type=int, default=1,
                    help="runs with the trigger's defaults (1; 0: none)")
    ap.add_argument("--batch-sizes", default="25,100",
                    help="what if: runs with batch_size B, one per value "
                    "(25,100; \"\": none)")
    ap.add_argument("--timeout", type=float, default=120,
                    help="seconds a ferry run may take")
    ap.add_argument("--tmpdir")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    if args.files < 1 or args.rounds < 1:
        ap.error("--files and --rounds must be at least 1")
    try:
        args.batch_sizes = [int(x) for x in args.batch_sizes.split(",") if x]
    except ValueError:
        ap.error("--batch-sizes: whole numbers separated by commas")
    if any(b < 2 for b in args.batch_sizes):
        ap.error("--batch-sizes: each at least 2")
    if not shutil.which("sftp"):
        print("bench/run sftp: sftp (OpenSSH's client) is not on PATH",
              file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, sb.on_signal)
    signal.signal(signal.SIGINT, sb.on_signal)
    root = tempfile.mkdtemp(prefix="ferry-bench-sftp-", dir=args.tmpdir)
    server = None
    try:
        server = start_server(root)
        return run(args, server, root)
    except sshd.Unavailable as e:
        print("bench/run sftp: %s" % e, file=sys.stderr)
        return 2
    finally:
        sb.kill_all()
        if server:
            server.stop()
        if args.keep:
            print("# kept " + root)
        else:
            shutil.rmtree(root, ignore_errors=True)


def run(args, server, root):
    files = Files(server, args.files, args.size)
    baseline = Baseline(server, files, root)
    ferry = Ferry(args.build, server, files, root, args.timeout)
    settings = {"every": args.every, "read_lock": args.read_lock,
                "max_per_poll": args.max_per_poll}
    tuned = integration(settings)
    settings_text = describe(tuned, args.concurrency)
    print("== sftp: %d files of %d bytes on OpenSSH's sshd at 127.0.0.1:%d "
          "(user %s), %d rounds, load average %s"
          % (args.files, args.size, server.port, server.user, args.rounds,
             loadavg()), flush=True)
    print("  ferry: %s" % settings_text, flush=True)
    problems = []

    def checked(who, r):
        for p in r["problems"]:
            error("%s: %s" % (who, p))
        problems.extend(r["problems"])
        return r

    rounds = []
    for i in range(1, args.rounds + 1):
        b = checked("round %d" % i, baseline.run())
        f = checked("round %d" % i, ferry.run(tuned, args.concurrency))
        rounds.append((b, f))
        print(round_line(i, args.files, b, f) + "  [load %s]" % loadavg(),
              flush=True)
    # Once each after the rounds, each after a baseline run of its own:
    # the trigger's defaults, and batches.
    variants = [("defaults", integration(None), 16)] * args.defaults
    variants += [("batch %d" % size, integration(settings, batch_size=size),
                  args.concurrency) for size in args.batch_sizes]
    extras = []
    for name, doc, concurrency in variants:
        b = checked(name, baseline.run())
        f = checked(name, ferry.run(doc, concurrency))
        extras.append((name, describe(doc, concurrency), b, f))
        print("  %s: baseline %.2f s, ferry %.2f s, ratio %.2f  [load %s]"
              % (name, b["s"], f["s"], f["s"] / b["s"], loadavg()),
              flush=True)
    report(args.files, args.size, rounds, extras, settings_text)
    if problems:
        print("ERROR: %d checks failed (above)" % len(problems))
    return 0


if __name__ == "__main__":
    sys.exit(main())
