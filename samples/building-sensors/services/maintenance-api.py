#!/usr/bin/env python3
"""The building-maintenance REST API of the building-sensors sample.

A small JSON API on 127.0.0.1 (Python standard library only) that takes
sensor readings in Fahrenheit for the buildings in customers.json, from
callers with an OAuth 2.0 access token of the sample's authorization
server, and reports what it received.

  python3 maintenance-api.py --port 0 --port-file F --oauth URL \\
      --introspect-client ID:SECRET [--received DIR] [--max-batch N] \\
      [--fail-first N] [--fail-status S] [--exit-with-stdin]

POST /v1/buildings/{building_id}/readings
    Authorization: Bearer TOKEN. The token is checked with the
    authorization server's /introspect (answers kept until the token
    expires, at most a minute): it must be active, hold the scope
    readings.write, and belong to the building's customer's
    maintenance_client.
    Body: {"records": [RECORD, ...]}, 1 to --max-batch (1000) records, each
    exactly {customer_id, building_id, sensor_id, sensor_loc, timestamp,
    temperature_f, humidity}: the ids of this building, a timestamp
    YYYY-MM-DDTHH:MM:SSZ, temperature_f and humidity numbers.
    202 {"accepted": N, "duplicates": D, "batch": K}. 401 for a token that
    is missing or not valid, 403 for another customer's client or a missing
    scope, 404 for an unknown building, 413 for too many records, 422
    (with every problem found, at most 20) for a body that is not as above.
    A record already received (same sensor and timestamp) counts as a
    duplicate and is not stored twice.
GET /__report
    {"customers": {ID: {"records", "duplicates", "batches", "failed",
    "first", "last"}}, "requests", "rejected", "injected_failures"}.
GET /__ctl/fail-next?status=503&count=1&retry_after=S
    The next COUNT posts fail with STATUS before anything is stored (as
    --fail-first and --fail-status do at start); retry_after adds a
    Retry-After header.

--received DIR appends each accepted record to DIR/CUSTOMER_ID.jsonl.
Stop it with SIGTERM or SIGINT, or, with --exit-with-stdin, by closing its
standard input.
"""
import argparse
import base64
import json
import os
import re
import signal
import sys
import threading
import time
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HERE = os.path.dirname(os.path.abspath(__file__))
FIELDS = ("customer_id", "building_id", "sensor_id", "sensor_loc", "timestamp",
          "temperature_f", "humidity")
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
PATH = re.compile(r"^/v1/buildings/([A-Za-z0-9_.-]+)/readings/?$")
REASONS = {500: "Internal Server Error", 502: "Bad Gateway",
           503: "Service Unavailable", 504: "Gateway Timeout"}


class State:
    def __init__(self, args):
        self.lock = threading.Lock()
        self.args = args
        with open(os.path.join(HERE, "customers.json"), encoding="utf-8") as f:
            customers = json.load(f)["customers"]
        self.buildings = {c["building_id"]: c for c in customers}
        self.received = {c["customer_id"]: {} for c in customers}
        self.report = {c["customer_id"]: {"records": 0, "duplicates": 0, "batches": 0,
                                          "failed": 0, "first": None, "last": None}
                       for c in customers}
        self.requests = 0
        self.rejected = 0
        self.injected = 0
        self.fail = [args.fail_status, None] if args.fail_first else None
        self.fail_left = args.fail_first
        self.tokens = {}  # token -> (introspection, keep until)
        user, _, secret = args.introspect_client.partition(":")
        pair = (urllib.parse.quote(user, safe="") + ":" +
                urllib.parse.quote(secret, safe=""))
        self.introspect_auth = "Basic " + base64.b64encode(pair.encode()).decode()

    def introspect(self, token):
        now = time.time()
        with self.lock:
            hit = self.tokens.get(token)
            if hit and hit[1] > now:
                return hit[0]
        req = urllib.request.Request(
            self.args.oauth + "/introspect",
            data=urllib.parse.urlencode({"token": token}).encode(),
            headers={"Authorization": self.introspect_auth,
                     "Content-Type": "application/x-www-form-urlencoded"},
            method="POST")
        with urllib.request.urlopen(req, timeout=10) as r:
            info = json.load(r)
        if not info.get("active") or info.get("token_type") != "Bearer":
            return None
        with self.lock:
            if len(self.tokens) > 1000:
                self.tokens.clear()
            self.tokens[token] = (info, min(now + 60, float(info.get("exp", 0))))
        return info


def check_records(body, building, limit):
    """Returns (records, status, problems)."""
    if not isinstance(body, dict) or not isinstance(body.get("records"), list):
        return None, 422, ["the body must be an object with an array 'records'"]
    records = body["records"]
    if not records:
        return None, 422, ["records is empty"]
    if len(records) > limit:
        return None, 413, [f"at most {limit} records per request, got {len(records)}"]
    problems = []
    for i, r in enumerate(records):
        if len(problems) >= 20:
            break
        if not isinstance(r, dict):
            problems.append(f"records[{i}] is not an object")
            continue
        extra = sorted(set(r) - set(FIELDS))
        missing = [f for f in FIELDS if f not in r]
        if extra:
            problems.append(f"records[{i}] has unknown fields {extra}"
                            + (" (temperatures are taken in Fahrenheit, as temperature_f)"
                               if "temperature" in extra else ""))
        if missing:
            problems.append(f"records[{i}] lacks {missing}")
            continue
        if r["customer_id"] != building["customer_id"]:
            problems.append(f"records[{i}].customer_id is {r['customer_id']!r}, "
                            f"not this building's {building['customer_id']!r}")
        if r["building_id"] != building["building_id"]:
            problems.append(f"records[{i}].building_id is {r['building_id']!r}, "
                            f"not {building['building_id']!r}")
        for f in ("sensor_id", "sensor_loc"):
            if not isinstance(r[f], str) or not r[f]:
                problems.append(f"records[{i}].{f} is not a non-empty string")
        if not isinstance(r["timestamp"], str) or not TIMESTAMP.match(r["timestamp"]):
            problems.append(f"records[{i}].timestamp is not YYYY-MM-DDTHH:MM:SSZ: "
                            f"{r['timestamp']!r}")
        for f in ("temperature_f", "humidity"):
            v = r[f]
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                problems.append(f"records[{i}].{f} is not a number: {v!r}")
    if problems:
        return None, 422, problems
    return records, 202, []


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "building-maintenance/1.0"

    def log_message(self, fmt, *args):
        sys.stdout.write("%s %s\n" % (self.command, fmt % args))
        sys.stdout.flush()

    def send_json(self, status, body, headers=None):
        data = json.dumps(body).encode()
        self.send_response(status, REASONS.get(status))
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def do_GET(self):
        st = self.server.state
        url = urllib.parse.urlsplit(self.path)
        q = dict(urllib.parse.parse_qsl(url.query))
        if url.path == "/__report":
            with st.lock:
                self.send_json(200, {"customers": st.report, "requests": st.requests,
                                     "rejected": st.rejected,
                                     "injected_failures": st.injected})
            return
        if url.path == "/__ctl/fail-next":
            status = int(q.get("status", "503"))
            if not 500 <= status <= 599:
                self.send_json(400, {"error": "status must be 500 to 599"})
                return
            with st.lock:
                st.fail = [status, q.get("retry_after")]
                st.fail_left += int(q.get("count", "1"))
                self.send_json(200, {"armed": st.fail_left, "status": status})
            return
        self.send_json(404, {"error": "not_found"})

    def do_POST(self):
        st = self.server.state
        body = self.read_body()
        with st.lock:
            st.requests += 1
        m = PATH.match(urllib.parse.urlsplit(self.path).path)
        if not m:
            self.send_json(404, {"error": "not_found"})
            return
        building = st.buildings.get(m.group(1))
        if building is None:
            self.send_json(404, {"error": "unknown_building", "building_id": m.group(1)})
            return
        auth = re.match(r"^Bearer +(\S+)$", self.headers.get("Authorization", ""), re.I)
        try:
            info = st.introspect(auth.group(1)) if auth else None
        except (OSError, ValueError) as e:
            self.send_json(502, {"error": "introspection_failed", "error_description": str(e)})
            return
        if info is None:
            with st.lock:
                st.rejected += 1
            self.send_json(401, {"error": "invalid_token"},
                           {"WWW-Authenticate": 'Bearer error="invalid_token"'})
            return
        if "readings.write" not in (info.get("scope") or "").split():
            with st.lock:
                st.rejected += 1
            self.send_json(403, {"error": "insufficient_scope", "scope": "readings.write"})
            return
        if info.get("client_id") != building["maintenance_client"]:
            with st.lock:
                st.rejected += 1
            self.send_json(403, {"error": "forbidden",
                                 "error_description": f"client {info.get('client_id')!r} "
                                 f"may not write to {building['building_id']}"})
            return
        customer = building["customer_id"]
        with st.lock:
            if st.fail_left > 0:
                st.fail_left -= 1
                st.injected += 1
                st.report[customer]["failed"] += 1
                status, retry_after = st.fail
                headers = {"Retry-After": retry_after} if retry_after is not None else {}
                self.send_json(status, {"error": "injected_failure",
                                        "error_description": "try again"}, headers)
                return
        try:
            data = json.loads(body)
        except ValueError:
            self.send_json(400, {"error": "invalid_json"})
            return
        records, status, problems = check_records(data, building, st.args.max_batch)
        if records is None:
            self.send_json(status, {"error": "invalid_records", "problems": problems})
            return
        with st.lock:
            seen = st.received[customer]
            rep = st.report[customer]
            fresh = []
            for r in records:
                key = (r["sensor_id"], r["timestamp"])
                if key in seen:
                    rep["duplicates"] += 1
                else:
                    seen[key] = r
                    fresh.append(r)
            rep["records"] += len(fresh)
            rep["batches"] += 1
            if fresh:
                rep["first"] = rep["first"] or fresh[0]
                rep["last"] = fresh[-1]
            batch = rep["batches"]
            if st.args.received and fresh:
                with open(os.path.join(st.args.received, customer + ".jsonl"), "a",
                          encoding="utf-8") as f:
                    for r in fresh:
                        f.write(json.dumps(r, separators=(",", ":")) + "\n")
        self.send_json(202, {"accepted": len(fresh), "duplicates": len(records) - len(fresh),
                             "batch": batch})


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--port-file")
    p.add_argument("--oauth", required=True, help="the authorization server's base URL")
    p.add_argument("--introspect-client", required=True, metavar="ID:SECRET")
    p.add_argument("--received", metavar="DIR")
    p.add_argument("--max-batch", type=int, default=1000)
    p.add_argument("--fail-first", type=int, default=0, metavar="N")
    p.add_argument("--fail-status", type=int, default=503, metavar="S")
    p.add_argument("--exit-with-stdin", action="store_true")
    args = p.parse_args()
    args.oauth = args.oauth.rstrip("/")
    if not 500 <= args.fail_status <= 599:
        p.error("--fail-status must be 500 to 599")

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    server.state = State(args)
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % server.server_address[1])
        os.replace(tmp, args.port_file)

    def stop(*_):
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if args.exit_with_stdin:
        def watch():
            while sys.stdin.buffer.read(65536):
                pass
            stop()
        threading.Thread(target=watch, daemon=True).start()
    server.serve_forever(poll_interval=0.2)
    server.server_close()


if __name__ == "__main__":
    main()
