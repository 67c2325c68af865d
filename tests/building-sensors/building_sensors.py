#!/usr/bin/env python3
"""The building-sensors sample, run as a reader runs it, checked from outside.

usage: building_sensors.py SOURCE_DIR BUILD_DIR

1. samples/building-sensors/run as the quick start runs it (each building's
   last 7 AM): both customers' executions succeed; the maintenance API
   received 2,880 records per customer, in the batches the instance files
   ask for; every record is checked against values computed here, from the
   generator's definition (the comment at the top of
   samples/building-sensors/services/readings.mjs), without the sample's
   code: the readings on the quarter hour of the 24 hours before 7 AM
   building local time (the time zones by Python's zoneinfo), the
   Fahrenheit values to one decimal in integer arithmetic, 27.3 C is
   81.1 F; the execution records show each step, its duration and the
   counts; `ferry schedule next` shows 7 AM in both zones; the services
   are stopped afterwards.
2. The same with a fixed window and the maintenance API failing its first
   three posts with HTTP 500: the post step's retries deliver every batch,
   nothing twice.
3. The services on their own (`run --services-only`): both refuse a
   request without a valid token of the right customer's client, and the
   maintenance API refuses temperatures in Celsius.

Exits 77 (skipped) when node 20.19+ or the npm packages of
tests/fixtures/oauth and tests/fixtures/soap are missing (scripts/npm-deps).
"""
import datetime
import base64
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zoneinfo

SKIP = 77
FIELDS = ["customer_id", "building_id", "sensor_id", "sensor_loc", "timestamp",
          "temperature_f", "humidity"]
M32 = 0xFFFFFFFF

checks = 0


def ok(msg):
    global checks
    checks += 1
    print("ok - " + msg, flush=True)


def fail(msg):
    print("FAIL - " + msg, file=sys.stderr, flush=True)
    sys.exit(1)


def expect(cond, msg, detail=""):
    if not cond:
        fail(msg + (": " + detail if detail else ""))
    ok(msg)


# ---- the generator, from its definition

def fnv1a32(text):
    h = 0x811C9DC5
    for b in text.encode():
        h = ((h ^ b) * 0x01000193) & M32
    return h


def mix32(x):
    x ^= x >> 16
    x = (x * 0x7FEB352D) & M32
    x ^= x >> 15
    x = (x * 0x846CA68B) & M32
    x ^= x >> 16
    return x


CURVE = [(0, 190), (330, 190), (450, 214), (900, 226), (1080, 218), (1320, 190), (1440, 190)]


def base(local):
    for (t0, a), (t1, b) in zip(CURVE, CURVE[1:]):
        if local < t1:
            q = abs(b - a) * (local - t0) // (t1 - t0)  # truncation toward zero
            return a + (q if b >= a else -q)
    return CURVE[-1][1]


def expected_tenths(customer, sensor_index, minute):
    """(temperature in tenths of degC, humidity in tenths of %)."""
    seed = fnv1a32(customer["customer_id"] + "/" + customer["building_id"])
    h = mix32((seed + (sensor_index + 1) * 0x9E3779B1 + minute) & M32)
    local = (minute + customer["curve_utc_offset_minutes"]) % 1440
    noise = h % 7 - 3
    if sensor_index == 4:
        t = 270 + noise
    else:
        t = base(local) + (7 * sensor_index) % 11 - 5 + noise
    return t, 380 + (h >> 8) % 171


def fahrenheit_text(tenths_c):
    """tenths of degC to degF, one decimal, half away from zero, as text."""
    h = 18 * tenths_c + 3200  # hundredths of degF
    r = (h + 5) // 10 if h >= 0 else -((-h + 5) // 10)
    sign = "-" if r < 0 else ""
    return "%s%d.%d" % (sign, abs(r) // 10, abs(r) % 10)


# ---- helpers

def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


def port_closed(port):
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) != 0


def load_jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def utc(text):
    return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(
        tzinfo=datetime.timezone.utc)


def minute_of(text):
    return int(utc(text).timestamp()) // 60


def check_records(name, customer, instance, records, window_end=None):
    """Checks what the API received for one customer; returns the window's
    end (UTC) and how many 27.3 C readings there were."""
    cid = customer["customer_id"]
    expect(len(records) == 2880, f"{name}: the maintenance API received 2,880 records",
           f"got {len(records)}")
    bad = [r for r in records if list(r) != FIELDS and sorted(r) != sorted(FIELDS)]
    expect(not bad, f"{name}: every record has exactly the fields {', '.join(FIELDS)}",
           json.dumps(bad[:2]))
    expect(all(r["customer_id"] == cid and r["building_id"] == customer["building_id"]
               for r in records), f"{name}: every record is {cid} / {customer['building_id']}")
    expect(all(isinstance(r["temperature_f"], (int, float)) and
               not isinstance(r["temperature_f"], bool) and
               isinstance(r["humidity"], (int, float)) and not isinstance(r["humidity"], bool)
               for r in records), f"{name}: temperature_f and humidity are JSON numbers")
    stamps = sorted({r["timestamp"] for r in records})
    expect(len(stamps) == 96 and all(re.search(r":(00|15|30|45):00Z$", t) for t in stamps),
           f"{name}: 96 distinct timestamps, all on the quarter hour", f"{stamps[:3]}...")
    minutes = [minute_of(t) for t in stamps]
    expect(all(b - a == 15 for a, b in zip(minutes, minutes[1:])),
           f"{name}: the timestamps are every 15 minutes over 24 hours",
           f"{stamps[0]} .. {stamps[-1]}")
    pairs = {(r["sensor_id"], r["timestamp"]) for r in records}
    expect(len(pairs) == 2880 and {r["sensor_id"] for r in records} ==
           {"T%02d" % (i + 1) for i in range(30)},
           f"{name}: 30 sensors T01..T30 at each timestamp, none twice")
    end = utc(stamps[-1]) + datetime.timedelta(minutes=15)
    if window_end is None:
        zone = zoneinfo.ZoneInfo(instance["config"]["building_tz"])
        local_end = end.astimezone(zone)
        local_start = utc(stamps[0]).astimezone(zone)
        expect(local_end.strftime("%H:%M") == "07:00" and local_start.strftime("%H:%M") == "07:00"
               and end - utc(stamps[0]) == datetime.timedelta(hours=24),
               f"{name}: the window is the 24 hours before 7 AM in {zone.key}",
               f"{stamps[0]} .. {stamps[-1]} (local {local_start} .. {local_end})")
        now = datetime.datetime.now(datetime.timezone.utc)
        expect(datetime.timedelta(0) <= now - end <= datetime.timedelta(hours=25),
               f"{name}: the 7 AM is the last one before now ({end:%Y-%m-%dT%H:%MZ})")
    else:
        expect(end == utc(window_end), f"{name}: the window ends at {window_end}",
               f"it ends at {end}")

    wrong, n273 = [], 0
    for r in records:
        i = int(r["sensor_id"][1:]) - 1
        t, hum = expected_tenths(customer, i, minute_of(r["timestamp"]))
        want_f = fahrenheit_text(t)
        want_h = "%d.%d" % (hum // 10, hum % 10)
        loc = ("Floor 1 / Server room" if i == 4 else
               "Floor %d / %s" % (i // 5 + 1, ["North", "East", "South", "West", "Core"][i % 5]))
        # Exact: the number must be the double nearest the one-decimal value.
        if (r["temperature_f"] != float(want_f) or r["humidity"] != float(want_h)
                or r["sensor_loc"] != loc):
            wrong.append((r, want_f, want_h, loc))
        if t == 273:
            n273 += 1
            if r["temperature_f"] != 81.1:
                wrong.append((r, "81.1", want_h, loc))
    expect(not wrong, f"{name}: every temperature_f, humidity and sensor_loc is the value "
           "computed here from the generator's definition",
           "%d wrong, e.g. %s" % (len(wrong), wrong[:2]))
    return end, n273


def check_executions(name, ferry, db, instance, out_record, batches):
    cmd = [ferry, "executions", "list", "--db", db, "--instance", instance["name"], "--json"]
    r = run(cmd)
    execs = json.loads(r.stdout) if r.returncode == 0 else []
    expect(len(execs) >= 1 and execs[0]["status"] == "succeeded" and
           execs[0]["integration"] == "building-sensors" and execs[0]["flow"] == "morning-export",
           f"{name}: ferry executions list shows the morning-export execution succeeded",
           r.stdout[:500] + r.stderr[:500])
    ex_id = execs[0]["id"]
    show = run([ferry, "executions", "show", ex_id, "--db", db])
    text = show.stdout
    for step in ("window", "fetch", "quarter_hour", "fahrenheit", "batches", "post",
                 "summary", "report"):
        if not re.search(r"^\s+\d+\s+%s\s+succeeded\s+[0-9.]+(us|ms|s)\s*$" % step, text, re.M):
            fail(f"{name}: ferry executions show has no succeeded step {step} with its duration:\n"
                 + text[:3000])
    expect(len(re.findall(r"post\[\d+\]\.post_batch\s+succeeded", text)) == batches,
           f"{name}: ferry executions show lists each step with its duration, and the "
           f"{batches} batches")
    expect(re.search(r"info\s+\[report\] \S+: fetched 43200 readings from .* kept 2880 on the "
                     r"quarter hour, converted 2880 to Fahrenheit, posted 2880 in %d batches"
                     % batches, text) is not None,
           f"{name}: the execution's log line has the counts",
           "\n".join(line for line in text.splitlines() if "[report]" in line))
    js = json.loads(run([ferry, "executions", "show", ex_id, "--db", db, "--json"]).stdout)
    o = js["output"]
    expect(o["fetched"] == 43200 and o["kept"] == 2880 and o["converted"] == 2880 and
           o["posted"] == 2880 and o["batches"] == batches,
           f"{name}: the execution's output counts 43,200 fetched, 2,880 kept, converted and "
           "posted", json.dumps(o))
    expect(out_record == o, f"{name}: ferry run printed the same output")
    return js


def token(fields):
    pair = (urllib.parse.quote(fields["client_id"], safe="") + ":" +
            urllib.parse.quote(fields["client_secret"], safe=""))
    req = urllib.request.Request(
        fields["token_url"], method="POST",
        data=urllib.parse.urlencode({"grant_type": "client_credentials",
                                     "scope": fields["scopes"]}).encode(),
        headers={"Authorization": "Basic " + base64.b64encode(pair.encode()).decode()})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.load(r)["access_token"]


def post(url, body, headers):
    req = urllib.request.Request(url, data=body.encode(), method="POST", headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def services_check():
    """Part 3, run inside `run --services-only` (BUILDING_SENSORS_DIR)."""
    work = os.environ["BUILDING_SENSORS_DIR"]
    env = dict(line.strip().split("=", 1) for line in open(os.path.join(work, "env")))
    inst = {n: json.load(open(os.path.join(work, "instances", n + ".json")))
            for n in ("chicago", "berlin")}
    chi, ber = inst["chicago"], inst["berlin"]
    api = env["MAINTENANCE_URL"] + "/v1/buildings/%s/readings"
    record = {"customer_id": "C-1001", "building_id": "LMC-EAST", "sensor_id": "T01",
              "sensor_loc": "Floor 1 / North", "timestamp": "2026-11-27T13:00:00Z",
              "temperature_f": 70.5, "humidity": 45.0}
    body = json.dumps({"records": [record]})
    js = {"Content-Type": "application/json"}
    status, _ = post(api % "LMC-EAST", body, js)
    expect(status == 401, "maintenance API: a post without a token is refused with 401",
           str(status))
    status, _ = post(api % "LMC-EAST", body, {**js, "Authorization": "Bearer not-a-token"})
    expect(status == 401, "maintenance API: a token it cannot introspect is refused with 401",
           str(status))
    ber_tok = token(ber["connections"]["maintenance"]["fields"])
    status, _ = post(api % "LMC-EAST", body, {**js, "Authorization": "Bearer " + ber_tok})
    expect(status == 403, "maintenance API: another customer's client is refused with 403",
           str(status))
    chi_sensors = token(chi["connections"]["sensors"]["fields"])
    status, _ = post(api % "LMC-EAST", body, {**js, "Authorization": "Bearer " + chi_sensors})
    expect(status == 403, "maintenance API: a token without readings.write is refused with 403",
           str(status))
    chi_tok = token(chi["connections"]["maintenance"]["fields"])
    celsius = dict(record)
    del celsius["temperature_f"]
    celsius["temperature"] = 21.4
    status, text = post(api % "LMC-EAST", json.dumps({"records": [celsius]}),
                        {**js, "Authorization": "Bearer " + chi_tok})
    expect(status == 422 and "temperature_f" in text,
           "maintenance API: a record in Celsius is refused with 422", f"{status} {text}")
    status, text = post(api % "LMC-EAST", body, {**js, "Authorization": "Bearer " + chi_tok})
    expect(status == 202 and json.loads(text)["accepted"] == 1,
           "maintenance API: the customer's own client posts a record", f"{status} {text}")

    soap = env["SENSORS_URL"] + "/sensors"
    envelope = ('<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/">'
                '<soap:Body><s:GetSensor xmlns:s="urn:example:building-sensors:2026">'
                '<s:customerId>C-1001</s:customerId><s:buildingId>LMC-EAST</s:buildingId>'
                '<s:sensorId>T05</s:sensorId></s:GetSensor></soap:Body></soap:Envelope>')
    xml = {"Content-Type": "text/xml; charset=utf-8",
           "SOAPAction": '"urn:example:building-sensors:2026/GetSensor"'}
    status, _ = post(soap, envelope, xml)
    expect(status == 401, "sensor service: a call without a token is refused with 401",
           str(status))
    ber_sensors = token(ber["connections"]["sensors"]["fields"])
    status, text = post(soap, envelope, {**xml, "Authorization": "Bearer " + ber_sensors})
    expect(status == 500 and "<faultcode>soap:Client</faultcode>" in text and
           "forbidden" in text,
           "sensor service: another customer's client gets a soap:Client fault", text[:300])
    status, text = post(soap, envelope, {**xml, "Authorization": "Bearer " + chi_sensors})
    expect(status == 200 and "<sensor_loc>Floor 1 / Server room</sensor_loc>" in text,
           "sensor service: the customer's own client gets its sensor", text[:300])
    print(f"services: all {checks} checks passed")


def main():
    global checks
    if sys.argv[1:] == ["--services-check"]:
        services_check()
        return
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    src, build = (os.path.abspath(a) for a in sys.argv[1:3])
    sample = os.path.join(src, "samples", "building-sensors")

    node = shutil.which("node")
    if not node:
        print("SKIP: node is not installed (needs 20.19+)")
        sys.exit(SKIP)
    v = run([node, "--version"]).stdout.strip().lstrip("v").split(".")
    if (int(v[0]), int(v[1])) < (20, 19):
        print("SKIP: node %s is too old (needs 20.19+)" % ".".join(v))
        sys.exit(SKIP)
    for pkg in ("oauth/node_modules/oauth2-mock-server", "soap/node_modules/soap"):
        if not os.path.isdir(os.path.join(src, "tests", "fixtures", pkg)):
            print(f"SKIP: tests/fixtures/{pkg} is missing (run scripts/npm-deps)")
            sys.exit(SKIP)
    for tool in ("jq", "curl"):
        if not shutil.which(tool):
            fail(f"{tool} is not installed (see scripts/quickstart)")
    ferry = os.path.join(build, "ferry")
    for f in (ferry, os.path.join(build, "components", "soap.so"),
              os.path.join(build, "components", "http.so")):
        if not os.path.exists(f):
            fail(f"{f} is missing: build first")

    with open(os.path.join(sample, "services", "customers.json")) as f:
        customers = {c["customer_id"]: c for c in json.load(f)["customers"]}
    instances = {}
    for name in ("chicago", "berlin"):
        with open(os.path.join(sample, "instances", name + ".json")) as f:
            instances[name] = json.load(f)
    batches = {n: -(-2880 // i["config"]["batch_size"]) for n, i in instances.items()}

    tmp = tempfile.mkdtemp(prefix="building-sensors-test.")
    try:
        # ---- 1. as the quick start runs it
        work, db = os.path.join(tmp, "w1"), os.path.join(tmp, "one.db")
        r = run([os.path.join(sample, "run"), "--build-dir", build, "--db", db,
                 "--workdir", work], timeout=540)
        out = r.stdout
        if r.returncode != 0:
            fail("samples/building-sensors/run exited %d:\n%s\n%s" % (r.returncode, out, r.stderr))
        ok("samples/building-sensors/run exited 0")
        print("\n".join("    " + line for line in out.splitlines()))
        for name, inst in instances.items():
            c = customers[inst["config"]["customer_id"]]
            expect(re.search(r"%s.*\n  records fetched 43,200, kept 2,880, posted 2,880 in %d "
                             r"batches of at most %d\n  time taken: \d+ ms" %
                             (re.escape(c["name"]), batches[name], inst["config"]["batch_size"]),
                             out) is not None,
                   f"{name}: the summary says fetched 43,200, kept 2,880, posted 2,880 and the "
                   "time taken")

        with open(os.path.join(work, "maintenance-report.json")) as f:
            report = json.load(f)["customers"]
        n273 = 0
        for name, inst in instances.items():
            c = customers[inst["config"]["customer_id"]]
            rep = report[c["customer_id"]]
            expect(rep["records"] == 2880 and rep["duplicates"] == 0 and
                   rep["batches"] == batches[name] and rep["failed"] == 0,
                   f"{name}: the API's report: 2,880 records in {batches[name]} batches, "
                   "no duplicates", json.dumps(rep))
            recs = load_jsonl(os.path.join(work, "received", c["customer_id"] + ".jsonl"))
            _, n = check_records(name, c, inst, recs)
            n273 += n
            with open(os.path.join(work, "runs", name + ".json")) as f:
                printed = json.load(f)
            check_executions(name, ferry, db, inst, printed, batches[name])
        expect(n273 > 0, f"27.3 C readings ({n273}) were posted as 81.1 F")

        # ferry schedule next: 7 AM local in both zones.
        for name, inst in instances.items():
            zone = zoneinfo.ZoneInfo(inst["config"]["building_tz"])
            block = re.search(r"^%s \(%s\):\n((?:  \S+ \S+\n)+)" %
                              (re.escape(inst["name"]), re.escape(zone.key)), out, re.M)
            if not block:
                fail(f"{name}: no `ferry schedule next` block for {inst['name']} in the output")
            lines = [line.split() for line in block.group(1).splitlines()]
            good = all(
                datetime.datetime.fromisoformat(local).astimezone(zone).strftime("%H:%M") == "07:00"
                and datetime.datetime.fromisoformat(local) == utc(u) for local, u in lines)
            expect(good and len(lines) == 3,
                   f"{name}: ferry schedule next shows 7 AM {zone.key} and its UTC time",
                   block.group(1))

        ports = []
        for svc in ("oauth", "sensors", "maintenance"):
            with open(os.path.join(work, svc + ".port")) as f:
                ports.append(int(f.read()))
        expect(all(port_closed(p) for p in ports), "the three services are stopped afterwards")

        # ---- 2. a fixed window, the first three posts failing with HTTP 500
        work, db = os.path.join(tmp, "w2"), os.path.join(tmp, "two.db")
        until = "2026-11-27T13:00:00Z"
        r = run([os.path.join(sample, "run"), "--build-dir", build, "--db", db,
                 "--workdir", work, "--until", until, "--fail-first", "3", "--fail-status", "500"],
                timeout=540)
        if r.returncode != 0:
            fail("run --fail-first 3 exited %d:\n%s\n%s" % (r.returncode, r.stdout, r.stderr))
        ok("samples/building-sensors/run --until %s --fail-first 3 --fail-status 500 exited 0"
           % until)
        with open(os.path.join(work, "maintenance-report.json")) as f:
            report = json.load(f)["customers"]
        chicago = instances["chicago"]
        c = customers[chicago["config"]["customer_id"]]
        rep = report[c["customer_id"]]
        expect(rep["failed"] == 3 and rep["records"] == 2880 and rep["duplicates"] == 0
               and rep["batches"] == batches["chicago"],
               "chicago: three posts answered 500, retried: still 2,880 records, none twice",
               json.dumps(rep))
        for name, inst in instances.items():
            cc = customers[inst["config"]["customer_id"]]
            recs = load_jsonl(os.path.join(work, "received", cc["customer_id"] + ".jsonl"))
            check_records(name + " (fixed window)", cc, inst, recs, window_end=until)
        with open(os.path.join(work, "runs", "chicago.json")) as f:
            printed = json.load(f)
        js = check_executions("chicago (retries)", ferry, db, chicago, printed, batches["chicago"])
        attempts = [s for s in js["steps"] if s["path"] == "post[0].post_batch"]
        expect([s["status"] for s in attempts] == ["failed"] * 3 + ["succeeded"] and
               all(s["retryable"] for s in attempts[:3]),
               "chicago: the first batch's step is recorded 4 times: 3 retryable failures "
               "(HTTP 500), then success", json.dumps([(s["status"], s["error_message"])
                                                       for s in attempts])[:1000])

        # ---- 3. the services refuse what they should
        r = run([os.path.join(sample, "run"), "--build-dir", build, "--services-only",
                 sys.executable, os.path.abspath(__file__), "--services-check"], timeout=300)
        print("\n".join("    " + line for line in r.stdout.splitlines()))
        if r.returncode != 0:
            fail("the services check failed:\n" + r.stdout[-2000:] + r.stderr[-3000:])
        checks += r.stdout.count("\nok - ") + r.stdout.startswith("ok - ")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"building_sensors: all {checks} checks passed")


if __name__ == "__main__":
    main()
