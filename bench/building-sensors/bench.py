#!/usr/bin/env python3
"""The building-sensors benchmark: soap.call against the sample's SOAP service.

Run by `bench/run building-sensors`, inside `samples/building-sensors/run
--services-only`, which starts the sample's services on 127.0.0.1, writes
the instance files and sets BUILDING_SENSORS_DIR. Two parts, in one run:

1. Round trips of a small operation (GetSensor, a 329-byte request and a
   475-byte answer) with the customer's OAuth token:
   - curl, one process per request in a loop: the request's time on the
     wire (curl's time_total) and the loop's time per request;
   - curl, one process sending its requests on one kept-alive connection
     (as ferry does), and ferry: a for_each of soap.call steps
     (bench/building-sensors/roundtrip.json) under `ferry run` with its
     store; alternately, in --rounds rounds, so that a change in the
     machine's load falls on both alike.
   Client overhead = median soap.call step / median time_total of curl's
   kept-alive requests, per round; the median of the rounds. Target: under
   2. Also the CPU time per request of both, start-up left out.
2. The sample's morning-export flow for one customer (lakeview-chicago),
   43,200 readings: the execution's time and each step's, the first run
   (the service computes the readings) and the next ones (it has them).
   Target: the execution under 1 s. Also the CPU time of `ferry run`.
3. The same flow under `ferry serve`, as its schedule runs it: deployed
   into a deployments directory, started through the API with the same
   window, each execution in a worker forked from the zygote.

Prints "TARGET MISSED" where a figure is over its target, and one line of
key=value pairs at the end. Exits 0 whatever it measures.
Python 3 standard library, curl.
"""
import argparse
import base64
import calendar
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SAMPLE = os.path.join(ROOT, "samples", "building-sensors")
sys.path.insert(0, os.path.join(ROOT, "bench", "serve"))
import serve_bench as sb  # noqa: E402  (Host: a ferry serve for the bench)
TARGET_OVERHEAD = 2.0
TARGET_EXEC_MS = 1000.0
NS = "urn:example:building-sensors:2026"


def median(xs):
    return statistics.median(xs) if xs else float("nan")


def quartiles(xs):
    if len(xs) < 4:
        return min(xs), max(xs)
    q = statistics.quantiles(xs, n=4)
    return q[0], q[2]


def cpu_children():
    """CPU time (user + system) of the children waited for so far, in ms."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (r.ru_utime + r.ru_stime) * 1000


def load_env(work):
    env = {}
    with open(os.path.join(work, "env")) as f:
        for line in f:
            k, _, v = line.strip().partition("=")
            env[k] = v
    return env


def token(instance):
    f = instance["connections"]["sensors"]["fields"]
    pair = (urllib.parse.quote(f["client_id"], safe="") + ":" +
            urllib.parse.quote(f["client_secret"], safe=""))
    req = urllib.request.Request(
        f["token_url"], method="POST",
        data=urllib.parse.urlencode({"grant_type": "client_credentials",
                                     "scope": f["scopes"]}).encode(),
        headers={"Authorization": "Basic " + base64.b64encode(pair.encode()).decode(),
                 "Content-Type": "application/x-www-form-urlencoded"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.load(r)["access_token"]


def ferry_json(args, *cmd):
    out = subprocess.run([args.ferry, *cmd, "--db", args.db, "--json"], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out)


def last_execution(args):
    ex = ferry_json(args, "executions", "list")[0]
    return ferry_json(args, "executions", "show", ex["id"])


def roundtrips(args, env, instance_file, instance):
    cfg = instance["config"]
    url = env["SENSORS_URL"] + "/sensors"
    envelope = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/">'
        f'<soap:Body><tns:GetSensor xmlns:tns="{NS}">'
        f'<tns:customerId>{cfg["customer_id"]}</tns:customerId>'
        f'<tns:buildingId>{cfg["building_id"]}</tns:buildingId>'
        '<tns:sensorId>T05</tns:sensorId></tns:GetSensor></soap:Body></soap:Envelope>')
    body = os.path.join(args.tmp, "getsensor.xml")
    with open(body, "w") as f:
        f.write(envelope)
    tok = token(instance)
    common = ["-H", "Authorization: Bearer " + tok,
              "-H", "Content-Type: text/xml; charset=utf-8",
              "-H", f'SOAPAction: "{NS}/GetSensor"',
              "--data-binary", "@" + body, "-o", "/dev/null"]
    n = args.calls

    # curl, one process per request.
    for _ in range(5):  # warm-up: the service's introspection cache, the JIT
        subprocess.run(["curl", "-sS", *common, url], check=True)
    wire, loop_start = [], time.perf_counter()
    for _ in range(n):
        out = subprocess.run(["curl", "-sS", "-w", "%{http_code} %{time_total}", *common, url],
                             check=True, capture_output=True, text=True).stdout.split()
        if out[0] != "200":
            sys.exit("bench: curl got HTTP %s" % out[0])
        wire.append(float(out[1]) * 1000)
    loop_ms = (time.perf_counter() - loop_start) * 1000 / n

    # curl on one kept-alive connection and ferry, alternately, in rounds:
    # a machine whose load changes affects both alike.
    def curl_keepalive(m):
        cfgfile = os.path.join(args.tmp, "curl.cfg")
        with open(cfgfile, "w") as f:
            for i in range(m + 1):  # the first opens the connection
                if i:
                    f.write("next\n")
                f.write(f'url = "{url}"\nsilent\noutput = "/dev/null"\n'
                        f'header = "Authorization: Bearer {tok}"\n'
                        'header = "Content-Type: text/xml; charset=utf-8"\n'
                        f'header = "SOAPAction: \\"{NS}/GetSensor\\""\n'
                        f'data-binary = "@{body}"\n'
                        'write-out = "%{http_code} %{time_total} %{num_connects}\\n"\n')
        t0, cpu0 = time.perf_counter(), cpu_children()
        out = subprocess.run(["curl", "-K", cfgfile], check=True, capture_output=True,
                             text=True).stdout.split("\n")
        cpu, wall = cpu_children() - cpu0, (time.perf_counter() - t0) * 1000
        rows = [line.split() for line in out if line.strip()]
        if len(rows) != m + 1 or any(r[0] != "200" for r in rows):
            sys.exit("bench: curl (kept alive) got a status other than 200")
        if sum(int(r[2]) for r in rows) != 1:
            sys.exit("bench: curl did not keep its connection")
        return [float(r[1]) * 1000 for r in rows[1:]], wall / (m + 1), cpu

    def ferry(m):
        cmd = [args.ferry, "run", os.path.join(HERE, "roundtrip.json"), "--instance",
               instance_file, "--components-dir", args.components, "--db", args.db, "--quiet"]
        t0, cpu0 = time.perf_counter(), cpu_children()
        r = subprocess.run(cmd + ["--input", json.dumps({"n": m + 1})],
                           capture_output=True, text=True)
        cpu, wall = cpu_children() - cpu0, (time.perf_counter() - t0) * 1000
        if r.returncode != 0:
            sys.exit("bench: ferry run roundtrip.json failed:\n" + r.stderr[-3000:])
        ex = last_execution(args)
        calls = [st["duration_us"] / 1000 for st in ex["steps"] if st["name"] == "get_sensor"]
        loop = [st["duration_us"] / 1000 for st in ex["steps"] if st["name"] == "roundtrips"][0]
        # The first call fetches the token and the WSDL: left out.
        return calls[1:], (loop - calls[0]) / m, cpu, wall, calls[0]

    # ferry's start-up CPU: a run with no call.
    cpu0 = cpu_children()
    subprocess.run([args.ferry, "run", os.path.join(HERE, "roundtrip.json"), "--instance",
                    instance_file, "--input", json.dumps({"n": 0}), "--components-dir",
                    args.components, "--db", args.db, "--quiet"], check=True,
                   capture_output=True)
    start_cpu = cpu_children() - cpu0
    # curl's: a process with one request (the least of three).
    curl_start_cpu = min(curl_keepalive(0)[2] for _ in range(3))
    m = max(10, n // args.rounds)
    keep_wire, steps, ratios = [], [], []
    keep_wall = keep_cpu = iters = ferry_cpu = ferry_wall = 0.0
    firsts = []
    for _ in range(args.rounds):
        w, kwall, kcpu = curl_keepalive(m)
        c, it, fcpu, fwall, first = ferry(m)
        keep_wire += w
        steps += c
        ratios.append(median(c) / median(w))
        keep_wall += kwall / args.rounds
        keep_cpu += (kcpu - curl_start_cpu) / m / args.rounds
        iters += it / args.rounds
        ferry_cpu += (fcpu - start_cpu) / (m + 1) / args.rounds
        ferry_wall += fwall
        firsts.append(first)
    wire_ms = median(wire)
    keep_wire_ms = median(keep_wire)
    step_ms = median(steps)
    ratio = median(ratios)
    q1, q3 = quartiles(steps)
    print(f"== soap.call round trips: GetSensor, against {url}")
    print(f"curl, a process per request (shell loop, {n}): median {wire_ms:.2f} ms on the wire "
          f"(time_total), {loop_ms:.2f} ms per request with the process: "
          f"{1000 / loop_ms:.0f} round trips/s")
    print(f"curl, one process, one connection ({args.rounds} rounds of {m}): {keep_wall:.2f} ms "
          f"per request, median {keep_wire_ms:.2f} ms on the wire: {1000 / keep_wall:.0f} "
          "round trips/s")
    print(f"ferry soap.call in a for_each ({args.rounds} rounds of {m}, each after curl's): "
          f"median step {step_ms:.2f} ms (interquartile {q1:.2f} .. {q3:.2f}), {iters:.2f} ms "
          f"per iteration with the engine and the store: {1000 / iters:.0f} round trips/s; "
          f"a first call (WSDL fetched and parsed, token fetched) {median(firsts):.1f} ms")
    print(f"client overhead: soap.call step / curl's round trip on a kept-alive connection, "
          f"median of the rounds = {ratio:.2f}x (rounds: "
          f"{', '.join('%.2f' % x for x in ratios)}) (target under {TARGET_OVERHEAD:.0f}x)"
          + ("" if ratio < TARGET_OVERHEAD else " TARGET MISSED"))
    print(f"  (against curl's round trip with a new connection each time, in the loop: "
          f"{step_ms / wire_ms:.2f}x)")
    print(f"CPU per request, start-up left out: ferry {ferry_cpu:.2f} ms, curl on one "
          f"connection {keep_cpu:.2f} ms: {ferry_cpu / keep_cpu:.2f}x")
    return {"curl_wire_ms": wire_ms, "curl_loop_ms": loop_ms, "curl_keepalive_ms": keep_wall,
            "curl_keepalive_wire_ms": keep_wire_ms,
            "soap_call_ms": step_ms, "soap_iter_ms": iters,
            "soap_roundtrips_per_s": 1000 / iters, "curl_roundtrips_per_s": 1000 / loop_ms,
            "overhead_ratio": ratio, "soap_cpu_ms": ferry_cpu, "curl_cpu_ms": keep_cpu}


def last_seven_am(args, instance_file):
    now = time.gmtime()
    frm = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 26 * 3600))
    out = subprocess.run([args.ferry, "schedule", "next", os.path.join(SAMPLE, "integration.json"),
                          "--instance", instance_file, "--from", frm, "--count", "3",
                          "--components-dir", args.components],
                         check=True, capture_output=True, text=True).stdout.split("\n")
    nowtext = time.strftime("%Y-%m-%dT%H:%M:%SZ", now)
    fires = [line.split()[1] for line in out if line.strip()]
    return max(f for f in fires if f <= nowtext)


def execution(args, env, instance_file):
    until = last_seven_am(args, instance_file)
    steps = ("fetch", "quarter_hour", "fahrenheit", "batches", "post")
    runs = []
    for i in range(args.runs + 1):
        t0 = time.perf_counter()
        cpu0 = cpu_children()
        r = subprocess.run([args.ferry, "run", os.path.join(SAMPLE, "integration.json"),
                            "--instance", instance_file, "--input", json.dumps({"until": until}),
                            "--components-dir", args.components, "--db", args.db, "--quiet"],
                           capture_output=True, text=True)
        wall = (time.perf_counter() - t0) * 1000
        cpu = cpu_children() - cpu0
        if r.returncode != 0:
            sys.exit("bench: ferry run integration.json failed:\n" + r.stderr[-3000:])
        ex = last_execution(args)
        d = {s["name"]: s["duration_us"] / 1000 for s in ex["steps"] if s["name"] in steps}
        out = ex["output"]
        if out["fetched"] != 43200 or out["kept"] != 2880 or out["posted"] != 2880:
            sys.exit("bench: unexpected counts %r" % out)
        runs.append({"exec": ex["duration_us"] / 1000, "wall": wall, "cpu": cpu, **d})

    # The service's own answer to the same GetReadings, with curl.
    inst = json.load(open(instance_file))
    frm = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(
        calendar.timegm(time.strptime(until, "%Y-%m-%dT%H:%M:%SZ")) - 86400))
    body = os.path.join(args.tmp, "getreadings.xml")
    with open(body, "w") as f:
        f.write('<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/">'
                f'<soap:Body><tns:GetReadings xmlns:tns="{NS}">'
                f'<tns:customerId>{inst["config"]["customer_id"]}</tns:customerId>'
                f'<tns:buildingId>{inst["config"]["building_id"]}</tns:buildingId>'
                f'<tns:from>{frm}</tns:from><tns:to>{until}</tns:to>'
                '</tns:GetReadings></soap:Body></soap:Envelope>')
    tok = token(inst)
    served = []
    for _ in range(3):
        out = subprocess.run(
            ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code} %{time_total} %{size_download}",
             "-H", "Authorization: Bearer " + tok, "-H", "Content-Type: text/xml; charset=utf-8",
             "-H", f'SOAPAction: "{NS}/GetReadings"', "--data-binary", "@" + body,
             env["SENSORS_URL"] + "/sensors"], check=True, capture_output=True, text=True
        ).stdout.split()
        served.append(float(out[1]) * 1000)
        size = int(out[2])

    warm = runs[1:]
    m = {k: median([r[k] for r in warm]) for k in ("exec", "wall", "cpu", *steps)}
    lo, hi = min(r["exec"] for r in warm), max(r["exec"] for r in warm)
    print()
    print(f"== building-sensors, one customer ({os.path.basename(instance_file)[:-5]}): "
          f"the morning-export flow on 43,200 readings, {args.runs} executions "
          f"(after a first one)")
    print(f"execution: median {m['exec']:.0f} ms (min {lo:.0f}, max {hi:.0f}; ferry run with "
          f"start-up {m['wall']:.0f} ms) (target under {TARGET_EXEC_MS:.0f} ms)"
          + ("" if m["exec"] < TARGET_EXEC_MS else " TARGET MISSED"))
    print(f"  CPU time of ferry run (user + sys, start-up included): median {m['cpu']:.0f} ms; "
          f"load average {' '.join(open('/proc/loadavg').read().split()[:3])}")
    print(f"  fetch (soap.call, {size / 1e6:.1f} MB of XML) {m['fetch']:.0f} ms, of which the "
          f"service's answer with curl takes {median(served):.0f} ms")
    print(f"  quarter_hour (xml.to_json streaming, 43,200 in, 2,880 out) {m['quarter_hour']:.0f} ms, "
          f"fahrenheit (jq) {m['fahrenheit']:.0f} ms, batches (jq) {m['batches']:.0f} ms, "
          f"post (6 batches to the maintenance API) {m['post']:.0f} ms")
    print(f"  the first execution: {runs[0]['exec']:.0f} ms (fetch {runs[0]['fetch']:.0f} ms: "
          "the service computed the readings)")
    return {"exec_ms": m["exec"], "exec_wall_ms": m["wall"], "exec_cpu_ms": m["cpu"],
            "fetch_ms": m["fetch"],
            "service_ms": median(served), "quarter_hour_ms": m["quarter_hour"],
            "fahrenheit_ms": m["fahrenheit"], "batches_ms": m["batches"], "post_ms": m["post"],
            "first_exec_ms": runs[0]["exec"]}


def served(args, instance_file):
    """The same flow run by `ferry serve`, as the 7 AM schedule runs it: each
    execution in a worker forked from the zygote, which compiled the
    integration once when it was deployed. Started through the API with the
    same window; the execution's time is the store's, as for `ferry run`."""
    until = last_seven_am(args, instance_file)
    steps = ("fetch", "quarter_hour", "fahrenheit", "batches", "post")
    h = sb.Host(args.build, args.tmp, "serve")
    for so in ("soap.so", "http.so", "xml.so"):
        os.symlink(os.path.join(args.components, so), os.path.join(h.components, so))
    subprocess.run([args.ferry, "deploy", os.path.join(SAMPLE, "integration.json"),
                    "--instance", instance_file, "--deployments", h.deployments,
                    "--components-dir", h.components],
                   check=True, capture_output=True, text=True)
    instance = json.load(open(instance_file))["name"]
    h.env["FERRY_MASTER_KEY"] = subprocess.run(
        [args.ferry, "secrets", "generate-key"], check=True, capture_output=True,
        text=True).stdout.strip()

    def api(method, path, body=None):
        status, text = h.request(method, path, body)
        if status >= 300:
            sys.exit("bench: %s %s: HTTP %d %s" % (method, path, status, text[:300]))
        return json.loads(text)

    runs = []
    try:
        try:
            h.start()
        except RuntimeError as e:
            sys.exit("bench: ferry serve: %s" % e)
        for _ in range(args.runs + 1):
            started = api("POST", f"/api/v1/instances/{instance}/flows/morning-export/"
                          "executions", {"until": until})
            while True:
                ex = api("GET", "/api/v1/executions/" + started["id"])
                if ex["status"] not in ("queued", "running"):
                    break
                time.sleep(0.02)
            if ex["status"] != "succeeded":
                sys.exit("bench: the served execution %s: %s" % (ex["status"], ex.get("error_message")))
            out = ex["output"]
            if out["fetched"] != 43200 or out["kept"] != 2880 or out["posted"] != 2880:
                sys.exit("bench: unexpected counts %r" % out)
            d = {s["name"]: s["duration_us"] / 1000 for s in ex["steps"] if s["name"] in steps}
            runs.append({"exec": ex["duration_us"] / 1000, **d})
    finally:
        h.stop()
    warm = runs[1:]
    m = {k: median([r[k] for r in warm]) for k in ("exec", *steps)}
    lo, hi = min(r["exec"] for r in warm), max(r["exec"] for r in warm)
    print()
    print(f"== the same flow under ferry serve (a worker per execution), {args.runs} "
          "executions started through the API (after a first one)")
    print(f"execution: median {m['exec']:.0f} ms (min {lo:.0f}, max {hi:.0f}) (target under "
          f"{TARGET_EXEC_MS:.0f} ms)" + ("" if m["exec"] < TARGET_EXEC_MS else " TARGET MISSED"))
    print(f"  fetch {m['fetch']:.0f} ms, quarter_hour {m['quarter_hour']:.0f} ms, fahrenheit "
          f"{m['fahrenheit']:.0f} ms, batches {m['batches']:.0f} ms, post {m['post']:.0f} ms; "
          f"load average {' '.join(open('/proc/loadavg').read().split()[:3])}")
    return {"serve_exec_ms": m["exec"], "serve_fetch_ms": m["fetch"],
            "serve_quarter_hour_ms": m["quarter_hour"]}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--build", required=True, help="the build tree: ferry and components/")
    p.add_argument("--calls", type=int, default=200, help="round trips of each kind (200)")
    p.add_argument("--rounds", type=int, default=5,
                   help="rounds of curl then ferry the kept-alive calls are split into (5)")
    p.add_argument("--runs", type=int, default=5, help="executions of the flow (5)")
    p.add_argument("--tmpdir", default=None)
    p.add_argument("parts", nargs="*", metavar="soap|flow|serve",
                   help="the parts to run (all three)")
    args = p.parse_args()
    if set(args.parts) - {"soap", "flow", "serve"}:
        p.error("parts are soap, flow and serve")
    work = os.environ.get("BUILDING_SENSORS_DIR")
    if not work:
        sys.exit("bench: run me through samples/building-sensors/run --services-only")
    args.ferry = os.path.join(args.build, "ferry")
    args.components = os.path.join(args.build, "components")
    parts = args.parts or ["soap", "flow", "serve"]
    env = load_env(work)
    instance_file = os.path.join(work, "instances", "chicago.json")
    instance = json.load(open(instance_file))
    with tempfile.TemporaryDirectory(dir=args.tmpdir) as tmp:
        args.tmp = tmp
        args.db = os.path.join(tmp, "bench.db")
        figures = {}
        if "soap" in parts:
            figures.update(roundtrips(args, env, instance_file, instance))
        if "flow" in parts:
            figures.update(execution(args, env, instance_file))
        if "serve" in parts:
            figures.update(served(args, instance_file))
    print()
    print("building_sensors: " + " ".join(
        f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in figures.items()))


if __name__ == "__main__":
    main()
