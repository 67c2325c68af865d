#!/usr/bin/env python3
"""The webhook benchmark (`bench/run webhook`), see docs/bench.md.

load: wrk sends one signed (HMAC-SHA256, header X-Signature, "sha256=" and
  hex) POST of a ~200-byte JSON body over and over, for --duration seconds
  on --connections keep-alive connections, first to webhook_h2o_baseline
  (the least a libh2o responder does: check the signature, answer 202),
  then to a real `ferry serve`, whose 202 is sent only after the execution
  is committed. Requests/s, p50 and p99 of both and their ratio; for ferry
  also the executions created, the CPU the host and its zygote and workers
  used during the run (each accepted webhook is an execution a forked
  worker runs, on the same cores), the host's RSS when wrk stopped (with
  the executions still queued), and how long the queue took to drain.
  Last, "ferry-accept": the same host with its zygote stopped (SIGSTOP)
  while wrk runs, so that only the accept-and-commit path uses the CPU and
  the executions only queue: what the webhook path itself sustains, apart
  from the executions it starts. Not how ferry runs; a bound.
rates: the same signed POSTs to a real `ferry serve`, open loop at fixed
  rates (--rates, each for --duration seconds, on a fresh host): serve_load
  sends each request at its scheduled time and counts its latency from
  then, so a stall delays the requests behind it instead of the client
  (wrk waits for each answer before sending the next). p50/p99/max per
  rate against the p99 target: at which rate the target still holds.
sched: --instances instances of a flow scheduled "* * * * *", written
  into the deployments directory before the host starts (--deploy dir,
  the default: the start-up time is reported) or deployed one API call at
  a time (--deploy api: the deploy time is reported); after one minute
  boundary, the fire-time lag (the trigger's "actual" minus its
  "scheduled", i.e. when the execution was created; and the execution's
  start minus "scheduled") p50/p99/max, and the host's RSS.

A benchmark, not a test: it exits 0 whatever it measures and prints
"TARGET MISSED" where a figure misses its target. Python 3 standard
library, wrk on PATH.
"""

import argparse
import calendar
import hashlib
import hmac
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "serve"))
import serve_bench as sb  # noqa: E402  (Host, /proc helpers, kill_all)

SECRET = "bench-webhook-secret-5d2a"
INSTANCE = "wh-1"
PATH = "/webhooks/%s/hook" % INSTANCE
TARGET_RATIO = 0.35
TARGET_P99_MS = 5.0
TARGET_FIRE_P99_MS = 50.0


def load_json(name):
    with open(os.path.join(HERE, name)) as f:
        return json.load(f)


def body_and_signature():
    body = {"n": 1, "event": "order.created", "id": "evt_0001",
            "data": {"order": 1001, "customer": "cus_42",
                     "amount": 1999, "currency": "EUR",
                     "items": [{"sku": "A-1", "qty": 2}]},
            "sent_at": "2026-11-28T07:00:00Z"}
    raw = json.dumps(body, separators=(",", ":"))
    raw += " " * max(0, 200 - len(raw))  # ~200 bytes
    sig = "sha256=" + hmac.new(SECRET.encode(), raw.encode(),
                               hashlib.sha256).hexdigest()
    return raw, sig


def write_lua(path, raw, sig):
    with open(path, "w") as f:
        f.write('wrk.method = "POST"\n')
        f.write("wrk.body = [==[%s]==]\n" % raw)
        f.write('wrk.headers["Content-Type"] = "application/json"\n')
        f.write('wrk.headers["X-Signature"] = "%s"\n' % sig)


UNIT = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


def wrk(lua, port, args):
    out = subprocess.run(
        ["wrk", "-t%d" % args.threads, "-c%d" % args.connections,
         "-d%ds" % args.duration, "--latency", "-s", lua,
         "http://127.0.0.1:%d%s" % (port, PATH)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        timeout=args.duration + 60).stdout
    r = {"raw": out, "non2xx": 0, "errors": 0}
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    r["rps"] = float(m.group(1)) if m else 0.0
    m = re.search(r"(\d+) requests in", out)
    r["requests"] = int(m.group(1)) if m else 0
    for p in ("50", "99"):
        m = re.search(r"^\s+%s%%\s+([\d.]+)(us|ms|s)\s*$" % p, out, re.M)
        r["p" + p] = float(m.group(1)) * UNIT[m.group(2)] if m else None
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if m:
        r["non2xx"] = int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), "
                  r"timeout (\d+)", out)
    if m:
        r["errors"] = sum(int(x) for x in m.groups())
    return r


def line(name, r):
    return ("  %-9s %9.0f req/s  p50 %6.3f ms  p99 %6.3f ms  (%d requests, "
            "%d non-2xx, %d socket errors)"
            % (name, r["rps"], r["p50"] or -1, r["p99"] or -1,
               r["requests"], r["non2xx"], r["errors"]))


def cpu_of(pid):
    """CPU seconds of pid and everything under it (alive or reaped)."""
    total = 0.0
    c = sb.proc_cpu(pid)
    if c:
        total += c[0] + c[1]
    for k in sb.proc_children(pid):
        total += cpu_of(k)
    return total


def db_counts(db):
    c = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=30)
    try:
        return dict(c.execute("SELECT status, count(*) FROM executions "
                              "GROUP BY status").fetchall())
    finally:
        c.close()


def wait_drained(db, timeout):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        st = db_counts(db)
        if not st.get("queued") and not st.get("running"):
            return time.monotonic() - t0, st
        time.sleep(0.2)
    return None, db_counts(db)


def run_load(build, root, args):
    raw, sig = body_and_signature()
    lua = os.path.join(root, "signed.lua")
    write_lua(lua, raw, sig)
    print("== webhooks: %d-byte body, wrk -t%d -c%d -d%ds, load average %s"
          % (len(raw), args.threads, args.connections, args.duration,
             " ".join(open("/proc/loadavg").read().split()[:3])), flush=True)

    base = subprocess.Popen(
        [os.path.join(build, "bench", "webhook_h2o_baseline"), "0", SECRET],
        stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
        preexec_fn=sb.die_with_parent)
    sb.children.append(base)
    port = int(base.stdout.readline().split()[1])
    b = wrk(lua, port, args)
    base.kill()
    base.wait()

    print(line("baseline", b), flush=True)
    # ferry twice: with its executions running beside the load (as it is
    # used), and with one worker at a time (concurrency 1), so that the
    # forks take less of the CPU and the accept-and-commit path shows.
    for name, conc in (("ferry", args.concurrency), ("ferry-c1", 1)):
        run_ferry(build, root, args, lua, b, name, conc)
    run_accept(build, root, args, lua, b)


def run_accept(build, root, args, lua, b):
    h = sb.Host(build, root, "ferry-accept", concurrency=args.concurrency)
    h.start()
    h.deploy(load_json("webhook.integration.json"),
             {"integration": "bench-webhook", "name": INSTANCE,
              "config": {"webhook_secret": SECRET}})
    kids = sb.proc_children(h.proc.pid)  # the zygote (and its helper)
    for k in kids:
        os.kill(k, signal.SIGSTOP)
    try:
        cpu0 = cpu_of(h.proc.pid)
        f = wrk(lua, h.port, args)
        cpu1 = cpu_of(h.proc.pid)
        st = db_counts(h.db)
    finally:
        for k in kids:
            os.kill(k, signal.SIGCONT)
    h.stop()
    print(line("ferry-accept", f))
    ratio = f["rps"] / b["rps"] if b["rps"] else 0.0
    answered = f["requests"] - f["non2xx"]
    print("    accept path alone (zygote stopped): %.1f%% of the baseline's "
          "rate; host CPU %.0f us per request; %d executions queued for %d "
          "answered 2xx"
          % (100 * ratio, 1e6 * (cpu1 - cpu0) / max(f["requests"], 1),
             st.get("queued", 0), answered), flush=True)


def run_ferry(build, root, args, lua, b, name, conc):
    h = sb.Host(build, root, name, concurrency=conc)
    h.start()
    h.deploy(load_json("webhook.integration.json"),
             {"integration": "bench-webhook", "name": INSTANCE,
              "config": {"webhook_secret": SECRET}})
    cpu0 = (cpu_of(h.proc.pid), time.monotonic())
    f = wrk(lua, h.port, args)
    cpu1 = (cpu_of(h.proc.pid), time.monotonic())
    rss_end = sb.proc_rss_kib(h.proc.pid)
    queued_at_end = db_counts(h.db)
    drain_s, st = wait_drained(h.db, 120)
    h.stop()

    print(line(name, f))
    ratio = f["rps"] / b["rps"] if b["rps"] else 0.0
    wall = cpu1[1] - cpu0[1]
    created = sum(st.values())
    print("    concurrency %d: %.1f%% of the baseline's rate (target >= "
          "%.0f%%)%s; p99 target < %.0f ms%s"
          % (conc, 100 * ratio, 100 * TARGET_RATIO,
             "" if ratio >= TARGET_RATIO else " TARGET MISSED", TARGET_P99_MS,
             "" if (f["p99"] or 1e9) < TARGET_P99_MS else " TARGET MISSED"))
    print("    executions: %d created (%d answered 2xx); when wrk stopped %d "
          "queued, %d running; all ended %s later: %s"
          % (created, f["requests"] - f["non2xx"],
             queued_at_end.get("queued", 0), queued_at_end.get("running", 0),
             "%.1f s" % drain_s if drain_s is not None else "not in 120 s",
             ", ".join("%s %d" % kv for kv in sorted(st.items()))))
    print("    CPU during the run: host, zygote and workers %.2f s in %.1f s "
          "(%.2f of %d cores; wrk has the rest)"
          % (cpu1[0] - cpu0[0], wall, (cpu1[0] - cpu0[0]) / wall,
             os.cpu_count()))
    print("    host RSS when wrk stopped: %.1f MB, with %d executions queued"
          % ((rss_end or 0) / 1024, queued_at_end.get("queued", 0)),
          flush=True)


def run_rates(build, root, args):
    raw, sig = body_and_signature()
    rates = [float(r) for r in args.rates.split(",")]
    print("== webhooks, open loop (serve_load, up to 64 connections), "
          "%d s per rate, limits.concurrency %d, load average %s"
          % (args.duration, args.concurrency,
             " ".join(open("/proc/loadavg").read().split()[:3])), flush=True)
    for rate in rates:
        name = "rate-%g" % rate
        h = sb.Host(build, root, name, concurrency=args.concurrency)
        h.start()
        h.deploy(load_json("webhook.integration.json"),
                 {"integration": "bench-webhook", "name": INSTANCE,
                  "config": {"webhook_secret": SECRET}})
        out = subprocess.run(
            [os.path.join(build, "bench", "serve_load"), "--port",
             str(h.port), "--path", PATH, "--rate", "%g" % rate,
             "--duration", str(args.duration), "--body", raw, "--header",
             "X-Signature: " + sig, "--conns", "4", "--max-conns", "64"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            timeout=args.duration + 120).stdout
        h.stop()
        told = [ln for ln in out.splitlines() if ln.startswith("serve_load:")]
        out = "\n".join(ln for ln in out.splitlines()
                         if not ln.startswith("serve_load:"))
        r = dict(kv.split("=", 1) for kv in out.split() if "=" in kv)
        p99 = float(r.get("resp_p99_ms", "nan"))
        print("  %-10s sent %s, 2xx %s, other %s, no answer %s; p50 %s ms, "
              "p99 %s ms, max %s ms (p99 target < %.0f ms%s)"
              % (name, r.get("sent"), r.get("ok"), r.get("non2xx"),
                 r.get("errors"), r.get("resp_p50_ms"), r.get("resp_p99_ms"),
                 r.get("resp_max_ms"), TARGET_P99_MS,
                 "" if p99 < TARGET_P99_MS else " TARGET MISSED"),
              flush=True)
        for ln in told:  # why requests got no answer
            print("    " + ln, flush=True)


def iso_s(t):
    """'2026-11-28T07:00:00.123Z' (or without fraction) -> Unix seconds."""
    m = re.match(r"(\d+)-(\d+)-(\d+)T(\d+):(\d+):(\d+)(\.\d+)?Z$", t)
    y, mo, d, hh, mi, ss = (int(x) for x in m.groups()[:6])
    frac = float(m.group(7)) if m.group(7) else 0.0
    return calendar.timegm((y, mo, d, hh, mi, ss)) + frac


def pct(v, p):
    return sb.pct(sorted(v), p / 100) if v else float("nan")


def write_deployments(dep, integ, n):
    """The layout `ferry deploy` (without --host) and the API write, and
    the host loads at start: DIR/integrations/NAME.json and
    DIR/instances/NAME.json, each named for its document's "name"."""
    for sub in ("integrations", "instances"):
        os.makedirs(os.path.join(dep, sub), exist_ok=True)
    with open(os.path.join(dep, "integrations",
                           integ["name"] + ".json"), "w") as f:
        json.dump(integ, f, indent=2)
        f.write("\n")
    for i in range(n):
        name = "s-%05d" % i
        with open(os.path.join(dep, "instances", name + ".json"), "w") as f:
            json.dump({"integration": integ["name"], "name": name}, f)
            f.write("\n")


def run_sched(build, root, args):
    n = args.instances
    print("== scheduler: %d instances, each \"* * * * *\", deployed %s"
          % (n, "through the API" if args.deploy == "api"
             else "as files before the host starts"), flush=True)
    h = sb.Host(build, root, "sched", concurrency=args.concurrency)
    integ = load_json("schedule.integration.json")
    if args.deploy == "dir":
        t0 = time.monotonic()
        write_deployments(h.deployments, integ, n)
        write_s = time.monotonic() - t0
        h.start()
        print("  %d instance files written in %.1f s; the host was ready "
              "(deployments loaded, listening) %.2f s after it started"
              % (n, write_s, h.ready_s), flush=True)
    else:
        h.start()
        t0 = time.monotonic()
        for i in range(n):
            h.deploy(integ, {"integration": "bench-schedule",
                             "name": "s-%05d" % i})
        deploy_s = time.monotonic() - t0
        print("  deployed one API call at a time in %.1f s (%.1f ms each)"
              % (deploy_s, 1000 * deploy_s / max(n, 1)), flush=True)
    rss0 = sb.proc_rss_kib(h.proc.pid)
    now = time.time()
    boundary = (int(now) // 60 + 1) * 60
    if boundary - now < 2:
        boundary += 60
    print("  waiting %.0f s for the minute boundary (load average %s)"
          % (boundary - now, sb.loadavg()), flush=True)
    time.sleep(max(0, boundary - time.time()) + 3)
    rss_peak = sb.proc_rss_kib(h.proc.pid)
    drain_s, st = wait_drained(h.db, max(120, n / 20))
    rss1 = sb.proc_rss_kib(h.proc.pid)
    c = sqlite3.connect("file:%s?mode=ro" % h.db, uri=True, timeout=30)
    rows = c.execute("SELECT trigger_json, started_us FROM executions "
                     "WHERE flow = 'tick'").fetchall()
    c.close()
    h.stop()
    lag, start_lag = [], []
    fired = 0
    for tj, started_us in rows:
        t = json.loads(tj)
        sch = iso_s(t["scheduled"])
        if int(sch) != boundary:
            continue
        fired += 1
        lag.append((iso_s(t["actual"]) - sch) * 1000)
        if started_us:
            start_lag.append(started_us / 1000 - sch * 1000)
    print("  fired %d of %d at %s%s" % (
        fired, n, time.strftime("%H:%M:%SZ", time.gmtime(boundary)),
        "" if fired == n else "  (MISSING %d)" % (n - fired)))
    p99 = pct(lag, 99)
    print("  fire lag (created - scheduled): min %.1f ms, p50 %.1f ms, "
          "p99 %.1f ms, max %.1f ms (p99 target < %.0f ms%s)"
          % (min(lag or [0]), pct(lag, 50), p99, max(lag or [0]),
             TARGET_FIRE_P99_MS,
             "" if p99 < TARGET_FIRE_P99_MS else ", TARGET MISSED"))
    print("  start lag (worker started - scheduled): p50 %.0f ms, p99 %.0f "
          "ms, max %.0f ms; all ended %s after the boundary + 3 s"
          % (pct(start_lag, 50), pct(start_lag, 99), max(start_lag or [0]),
             "%.1f s" % drain_s if drain_s is not None else "not in time"))
    print("  host RSS: %.1f MB with %d instances deployed, %.1f MB after "
          "the fire, %.1f MB once drained"
          % (rss0 / 1024, n, rss_peak / 1024, rss1 / 1024), flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--connections", type=int, default=4)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--instances", type=int, default=1000)
    ap.add_argument("--deploy", choices=("dir", "api"), default="dir",
                    help="sched: write the instances into the deployments "
                    "directory before the host starts (dir), or deploy "
                    "them one API call at a time into a running host (api)")
    ap.add_argument("--rates", default="250,500,1000,2000",
                    help="rates: the fixed rates, per second")
    ap.add_argument("--tmpdir")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("parts", nargs="*",
                    help="load, rates, sched (default: load and sched)")
    args = ap.parse_args()
    parts = args.parts or ["load", "sched"]
    for p in parts:
        if p not in ("load", "rates", "sched"):
            ap.error("unknown part %r (load, rates, sched)" % p)
    signal.signal(signal.SIGTERM, sb.on_signal)
    signal.signal(signal.SIGINT, sb.on_signal)
    root = tempfile.mkdtemp(prefix="ferry-bench-webhook-", dir=args.tmpdir)
    try:
        if "load" in parts:
            run_load(args.build, root, args)
        if "rates" in parts:
            run_rates(args.build, root, args)
        if "sched" in parts:
            run_sched(args.build, root, args)
    finally:
        sb.kill_all()
        if args.keep:
            print("# kept " + root)
        else:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
