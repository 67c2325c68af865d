#!/usr/bin/env python3
"""The `ferry serve` benchmark: the fork behind every execution, throughput
and latency of a real host under a fixed-rate load, and the host's RSS.
See docs/bench.md ("ferry serve"). Python 3 standard library only.

usage: serve_bench.py --build DIR [--duration S] [--rates R,R,...]
                      [--concurrency C,C,...] [--variants V,V,...]
                      [--instances N] [--forks N] [--tmpdir DIR] [--keep]
                      [PART...]
PART: forkcost, load, rss (default: all three).
--variants (load only; default "ferry,lean+mxfast0"): ferry is the host as
built, run at every --concurrency; the others run at the first one only.
They are changes joined with "+", as docs/bench.md proposes: mxfast0 (no
fastbins in the zygote's heap) and lean (a zygote executable linked with
the engine's libraries only) run serve_ferry_exp (see ferry_exp.c) in
place of ferry; bindnow sets LD_BIND_NOW=1 (as linking with -z now).

Every host listens on 127.0.0.1 with port 0, in a temporary directory that
is removed at the end (--keep keeps it); every process started here is
killed on the way out, whatever happens.
"""

import argparse
import ctypes
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
TOKEN = "bench-" + os.urandom(6).hex()
INSTANCE = "bench-1"
FLOW = "cheap"
TICK = os.sysconf("SC_CLK_TCK")

TARGET_RATE = 2000      # isolated 3-step executions per second
TARGET_P99_MS = 20.0    # API POST to finished
TARGET_RSS_MB = 50.0    # host with 1,000 instances

children = []  # every process started, killed on exit


def die_with_parent():
    """In a child before exec: SIGKILL when this script goes, however it
    goes (a host's zygote and workers follow their host)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def kill_all():
    for p in children:
        if p.poll() is None:
            try:
                p.kill()
            except OSError:
                pass
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass


def on_signal(sig, frame):
    kill_all()
    sys.exit(130)


def load_json(name):
    with open(os.path.join(HERE, name)) as f:
        return json.load(f)


# ---- /proc ----

def proc_cpu(pid):
    """(self, reaped children) CPU seconds of pid, or None if it is gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            s = f.read()
    except OSError:
        return None
    fields = s[s.rindex(")") + 2:].split()
    # after the command: state is field 3, utime 14, stime 15, cutime 16,
    # cstime 17 (1-based, as in proc(5)); here index = field - 3
    ut, st, cut, cst = (int(fields[i]) for i in (11, 12, 13, 14))
    return (ut + st) / TICK, (cut + cst) / TICK


def proc_rss_kib(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def proc_write_bytes(pid):
    """Bytes the process caused to be written to storage (proc(5))."""
    try:
        with open("/proc/%d/io" % pid) as f:
            for line in f:
                if line.startswith("write_bytes:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def proc_maps(pid):
    try:
        with open("/proc/%d/maps" % pid) as f:
            return sum(1 for _ in f)
    except OSError:
        return None


def proc_children(pid):
    out = []
    try:
        for t in os.listdir("/proc/%d/task" % pid):
            with open("/proc/%d/task/%s/children" % (pid, t)) as f:
                out += [int(x) for x in f.read().split()]
    except OSError:
        pass
    return out


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


# ---- a host ----

# A variant is "ferry" or changes joined with "+": mxfast0 and lean go to
# serve_ferry_exp (SERVE_BENCH_ZYGOTE), bindnow sets LD_BIND_NOW=1 (what
# linking with -z now would do: symbols resolved once, in the zygote).
CHANGES = ("mxfast0", "lean", "bindnow")


def valid_variant(v):
    return v == "ferry" or all(c in CHANGES for c in v.split("+"))


class Host:
    def __init__(self, build, root, name, concurrency=16, deployments=None,
                 variant="ferry"):
        self.dir = os.path.join(root, name)
        os.makedirs(self.dir)
        self.db = os.path.join(self.dir, "f.db")
        self.deployments = deployments or os.path.join(self.dir, "dep")
        self.components = os.path.join(self.dir, "components")
        os.makedirs(self.components)  # the core component only
        self.config = os.path.join(self.dir, "ferry.json")
        with open(self.config, "w") as f:
            json.dump({"limits": {"concurrency": concurrency}}, f)
        self.port_file = os.path.join(self.dir, "port")
        self.log = open(os.path.join(self.dir, "host.log"), "w")
        self.env = dict(os.environ)
        self.env.pop("SERVE_BENCH_ZYGOTE", None)
        changes = [] if variant == "ferry" else variant.split("+")
        zyg = [c for c in changes if c in ("mxfast0", "lean")]
        if zyg:
            self.ferry = os.path.join(build, "bench", "serve_ferry_exp")
            self.env["SERVE_BENCH_ZYGOTE"] = ",".join(zyg)
        else:
            self.ferry = os.path.join(build, "ferry")
        if "bindnow" in changes:
            self.env["LD_BIND_NOW"] = "1"
        self.proc = None
        self.port = None
        self.zygote = None
        self.ready_s = None

    def start(self):
        t0 = time.monotonic()
        self.proc = subprocess.Popen(
            [self.ferry, "serve", "--listen", "127.0.0.1:0",
             "--port-file", self.port_file, "--db", self.db,
             "--deployments", self.deployments, "--api-token", TOKEN,
             "--config", self.config, "--components-dir", self.components],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log,
            env=self.env, preexec_fn=die_with_parent)
        children.append(self.proc)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("the host exited with %s; see %s" %
                                   (self.proc.returncode, self.log.name))
            if self.port is None and os.path.exists(self.port_file):
                with open(self.port_file) as f:
                    txt = f.read().strip()
                if txt:
                    self.port = int(txt)
            if self.port is not None:
                try:
                    if self.request("GET", "/readyz")[0] == 200:
                        break
                except OSError:
                    pass
            time.sleep(0.02)
        else:
            raise RuntimeError("the host did not become ready")
        self.ready_s = time.monotonic() - t0
        kids = proc_children(self.proc.pid)
        self.zygote = kids[0] if kids else None

    def request(self, method, path, body=None, timeout=30):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(
            "http://127.0.0.1:%d%s" % (self.port, path), data=data,
            method=method, headers={"Authorization": "Bearer " + TOKEN})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def metrics(self):
        st, body = self.request("GET", "/metrics")
        out = {}
        for line in body.decode().splitlines():
            if line and not line.startswith("#"):
                k, _, v = line.rpartition(" ")
                try:
                    out[k] = float(v)
                except ValueError:
                    pass
        return out

    def deploy(self, integration, instance):
        st, body = self.request("POST", "/api/v1/instances",
                                {"integration": integration,
                                 "instance": instance})
        if st not in (200, 201):
            raise RuntimeError("deploy: HTTP %d %s" % (st, body[:300]))

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


# ---- 1. the fork ----

def run_forkcost(build, forks):
    print("== 1. fork cost ==", flush=True)
    for exe in ("serve_forkcost", "serve_forkcost_lean"):
        cmd = [os.path.join(build, "bench", exe), "--n", str(forks)]
        print("$ build-bench/bench/%s --n %d   (load average %s)" %
              (exe, forks, loadavg()), flush=True)
        subprocess.run(cmd, check=False)
        print(flush=True)


# ---- 2. throughput and latency ----

def drain(h, timeout):
    """Waits until nothing is queued or running. Returns the seconds it
    took, or None if it did not within timeout."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        m = h.metrics()
        if m.get("ferry_queue_depth", 1) == 0 and \
                m.get("ferry_workers_running", 1) == 0:
            return time.monotonic() - t0
        time.sleep(0.05)
    return None


def pct(sorted_v, p):
    if not sorted_v:
        return float("nan")
    return sorted_v[min(len(sorted_v) - 1, int(p * (len(sorted_v) - 1) + 0.5))]


def phase_stats(db, tag):
    con = sqlite3.connect("file:%s?mode=ro" % db, uri=True)
    rows = con.execute(
        "SELECT created_us, started_us, ended_us, status FROM executions "
        "WHERE trigger_json LIKE ?", ('%%"phase":"%s"%%' % tag,)).fetchall()
    con.close()
    st = {}
    for r in rows:
        st[r[3]] = st.get(r[3], 0) + 1
    done = [r for r in rows if r[2] is not None]
    lat = sorted((r[2] - r[0]) / 1000 for r in done)
    wait = sorted((r[1] - r[0]) / 1000 for r in done if r[1] is not None)
    run = sorted((r[2] - r[1]) / 1000 for r in done if r[1] is not None)
    span = (max(r[2] for r in done) - min(r[0] for r in done)) / 1e6 \
        if done else 0
    return {
        "n": len(rows), "finished": len(done), "status": st,
        "rate": len(done) / span if span else 0,
        "p50": pct(lat, 0.5), "p90": pct(lat, 0.9), "p99": pct(lat, 0.99),
        "max": lat[-1] if lat else float("nan"),
        "wait_p50": pct(wait, 0.5), "wait_p99": pct(wait, 0.99),
        "run_p50": pct(run, 0.5), "run_p99": pct(run, 0.99),
    }


def run_load(build, root, variant, concurrency, rates, duration):
    print("-- %s, limits.concurrency = %d --" % (
        "as built" if variant == "ferry" else "what if: " + variant,
        concurrency), flush=True)
    h = Host(build, root, "load-%s-c%d" % (variant, concurrency), concurrency,
             variant=variant)
    h.start()
    h.deploy(load_json("bench-serve.integration.json"),
             load_json("bench-serve.instance.json"))
    path = "/api/v1/instances/%s/flows/%s/executions" % (INSTANCE, FLOW)
    loader = os.path.join(build, "bench", "serve_load")

    def load(tag, rate, secs):
        cmd = [loader, "--port", str(h.port), "--token", TOKEN,
               "--path", path, "--rate", str(rate), "--duration", str(secs),
               "--body", json.dumps({"n": 21, "phase": tag},
                                    separators=(",", ":"))]
        out = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if out.returncode:
            raise RuntimeError("serve_load: %s" % out.stderr.strip())
        if out.stderr.strip():  # why requests got no answer
            print(out.stderr.strip(), file=sys.stderr, flush=True)
        return dict(kv.split("=", 1) for kv in out.stdout.split())

    # Warm up: the zygote compiles the integration on its first spawn.
    load("warmup", 100, 1)
    drain(h, 30)

    phases = []
    saturated = None
    for rate in rates:
        if saturated:
            phases.append({"rate": rate, "skipped": saturated})
            continue
        tag = "%s-c%d-r%d" % (variant, concurrency, rate)
        hc0, zc0 = proc_cpu(h.proc.pid), proc_cpu(h.zygote)
        wb0 = proc_write_bytes(h.proc.pid)
        t0 = time.monotonic()
        cl = load(tag, rate, duration)
        d = drain(h, max(20.0, 3 * duration))
        wall = time.monotonic() - t0
        hc1, zc1 = proc_cpu(h.proc.pid), proc_cpu(h.zygote)
        wb1 = proc_write_bytes(h.proc.pid)
        ph = {"rate": rate, "tag": tag, "client": cl, "wall": wall,
              "drain": d, "la": loadavg(),
              "wbytes": wb1 - wb0 if None not in (wb0, wb1) else None,
              "host_cpu": (hc1[0] - hc0[0]) if hc0 and hc1 else float("nan"),
              "zyg_cpu": (zc1[0] - zc0[0]) if zc0 and zc1 else float("nan"),
              "work_cpu": (zc1[1] - zc0[1]) if zc0 and zc1 else float("nan"),
              "host_rss": proc_rss_kib(h.proc.pid)}
        phases.append(ph)
        # Past this rate the queue only grows: the next rates would take
        # minutes to drain and say nothing more.
        if d is None or d > duration / 2:
            saturated = "the host was saturated at %d/s" % rate
    h.stop()
    for ph in phases:
        if "tag" in ph:
            ph["db"] = phase_stats(h.db, ph["tag"])
    return phases


def fmt(v, digits=1):
    if v is None:
        return "?"
    if isinstance(v, float):
        return "%.*f" % (digits, v)
    return str(v)


def phase_line(variant, concurrency, ph):
    """The phase as one line of key=value pairs."""
    c, db, w = ph["client"], ph["db"], ph["wall"]
    n = max(db["finished"], 1)
    kv = [
        ("offered", ph["rate"]), ("sent", int(c["sent"])),
        ("accepted", int(c["ok"])), ("finished", db["finished"]),
        ("finished_per_s", float(round(db["rate"]))),
        ("p50_ms", db["p50"]), ("p90_ms", db["p90"]), ("p99_ms", db["p99"]),
        ("max_ms", db["max"]), ("queue_wait_p99_ms", db["wait_p99"]),
        ("run_p50_ms", db["run_p50"]), ("run_p99_ms", db["run_p99"]),
        ("ack_p99_ms", float(c["resp_p99_ms"])),
        ("send_lag_p99_ms", float(c["lag_p99_ms"])),
        ("host_cpu_pct", 100 * ph["host_cpu"] / w),
        ("zygote_cpu_pct", 100 * ph["zyg_cpu"] / w),
        ("workers_cpu_pct", 100 * ph["work_cpu"] / w),
        ("client_cpu_pct", float(c["cpu_ms"]) / 10 / w),
        ("host_cpu_us_per_exec", 1e6 * ph["host_cpu"] / n),
        ("zygote_cpu_us_per_exec", 1e6 * ph["zyg_cpu"] / n),
        ("worker_cpu_us_per_exec", 1e6 * ph["work_cpu"] / n),
        ("host_disk_kib_per_exec",
         ph["wbytes"] / 1024 / n if ph["wbytes"] is not None else None),
        ("host_rss_kib", ph["host_rss"]), ("drain_s", ph["drain"]),
        ("load_avg", ph["la"].replace(" ", "/")),
    ]
    digits = {"finished_per_s": 0, "host_cpu_pct": 0, "zygote_cpu_pct": 0,
              "workers_cpu_pct": 0, "client_cpu_pct": 0,
              "host_cpu_us_per_exec": 0, "zygote_cpu_us_per_exec": 0,
              "worker_cpu_us_per_exec": 0}
    return "serve.%s.c%d.r%d: %s" % (
        variant, concurrency, ph["rate"],
        " ".join("%s=%s" % (k, fmt(v, digits.get(k, 2))) for k, v in kv))


def report_load(variant, concurrency, phases):
    print("  %6s %7s %7s %8s %8s %8s %8s %8s %8s %7s %7s %7s %7s %7s" % (
        "rate/s", "sent", "ok", "done/s", "p50_ms", "p99_ms", "max_ms",
        "wait99", "run99", "host%", "zyg%", "work%", "load%", "ack99"))
    lines = []
    for ph in phases:
        if "skipped" in ph:
            print("  %6d  not run: %s" % (ph["rate"], ph["skipped"]))
            continue
        c, db, w = ph["client"], ph["db"], ph["wall"]
        print("  %6d %7s %7s %8.0f %8.1f %8.1f %8.1f %8.1f %8.1f %7.0f %7.0f "
              "%7.0f %7.0f %7.1f" % (
                  ph["rate"], c["sent"], c["ok"], db["rate"], db["p50"],
                  db["p99"], db["max"], db["wait_p99"], db["run_p99"],
                  100 * ph["host_cpu"] / w, 100 * ph["zyg_cpu"] / w,
                  100 * ph["work_cpu"] / w,
                  float(c["cpu_ms"]) / 10 / w, float(c["resp_p99_ms"])))
        bad = {k: v for k, v in db["status"].items() if k != "succeeded"}
        if bad or int(c["errors"]) or int(c["non2xx"]):
            print("         not all succeeded: %s, client errors %s, "
                  "non-2xx %s" % (bad, c["errors"], c["non2xx"]))
        lines.append(phase_line(variant, concurrency, ph))
    return lines


def sustained(ph):
    """Whether a phase kept up with its rate, every execution succeeding."""
    db = ph.get("db")
    return db is not None and db["rate"] >= 0.95 * ph["rate"] and \
        db["status"].get("succeeded", 0) == db["n"] == int(ph["client"]["sent"])


def run_loads(build, root, variants, concurrencies, rates, duration):
    print("== 2. throughput and latency: core.set -> jq -> core.set, one "
          "worker process per execution ==", flush=True)
    print("open-loop fixed rate (bench/serve/load.c), %g s per rate; latency "
          "= ended - created in the store (API POST to finished)" % duration,
          flush=True)
    all_lines = []
    met = best = None
    for v in variants:
        # "What if" variants run at the first concurrency only: they are
        # there to compare with the host as built, in the same run.
        for c in concurrencies if v == "ferry" else concurrencies[:1]:
            phases = run_load(build, root, v, c, rates, duration)
            all_lines += report_load(v, c, phases)
            if v != "ferry":
                continue
            for ph in filter(sustained, phases):
                p99 = ph["db"]["p99"]
                if ph["rate"] >= TARGET_RATE and p99 < TARGET_P99_MS:
                    met = met or (c, ph["rate"], p99)
                if best is None or (ph["rate"], -p99) > (best[1], -best[2]):
                    best = (c, ph["rate"], p99)
    print("  rate/s: offered; done/s: executions finished per second, first "
          "created to last ended;\n"
          "  p50/p99/max: created -> ended; wait99: created -> started (queue "
          "and fork); run99: started -> ended (in the worker);\n"
          "  host%, zyg%, work%: CPU of the host, the zygote, and its workers "
          "(reaped), over the rate's send + drain time, in % of one core;\n"
          "  load%: the load generator's CPU; ack99: p99 of the 202 answer, "
          "from the scheduled send")
    print("  target: at least %d executions/s with p99 under %.0f ms" %
          (TARGET_RATE, TARGET_P99_MS))
    if met:
        print("  met: %d/s at concurrency %d, p99 %.1f ms" %
              (met[1], met[0], met[2]))
    elif "ferry" in variants:
        print("  TARGET MISSED: no rate of %d/s or more finished with p99 "
              "under %.0f ms%s" % (
                  TARGET_RATE, TARGET_P99_MS,
                  "; highest rate sustained: %d/s (concurrency %d), p99 "
                  "%.1f ms" % (best[1], best[0], best[2]) if best else ""))
    return all_lines


# ---- 3. RSS ----

def run_rss(build, root, ninstances):
    print("== 3. host RSS ==", flush=True)
    lines = []
    h = Host(build, root, "rss-idle")
    h.start()
    time.sleep(0.5)
    idle = (proc_rss_kib(h.proc.pid), proc_rss_kib(h.zygote), h.ready_s)
    zmaps = proc_maps(h.zygote)
    h.stop()

    dep = os.path.join(root, "rss-dep")
    os.makedirs(os.path.join(dep, "integrations"))
    os.makedirs(os.path.join(dep, "instances"), mode=0o700)
    ig = load_json("bench-serve.integration.json")
    with open(os.path.join(dep, "integrations", ig["name"] + ".json"), "w") as f:
        json.dump(ig, f)
    for i in range(ninstances):
        name = "bench-%d" % (i + 1)
        p = os.path.join(dep, "instances", name + ".json")
        with open(os.open(p, os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
            json.dump({"integration": ig["name"], "name": name}, f)
    h = Host(build, root, "rss-full", deployments=dep)
    h.start()
    time.sleep(0.5)
    st, body = h.request("GET", "/api/v1/instances")
    deployed = len(json.loads(body)) if st == 200 else -1
    full = (proc_rss_kib(h.proc.pid), proc_rss_kib(h.zygote), h.ready_s)
    # One execution each on 10 instances: the zygote compiles the
    # integration once (its cache is by the integration's text).
    for i in range(10):
        h.request("POST", "/api/v1/instances/bench-%d/flows/%s/executions" %
                  (i + 1, FLOW), {"n": i})
    drain(h, 30)
    ran = (proc_rss_kib(h.proc.pid), proc_rss_kib(h.zygote))
    h.stop()

    print("  %-34s %10s %10s %9s" % ("", "host_kib", "zygote_kib", "ready_s"))
    print("  %-34s %10s %10s %9.2f" % ("idle, no deployments", idle[0],
                                        idle[1], idle[2]))
    print("  %-34s %10s %10s %9.2f" % ("%d instances deployed (%d live)" %
                                        (ninstances, deployed), full[0],
                                        full[1], full[2]))
    print("  %-34s %10s %10s" % ("  after 10 executions", ran[0], ran[1]))
    print("  the zygote maps %s regions (forkcost's ferry-linked process: "
          "the same libraries)" % zmaps)
    print("  target: under %.0f MB with %d instances" % (TARGET_RSS_MB,
                                                         ninstances))
    mb = full[0] / 1024.0 if full[0] else float("nan")
    if mb < TARGET_RSS_MB:
        print("  met: host %.1f MB" % mb)
    else:
        print("  TARGET MISSED: host %.1f MB, target under %.0f MB" %
              (mb, TARGET_RSS_MB))
    lines.append("rss.idle: host_kib=%s zygote_kib=%s ready_s=%.2f "
                 "zygote_maps=%s" % (idle + (zmaps,)))
    lines.append("rss.instances%d: deployed=%d host_kib=%s zygote_kib=%s "
                 "ready_s=%.2f host_kib_after_runs=%s zygote_kib_after_runs=%s"
                 % (ninstances, deployed, full[0], full[1], full[2], ran[0],
                    ran[1]))
    return lines


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    ap.add_argument("--duration", type=float, default=5)
    ap.add_argument("--rates", default="250,500,1000,2000,4000")
    ap.add_argument("--concurrency", default="8,16")
    ap.add_argument("--variants", default="ferry,lean+mxfast0")
    ap.add_argument("--instances", type=int, default=1000)
    ap.add_argument("--forks", type=int, default=2000)
    ap.add_argument("--tmpdir", default=None)
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("parts", nargs="*")
    a = ap.parse_args()
    parts = a.parts or ["forkcost", "load", "rss"]
    for p in parts:
        if p not in ("forkcost", "load", "rss"):
            ap.error("unknown part %s (forkcost, load, rss)" % p)
    rates = [int(x) for x in a.rates.split(",") if x]
    concs = [int(x) for x in a.concurrency.split(",") if x]
    variants = [x for x in a.variants.split(",") if x]
    for v in variants:
        if not valid_variant(v):
            ap.error("unknown variant %s (ferry, or %s joined with +)" %
                     (v, ", ".join(CHANGES)))

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    root = tempfile.mkdtemp(prefix="ferry-bench-serve-", dir=a.tmpdir)
    lines = []
    try:
        if "forkcost" in parts:
            run_forkcost(a.build, a.forks)
        if "load" in parts:
            lines += run_loads(a.build, root, variants, concs, rates,
                               a.duration)
            print(flush=True)
        if "rss" in parts:
            lines += run_rss(a.build, root, a.instances)
            print(flush=True)
        for l in lines:
            print(l)
    finally:
        kill_all()
        if a.keep:
            print("kept %s" % root)
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
