#!/usr/bin/env python3
"""Integration test of `ferry serve`: a real host on a loopback port, used
through its HTTP API as a user would, with the "chaos" fixture component
(fixtures/chaos.c) crashing, hanging and leaking inside it.

Environment (set by CMakeLists.txt):
  FERRY_BIN                the ferry binary
  FERRY_SERVE_FIXTURES     a directory holding chaos.so
  FERRY_SERVE_FIXTURES_V2  a directory holding the v2 build of chaos.so
  FERRY_SERVE_DEFS         the directory of chaos.integration.json and
                           chaos.instance.json
  FERRY_TEST_KEEP=1        keep the temporary directory (host logs, DBs);
                           it is kept anyway when a case fails

Prints "ok - NAME" or "not ok - NAME: why" per case, then "N passed, M
failed"; exits 1 if anything failed. Python 3 standard library only.
"""

import copy
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

FERRY = os.environ.get("FERRY_BIN", "build/ferry")
FIXTURES = os.environ.get("FERRY_SERVE_FIXTURES", "build/tests/serve/components")
FIXTURES_V2 = os.environ.get("FERRY_SERVE_FIXTURES_V2",
                             "build/tests/serve/components_v2")
DEFS = os.environ.get("FERRY_SERVE_DEFS", os.path.dirname(os.path.abspath(__file__)))
TOKEN = "serve-test-" + os.urandom(8).hex()
INSTANCE = "chaos-1"
FINAL = ("succeeded", "failed", "cancelled")
WAIT_S = 20.0  # the longest any execution is waited for

with open(os.path.join(DEFS, "chaos.integration.json")) as f:
    INTEGRATION = json.load(f)
with open(os.path.join(DEFS, "chaos.instance.json")) as f:
    INSTANCE_DOC = json.load(f)

hosts = []  # every host started, killed on exit


class Fail(Exception):
    pass


class Skip(Exception):
    pass


# Set by CMake in a -DFERRY_SANITIZE=ON build. There AddressSanitizer owns
# SIGSEGV and the address space (its shadow memory makes RLIMIT_AS
# meaningless), so the cases that need a real SIGSEGV or a real memory limit
# are skipped: the normal build runs them.
SANITIZED = os.environ.get("FERRY_SANITIZED") == "1"


def skip_if_sanitized(what):
    if SANITIZED:
        raise Skip("sanitizer build: %s is checked in the normal build" % what)


def host_env():
    """The host's environment. In a sanitizer build, the fixtures' crashes
    must stay crashes: AddressSanitizer would otherwise catch SIGSEGV and
    SIGABRT and turn them into exit status 1, and abort when an allocation
    fails instead of returning NULL. (Harmless in a normal build.)"""
    env = dict(os.environ)
    env["FERRY_SECRET_PROBE"] = "must-not-reach-workers"
    extra = "handle_segv=0:handle_abort=0:allocator_may_return_null=1"
    env["ASAN_OPTIONS"] = (env["ASAN_OPTIONS"] + ":" + extra
                           if env.get("ASAN_OPTIONS") else extra)
    return env


def check(cond, why):
    if not cond:
        raise Fail(why)


class Response:
    def __init__(self, status, body, ctype):
        self.status = status
        self.text = body.decode("utf-8", "replace")
        self.json = None
        if "json" in (ctype or ""):
            try:
                self.json = json.loads(self.text)
            except ValueError:
                pass

    def __repr__(self):
        return "HTTP %d %s" % (self.status, self.text[:300])


class Host:
    """One `ferry serve` child process with its own directory."""

    def __init__(self, root, name, limits=None, grace=None, db=None,
                 deployments=None, components=None):
        self.name = name
        self.dir = os.path.join(root, name)
        os.makedirs(self.dir, exist_ok=True)
        self.db = db or os.path.join(self.dir, "f.db")
        self.deployments = deployments or os.path.join(self.dir, "deployments")
        if components is None:
            components = os.path.join(self.dir, "components")
            shutil.copytree(FIXTURES, components)
        elif components == "empty":
            components = os.path.join(self.dir, "components")
            os.makedirs(components)
        self.components = components
        self.config = os.path.join(self.dir, "ferry.json")
        cfg = {}
        if limits:
            cfg["limits"] = limits
        if grace:
            cfg["shutdown_grace"] = grace
        with open(self.config, "w") as f:
            json.dump(cfg, f)
        self.proc = None
        self.port = None
        self.starts = 0

    def start(self):
        self.starts += 1
        port_file = os.path.join(self.dir, "port")
        if os.path.exists(port_file):
            os.unlink(port_file)
        self.log_path = os.path.join(self.dir, "host-%d.log" % self.starts)
        log = open(self.log_path, "wb")
        argv = [FERRY, "serve", "--config", self.config,
                "--listen", "127.0.0.1:0", "--port-file", port_file,
                "--db", self.db, "--components-dir", self.components,
                "--deployments", self.deployments, "--api-token", TOKEN]
        # Its own session, so that a signal meant for the test runner does
        # not reach the host, its zygote or its workers.
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                     stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True, env=host_env())
        log.close()
        if self not in hosts:
            hosts.append(self)
        deadline = time.monotonic() + 10
        while True:
            if self.proc.poll() is not None:
                raise Fail("the host exited with status %s at start: %s"
                           % (self.proc.returncode, self.log_tail()))
            try:
                with open(port_file) as f:
                    text = f.read()
                if text.endswith("\n"):
                    self.port = int(text)
                    break
            except (OSError, ValueError):
                pass
            if time.monotonic() > deadline:
                raise Fail("no port file after 10 s: " + self.log_tail())
            time.sleep(0.02)
        while True:
            try:
                if self.get("/healthz", token=None).status == 200 and \
                        self.get("/readyz", token=None).status == 200:
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise Fail("/healthz and /readyz not both 200 after 10 s: "
                           + self.log_tail())
            time.sleep(0.02)

    def log_tail(self, n=15):
        try:
            with open(self.log_path, errors="replace") as f:
                lines = f.read().splitlines()
        except OSError:
            return "(no log)"
        return "\n    " + "\n    ".join(lines[-n:])

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def request(self, method, path, body=None, token=TOKEN, query=None,
                timeout=10):
        if query:
            path += "?" + urllib.parse.urlencode(query)
        headers = {}
        if token is not None:
            headers["Authorization"] = "Bearer " + token
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            c.request(method, path, body=data, headers=headers)
            r = c.getresponse()
            return Response(r.status, r.read(), r.getheader("Content-Type"))
        finally:
            c.close()

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def deploy(self, integration=None, instance=None):
        r = self.request("POST", "/api/v1/instances",
                         {"integration": integration or INTEGRATION,
                          "instance": instance or INSTANCE_DOC})
        check(r.status in (200, 201), "deploy: %r" % r)
        return r

    def start_run(self, flow, body=None):
        r = self.request("POST", "/api/v1/instances/%s/flows/%s/executions"
                         % (INSTANCE, flow), body)
        check(r.status == 202 and r.json and r.json.get("id"),
              "starting %s: %r" % (flow, r))
        return r.json["id"]

    def execution(self, xid):
        r = self.get("/api/v1/executions/" + xid)
        check(r.status == 200 and r.json, "GET execution %s: %r" % (xid, r))
        return r.json

    def wait_status(self, xid, statuses, timeout=WAIT_S):
        deadline = time.monotonic() + timeout
        while True:
            x = self.execution(xid)
            if x.get("status") in statuses:
                return x
            if time.monotonic() > deadline:
                raise Fail("execution %s still %s after %.0f s (waiting for "
                           "%s)" % (xid, x.get("status"), timeout,
                                    "/".join(statuses)))
            time.sleep(0.03)

    def wait_done(self, xid, timeout=WAIT_S):
        return self.wait_status(xid, FINAL, timeout)

    def run(self, flow, body=None, timeout=WAIT_S):
        return self.wait_done(self.start_run(flow, body), timeout)

    def signal(self, sig):
        self.proc.send_signal(sig)

    def wait_exit(self, timeout):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def kill_all(self):
        """Kills the host and whatever it left running (zygote, workers).
        Found by their command lines, which name this host's directory:
        a process group id can outlive its group and be reused."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        for pid in processes_of(self.dir):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


def install(src, directory, name=None):
    """Puts a file into a components directory as an operator (or
    `install`) does: written beside it, then renamed over the old one."""
    name = name or os.path.basename(src)
    tmp = os.path.join(directory, "." + name + ".new")
    shutil.copyfile(src, tmp)
    os.replace(tmp, os.path.join(directory, name))


def processes_of(directory):
    """Pids of the processes whose command line names directory."""
    pids = []
    key = directory.encode()
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            with open("/proc/%s/cmdline" % name, "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if any(a == key or a.startswith(key + b"/") for a in argv):
            pids.append(int(name))
    return pids


def wait_gone(directory, timeout):
    """Waits until no process names directory; returns the pids left."""
    deadline = time.monotonic() + timeout
    while True:
        left = processes_of(directory)
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.05)


# ---- results ----

results = {"passed": 0, "failed": 0, "skipped": 0}
current = {"host": None}


def case(name, fn):
    """Runs one case; then checks that the host it used still answers
    /healthz, which is part of every case."""
    try:
        fn()
        h = current["host"]
        if h is not None:
            check(h.alive(), "the host died: %s" % h.log_tail())
            r = h.get("/healthz", token=None)
            check(r.status == 200, "/healthz after the case: %r" % r)
        print("ok - " + name, flush=True)
        results["passed"] += 1
    except Skip as e:
        print("ok - %s # SKIP %s" % (name, e), flush=True)
        results["skipped"] += 1
    except Exception as e:  # a case's failure never stops the others
        why = str(e) if isinstance(e, Fail) else "%s: %s" % (type(e).__name__, e)
        print("not ok - %s: %s" % (name, why.replace("\n", "\n#")), flush=True)
        results["failed"] += 1


class HealthProbe(threading.Thread):
    """Asks /healthz every 100 ms while the main host runs."""

    def __init__(self, host):
        super().__init__(daemon=True)
        self.host = host
        self.stop = threading.Event()
        self.probes = 0
        self.failures = []

    def run(self):
        while not self.stop.is_set():
            try:
                r = self.host.get("/healthz", token=None, timeout=2)
                if r.status != 200:
                    self.failures.append(repr(r))
            except OSError as e:
                self.failures.append(str(e))
            self.probes += 1
            self.stop.wait(0.1)


def message(x):
    return x.get("error_message") or ""


def expect_failed(x, prefix, *words):
    check(x["status"] == "failed",
          "status %s, error %r" % (x["status"], message(x)))
    m = message(x)
    check(m.startswith(prefix), "error_message %r does not start with %r"
          % (m, prefix))
    for w in words:
        check(w in m, "error_message %r does not name %r" % (m, w))


# ---- the main host ----

def main_cases(root):
    h = Host(root, "main", limits={"timeout": "30s", "memory": "256MiB"})
    h.start()
    current["host"] = h
    probe = HealthProbe(h)
    probe.start()
    ids = {}

    def deploy():
        r = h.deploy()
        check(r.status == 201, "first deploy answered %r, not 201" % r)
        r = h.get("/api/v1/instances")
        check(r.status == 200 and isinstance(r.json, list) and
              any(i.get("instance") == INSTANCE for i in r.json),
              "instances list: %r" % r)
        r = h.get("/api/v1/instances/" + INSTANCE)
        check(r.status == 200 and r.json.get("integration") == "chaos-test",
              "instance get: %r" % r)
    case("deploy through POST /api/v1/instances", deploy)

    def auth():
        for path in ("/api/v1/executions", "/api/v1/instances", "/metrics"):
            r = h.get(path, token=None)
            check(r.status == 401, "%s without a token: %r" % (path, r))
            r = h.get(path, token="wrong-" + TOKEN)
            check(r.status == 401, "%s with a wrong token: %r" % (path, r))
        r = h.request("POST", "/api/v1/instances/%s/flows/global/executions"
                      % INSTANCE, token="wrong")
        check(r.status == 401, "POST with a wrong token: %r" % r)
    case("401 without a token and with a wrong one", auth)

    def readyz():
        r = h.get("/readyz", token=None)
        check(r.status == 200, "/readyz: %r" % r)
    case("/readyz 200 with the store and the zygote up", readyz)

    def segfault():
        x = h.run("segfault")
        ids["segfault"] = x["id"]
        skip_if_sanitized("a worker killed by SIGSEGV")
        expect_failed(x, "crashed:", "SIGSEGV", "boom")
    case("segfault recorded as crashed: SIGSEGV at its step", segfault)

    def abort():
        x = h.run("abort")
        expect_failed(x, "crashed:", "SIGABRT", "bail")
    case("abort() recorded as crashed: SIGABRT at its step", abort)

    def hundred():
        x = h.run("segfault")
        check(message(x).startswith("crashed:"), "the crash: %r" % message(x))
        t0 = time.monotonic()
        started = [(n, h.start_run("cheap", {"n": n})) for n in range(100)]
        ids["cheap"] = started[-1][1]
        bad = []
        for n, xid in started:
            x = h.wait_done(xid)
            if x["status"] != "succeeded" or x.get("output") != 2 * n:
                bad.append("%s: %s output=%r %r" % (xid, x["status"],
                                                     x.get("output"),
                                                     message(x)))
        check(not bad, "%d of 100 not right, first: %s" % (len(bad), bad[:1]))
        print("# 100 cheap executions, POST to finished: %.2f s"
              % (time.monotonic() - t0))
    case("100 cheap executions right after a crash all succeed", hundred)

    def output_limit():
        x = h.run("big_output", {"n": 10})
        check(x["status"] == "succeeded", "a small output: %s %r"
              % (x["status"], message(x)))
        x = h.run("big_output", {"n": 1000})
        expect_failed(x, "output_limit:", "1024")
    case("an output over the flow's limit fails with output_limit:",
         output_limit)

    def environment():
        x = h.run("env")
        check(x["status"] == "succeeded", "env: %s %r" % (x["status"],
                                                        message(x)))
        check(x.get("output") == {"secret": False, "path": True},
              "a flow saw the host's environment: %r" % x.get("output"))
    case("workers do not see the host's environment ($ENV)", environment)

    def global_fresh():
        outs = [h.run("global") for _ in range(2)]
        for x in outs:
            check(x["status"] == "succeeded", "global: %s %r"
                  % (x["status"], message(x)))
        got = [x.get("output") for x in outs]
        check(got == [1, 1], "chaos.global output %r, expected [1, 1]: a "
              "global of one execution was seen by the next" % got)
    case("a global written in one execution is fresh in the next", global_fresh)

    def lean_workers():
        got = {}
        for flow in ("lean_libs", "full_libs", "mixed_libs"):
            x = h.run(flow)
            check(x["status"] == "succeeded", "%s: %s %r"
                  % (flow, x["status"], message(x)))
            got[flow] = x.get("output")
        want = {"lean_libs": {"libcurl": False},
                "full_libs": {"libcurl": True},
                "mixed_libs": {"libcurl": True}}
        check(got == want, "libcurl mapped in the workers of %r, expected %r"
              % (got, want))
        url = "http://127.0.0.1:%d/healthz" % h.port
        x = h.run("full_http", {"url": url})
        check(x["status"] == "succeeded" and x.get("output") == {"status": 200},
              "chaos.http GET /healthz: %s output=%r %r"
              % (x["status"], x.get("output"), message(x)))
        x = h.run("lean_http", {"url": url})
        expect_failed(x, "", "chaoslean", "FERRY_COMPONENT_NO_HTTP")
        outs = [h.run("lean_global") for _ in range(2)]
        check([x.get("output") for x in outs] == [1, 1],
              "chaoslean.global: %r" % [(x["status"], x.get("output"))
                                        for x in outs])
        x = h.run("lean_segfault")
        skip_if_sanitized("a worker killed by SIGSEGV")
        expect_failed(x, "crashed:", "SIGSEGV", "boom")
    case("flows of FERRY_COMPONENT_NO_HTTP components run in workers "
         "without libcurl; the others, and their HTTP requests, with it",
         lean_workers)

    def state():
        outs = [h.run("state") for _ in range(2)]
        for x in outs:
            check(x["status"] == "succeeded", "state: %s %r"
                  % (x["status"], message(x)))
        got = [x.get("output") for x in outs]
        check(got == [1, 2], "chaos.state output %r, expected [1, 2]" % got)
    case("instance state persists across executions", state)

    def steps_and_logs():
        xid = h.start_run("cheap", {"n": 21})
        x = h.wait_done(xid)
        ids["cheap21"] = x
        check(x["status"] == "succeeded" and x.get("output") == 42,
              "cheap: %s output=%r" % (x["status"], x.get("output")))
        steps = x.get("steps") or []
        check([s.get("name") for s in steps] == ["set", "double", "say"],
              "steps: %r" % [s.get("name") for s in steps])
        check(all(s.get("status") == "succeeded" for s in steps),
              "step statuses: %r" % [s.get("status") for s in steps])
        check([s.get("output") for s in steps] == [21, 42, 42],
              "step outputs: %r" % [s.get("output") for s in steps])
        check(steps[2].get("action") == "chaos.echo", "step 3: %r" % steps[2])
        logs = x.get("logs") or []
        check(any("chaos.echo" in (l.get("message") or "") for l in logs),
              "no log line of chaos.echo in %r" % logs)
        check(x.get("trigger", {}).get("body") == {"n": 21},
              "trigger: %r" % x.get("trigger"))
    case("steps and logs of a succeeded run in GET /api/v1/executions/{id}",
         steps_and_logs)

    def filters():
        q = {"instance": INSTANCE, "status": "succeeded", "limit": 10000}
        r = h.get("/api/v1/executions", query=q)
        check(r.status == 200 and isinstance(r.json, list), "list: %r" % r)
        check(r.json and all(e.get("status") == "succeeded" and
                             e.get("instance") == INSTANCE for e in r.json),
              "status=succeeded returned others: %r"
              % sorted({e.get("status") for e in r.json}))
        got = {e["id"] for e in r.json}
        check(ids["cheap21"]["id"] in got, "a succeeded run is missing")
        check(ids.get("segfault") not in got, "a failed run is listed")
        r = h.get("/api/v1/executions", query={"instance": INSTANCE,
                                               "status": "failed",
                                               "limit": 10000})
        check(ids.get("segfault") in {e["id"] for e in r.json},
              "status=failed does not list the segfault")
        r = h.get("/api/v1/executions", query={"flow": "global", "limit": 100})
        check(len(r.json) == 2 and all(e["flow"] == "global" for e in r.json),
              "flow=global: %r" % [(e["flow"], e["id"]) for e in r.json])
        r = h.get("/api/v1/executions", query={"instance": "nobody"})
        check(r.status == 200 and r.json == [], "unknown instance: %r" % r)
        r = h.get("/api/v1/executions", query={"limit": 3})
        check(r.status == 200 and len(r.json) == 3, "limit=3: %r" % r)
    case("GET /api/v1/executions filters by instance, flow and status", filters)

    def since_until():
        x = ids["cheap21"]
        created = x["created"]
        r = h.get("/api/v1/executions", query={"since": created, "limit": 10000})
        check(r.status == 200, "since: %r" % r)
        got = {e["id"] for e in r.json}
        check(x["id"] in got, "since=its created time does not list it")
        check(ids["cheap"] not in got, "since lists an older run")
        r = h.get("/api/v1/executions", query={"until": created, "limit": 10000})
        got = {e["id"] for e in r.json}
        check(r.status == 200 and x["id"] not in got and ids["cheap"] in got,
              "until=its created time: %r" % r)
        r = h.get("/api/v1/executions", query={"since": "2999-01-01T00:00:00Z"})
        check(r.status == 200 and r.json == [], "since the future: %r" % r)
        r = h.get("/api/v1/executions", query={"until": "2000-01-01T00:00:00Z"})
        check(r.status == 200 and r.json == [], "until the past: %r" % r)
        ms = int(time.time() * 1000) + 3600 * 1000
        r = h.get("/api/v1/executions", query={"since": str(ms)})
        check(r.status == 200 and r.json == [], "since in ms: %r" % r)
        r = h.get("/api/v1/executions", query={"since": "yesterday"})
        check(r.status == 400, "since=yesterday: %r" % r)
    case("since/until filters", since_until)

    def not_found():
        r = h.get("/api/v1/executions/ex_doesnotexist")
        check(r.status == 404, "GET unknown id: %r" % r)
        r = h.request("DELETE", "/api/v1/executions/ex_doesnotexist")
        check(r.status == 404, "DELETE unknown id: %r" % r)
        r = h.get("/api/v1/instances/nobody")
        check(r.status == 404, "GET unknown instance: %r" % r)
        r = h.request("POST", "/api/v1/instances/nobody/flows/x/executions")
        check(r.status == 404, "POST unknown instance: %r" % r)
        r = h.request("POST", "/api/v1/instances/%s/flows/nope/executions"
                      % INSTANCE)
        check(r.status == 404, "POST unknown flow: %r" % r)
    case("404 for unknown ids, instances and flows", not_found)

    def cancel():
        xid = h.start_run("sleep_long")
        h.wait_status(xid, ("running",) + FINAL)
        t0 = time.monotonic()
        r = h.request("DELETE", "/api/v1/executions/" + xid)
        check(r.status == 202, "DELETE of a running one: %r" % r)
        x = h.wait_done(xid)
        took = time.monotonic() - t0
        check(x["status"] == "cancelled", "status %s %r after DELETE"
              % (x["status"], message(x)))
        check(took < 8, "cancelling took %.1f s" % took)
        r = h.request("DELETE", "/api/v1/executions/" + xid)
        check(r.status == 409, "DELETE right after GET showed it cancelled "
              "answered %r, not 409" % r)
        r = h.request("DELETE", "/api/v1/executions/" + ids["cheap21"]["id"])
        check(r.status == 409, "DELETE of a succeeded one: %r" % r)
    case("DELETE a running execution: 202 then cancelled; finished: 409",
         cancel)

    def cancel_queued():
        # The DELETE lands while the execution is queued or its worker is
        # still being forked: the cancel must not be lost either way.
        xid = h.start_run("sleep_long")
        r = h.request("DELETE", "/api/v1/executions/" + xid)
        check(r.status == 202, "DELETE right after POST: %r" % r)
        x = h.wait_done(xid)
        check(x["status"] == "cancelled", "status %s %r"
              % (x["status"], message(x)))
    case("DELETE right after POST cancels", cancel_queued)

    def hog():
        skip_if_sanitized("the memory limit")
        t0 = time.monotonic()
        x = h.run("hog")
        check(x["status"] == "failed", "hog: status %s" % x["status"])
        m = message(x)
        check(m.startswith("memory_limit:"),
              "error_message %r does not start with 'memory_limit:' (after "
              "%.1f s)" % (m, time.monotonic() - t0))
        check("eat" in m, "error_message %r does not name the step" % m)
    case("unbounded allocation recorded as memory_limit:", hog)

    def metrics():
        skip_if_sanitized("the SIGSEGV crash counter")
        r = h.get("/metrics")
        check(r.status == 200, "/metrics: %r" % r)
        want = ['ferry_executions_finished_total{status="failed"}',
                'ferry_executions_finished_total{status="succeeded"}',
                'ferry_worker_crashes_total{signal="SIGSEGV"}',
                'ferry_worker_crashes_total{signal="SIGABRT"}']
        lines = r.text.splitlines()
        for w in want:
            vals = [l[len(w):].strip() for l in lines if l.startswith(w + " ")]
            check(vals, "no %s in /metrics" % w)
            check(float(vals[0]) >= 1, "%s is %s" % (w, vals[0]))
        for w in ("ferry_executions_started_total", "ferry_queue_depth",
                  "ferry_workers_running", "ferry_components_loaded",
                  "ferry_step_duration_seconds_bucket"):
            check(any(l.startswith(w) for l in lines), "no %s in /metrics" % w)
    case("/metrics counts failures and crashes by signal", metrics)

    def redeploy():
        a = h.start_run("slow_echo")
        h.wait_status(a, ("running",) + FINAL)
        ig = copy.deepcopy(INTEGRATION)
        for fl in ig["flows"]:
            if fl["name"] == "slow_echo":
                fl["steps"][1]["input"]["value"] = "new"
        r = h.deploy(integration=ig)
        check(r.status == 200, "redeploy answered %r, not 200" % r)
        check(h.execution(a)["status"] == "running",
              "the first run ended before the redeploy; the case proves "
              "nothing")
        b = h.start_run("slow_echo")
        xa, xb = h.wait_done(a), h.wait_done(b)
        check(xa["status"] == "succeeded" and xa.get("output") == "old",
              "the run started before: %s output=%r" % (xa["status"],
                                                        xa.get("output")))
        check(xb["status"] == "succeeded" and xb.get("output") == "new",
              "the run started after: %s output=%r" % (xb["status"],
                                                       xb.get("output")))
    case("redeploy: a running execution finishes on the old definition, a "
         "new one uses the new", redeploy)

    def hot_reload():
        a = h.start_run("slow_reload")
        h.wait_status(a, ("running",) + FINAL)
        # The zygotes (the one with the HTTP client runs "slow_reload") and
        # the worker: all must go once the new components take over.
        old = set(processes_of(h.components)) - {h.proc.pid}
        install(os.path.join(FIXTURES_V2, "chaos.so"), h.components)
        t0 = time.monotonic()
        seen = None
        while time.monotonic() - t0 < 6:
            x = h.run("echo", "x")
            check(x["status"] == "succeeded", "echo after the replacement: "
                  "%s %r" % (x["status"], message(x)))
            if x.get("output") == {"v2": "x"}:
                seen = time.monotonic() - t0
                break
            check(x.get("output") == "x", "echo output %r" % x.get("output"))
            time.sleep(0.2)
        xa = h.wait_done(a)
        check(xa["status"] == "succeeded" and xa.get("output") == "r",
              "the run that started before the replacement: %s output=%r %r"
              % (xa["status"], xa.get("output"), message(xa)))
        if seen is None:
            raise Skip("the host still runs the old chaos.so 6 s after it was "
                       "replaced (no hot reload of components yet)")
        for _ in range(3):
            x = h.run("echo", "y")
            check(x.get("output") == {"v2": "y"}, "after the switch, echo "
                  "output %r: old code ran again" % x.get("output"))
        check(len(old) >= 3, "before the switch, processes %r: expected two "
              "zygotes and a worker" % sorted(old))
        deadline = time.monotonic() + 5
        while old & set(processes_of(h.components)) and \
                time.monotonic() < deadline:
            time.sleep(0.05)
        left = old & set(processes_of(h.components))
        check(not left, "processes of the old components still there: %r"
              % sorted(left))
        r = h.get("/api/v1/components")
        check(r.status == 200 and r.json, "/api/v1/components: %r" % r)
        chaos = [c for c in r.json.get("components", [])
                 if c.get("name") == "chaos"]
        check([c.get("version") for c in chaos] == ["2.0.0"],
              "/api/v1/components shows chaos %r, not 2.0.0"
              % [c.get("version") for c in chaos])
        # What an operator types: `ferry components list --host`.
        p = subprocess.run([FERRY, "components", "list", "--host",
                            "http://127.0.0.1:%d" % h.port, "--api-token",
                            TOKEN], stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=10)
        rows = [l.split() for l in p.stdout.splitlines()]
        check(p.returncode == 0 and ["chaos", "2.0.0"] in
              [r[:2] for r in rows],
              "ferry components list --host: status %d, stdout %r, stderr "
              "%r" % (p.returncode, p.stdout, p.stderr))
    case("replacing a .so changes later executions only", hot_reload)

    def http_zygote_killed():
        x = h.run("full_libs")
        check(x["status"] == "succeeded", "full_libs: %s %r"
              % (x["status"], message(x)))

        def children(pid):
            try:
                with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
                    return [int(c) for c in f.read().split()]
            except OSError:
                return []
        # The zygote's own children: its workers, done by now, and the
        # zygote with the HTTP client, which stays.
        zygotes = children(h.proc.pid)
        deadline = time.monotonic() + 5
        while True:
            subs = [c for z in zygotes for c in children(z)]
            if len(subs) == 1 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        check(len(subs) == 1, "the zygote's children: %r, expected the "
              "zygote with the HTTP client alone" % subs)
        # A worker of that zygote, mid-step when it dies: it goes on, and
        # its end is reported all the same.
        sleeping = h.start_run("sleep_1s")
        h.wait_status(sleeping, ("running",) + FINAL)
        os.kill(subs[0], signal.SIGKILL)
        x = h.wait_done(sleeping)
        check(x["status"] == "succeeded" and x.get("output") ==
              {"slept_ms": 1000}, "the run whose zygote died: %s output=%r "
              "%r" % (x["status"], x.get("output"), message(x)))
        for flow in ("full_libs", "lean_libs", "full_libs"):
            x = h.run(flow)
            check(x["status"] == "succeeded", "%s after the kill: %s %r"
                  % (flow, x["status"], message(x)))
        check(children(h.proc.pid) == zygotes, "the zygote changed: %r, "
              "then %r" % (zygotes, children(h.proc.pid)))
    case("a killed zygote with the HTTP client: its running worker "
         "finishes, the next HTTP flow starts another", http_zygote_killed)

    def probe_throughout():
        probe.stop.set()
        probe.join(5)
        check(probe.probes >= 10, "only %d probes" % probe.probes)
        check(not probe.failures, "%d of %d /healthz probes failed, first: %s"
              % (len(probe.failures), probe.probes, probe.failures[0]
                 if probe.failures else ""))
    case("/healthz answered 200 throughout", probe_throughout)

    def stop_main():
        current["host"] = None
        h.signal(signal.SIGTERM)
        rc = h.wait_exit(10)
        check(rc == 0, "exit status %r after SIGTERM: %s" % (rc, h.log_tail()))
    case("the host stops on SIGTERM with status 0", stop_main)
    return ids


# ---- limits, each with a host of its own ----

def limit_cases(root):
    def timeout():
        h = Host(root, "timeout", limits={"timeout": "2s"})
        h.start()
        current["host"] = h
        h.deploy()
        t0 = time.monotonic()
        x = h.run("spin")
        took = time.monotonic() - t0
        expect_failed(x, "timeout:", "burn")
        check(took < 6, "the deadline of 2 s took %.1f s" % took)
        x = h.run("cheap", {"n": 1})
        check(x["status"] == "succeeded", "a run after the timeout: %s"
              % x["status"])
    case("a spinning step past the deadline is recorded as timeout:", timeout)
    stop(current)

    def cpu():
        h = Host(root, "cpu", limits={"timeout": "60s", "cpu": "1s"})
        h.start()
        current["host"] = h
        h.deploy()
        t0 = time.monotonic()
        x = h.run("spin")
        took = time.monotonic() - t0
        expect_failed(x, "cpu_limit:", "burn")
        check(took < 8, "the CPU limit of 1 s took %.1f s" % took)
    case("a spinning step past its CPU seconds is recorded as cpu_limit:", cpu)
    stop(current)


def new_component_cases(root):
    def appears():
        h = Host(root, "hotadd", components="empty")
        h.start()
        current["host"] = h

        def components():
            r = h.get("/api/v1/components")
            check(r.status == 200 and isinstance(r.json, dict),
                  "/api/v1/components: %r" % r)
            return r.json

        def wait_components(pred, what):
            deadline = time.monotonic() + 6
            while True:
                c = components()
                if pred(c):
                    return c
                check(time.monotonic() < deadline, "after 6 s, still no %s "
                      "in /api/v1/components: %r" % (what, c))
                time.sleep(0.05)

        names = [c.get("name") for c in components().get("components", [])]
        check("chaos" not in names, "chaos loaded from an empty dir: %r"
              % names)
        r = h.request("POST", "/api/v1/instances",
                      {"integration": INTEGRATION, "instance": INSTANCE_DOC})
        check(r.status == 400 and "diagnostics" in (r.json or {}).get(
            "error", {}), "deploying without chaos.so: %r" % r)

        # A .so the loader refuses: logged with the reason, nothing else.
        junk = os.path.join(h.dir, "junk")
        with open(junk, "wb") as f:
            f.write(b"this is not an ELF file\n" * 64)
        install(junk, h.components, "broken.so")
        c = wait_components(lambda c: any(
            os.path.basename(x.get("path", "")) == "broken.so"
            for x in c.get("refused", [])), "refusal of broken.so")
        reason = [x.get("reason") for x in c["refused"]
                  if os.path.basename(x.get("path", "")) == "broken.so"]
        check(reason and reason[0], "no reason for broken.so: %r" % c)
        check(h.get("/readyz", token=None).status == 200,
              "not ready after a refused .so")

        # A new .so: available without a restart.
        install(os.path.join(FIXTURES, "chaos.so"), h.components)
        wait_components(lambda c: any(x.get("name") == "chaos"
                                      for x in c.get("components", [])),
                        "chaos")
        # The API shows it: a deployment using it validates, and a run
        # started right away must find it too (chaoslean.so stays out).
        ig = copy.deepcopy(INTEGRATION)
        ig["flows"] = [fl for fl in ig["flows"] if not any(
            st.get("action", "").startswith("chaoslean.")
            for st in fl["steps"])]
        r = h.deploy(integration=ig)
        check(r.status == 201, "deploy after chaos.so appeared: %r" % r)
        x = h.run("global")
        check(x["status"] == "succeeded" and x.get("output") == 1,
              "the first run right after chaos.so was listed: %s output=%r "
              "%r" % (x["status"], x.get("output"), message(x)))
        with open(h.log_path, errors="replace") as f:
            log = f.read()
        check("broken.so" in log, "the refusal of broken.so is not logged")
    case("a new .so is loaded without a restart; a refused one is logged "
         "and changes nothing else", appears)
    stop(current)


def stop(cur):
    h = cur["host"]
    cur["host"] = None
    if h and h.alive():
        h.signal(signal.SIGTERM)
        if h.wait_exit(10) is None:
            h.kill_all()


# ---- shutdown and restart ----

def shutdown_cases(root):
    h = Host(root, "term", limits={"concurrency": 1}, grace="500ms")
    state = {}

    def sigterm():
        h.start()
        current["host"] = h
        h.deploy()
        xids = [h.start_run("sleep_1s") for _ in range(5)]
        state["ids"] = xids
        h.wait_status(xids[0], ("running",) + FINAL)
        current["host"] = None
        t0 = time.monotonic()
        h.signal(signal.SIGTERM)
        rc = h.wait_exit(10)
        took = time.monotonic() - t0
        check(rc == 0, "exit status %r after SIGTERM: %s" % (rc, h.log_tail()))
        check(took < 5, "stopping took %.1f s with a 500 ms grace" % took)
    case("SIGTERM with one running and four queued: exit 0 within the grace",
         sigterm)

    def restart():
        check("ids" in state, "the SIGTERM case did not get that far")
        h.start()  # same DB, same deployments: nothing deployed again
        current["host"] = h
        xs = [h.wait_done(xid) for xid in state["ids"]]
        statuses = [x["status"] for x in xs]
        check(all(s in ("succeeded", "cancelled") for s in statuses),
              "statuses %r" % statuses)
        # The one running at SIGTERM outlived the grace: cancelled. The four
        # queued ones must have been run, not dropped or cancelled.
        check(statuses.count("succeeded") >= 4,
              "statuses %r: queued executions were lost or cancelled"
              % statuses)
        r = h.get("/api/v1/executions", query={"flow": "sleep_1s",
                                               "limit": 100})
        check(len(r.json) == 5 and not [e for e in r.json if e["status"] in
                                        ("queued", "running")],
              "listed: %r" % [(e["id"], e["status"]) for e in r.json])
    case("after a restart the queued executions run: all 5 end, none lost",
         restart)

    def sigkill():
        check(h.alive(), "the restarted host is not running")
        xid = h.start_run("sleep_long")
        h.wait_status(xid, ("running",) + FINAL)
        current["host"] = None
        os.kill(h.proc.pid, signal.SIGKILL)
        h.proc.wait(5)
        # The orphaned zygote sees its control socket close, kills its
        # workers and exits.
        left = wait_gone(h.dir, 3)
        h.kill_all()
        h.start()
        current["host"] = h
        x = h.wait_done(xid, timeout=10)
        expect_failed(x, "interrupted:")
        check(not left, "3 s after the host was killed, its zygote or "
              "workers still run: pids %r" % left)
    case("a run interrupted by SIGKILL of the host is failed: interrupted:",
         sigkill)
    stop(current)


def logs_clean(root):
    bad = []
    for h in hosts:
        for n in range(1, h.starts + 1):
            path = os.path.join(h.dir, "host-%d.log" % n)
            with open(path, errors="replace") as f:
                bad += ["%s: %s" % (os.path.relpath(path, root), l.strip())
                        for l in f if "malformed frame" in l]
    check(not bad, "%d line(s), first: %s" % (len(bad), bad[:1]))


def run_suite(prefix, cases, needs=()):
    """Runs cases(root) in a fresh temporary directory: checks that the
    binaries it needs exist, kills every host it started whatever happens,
    keeps the directory when something failed (or FERRY_TEST_KEEP=1), and
    prints the closing "N passed, M failed" line. Returns the exit status.
    Shared by the other serve-level tests."""
    for path in (FERRY,) + tuple(needs):
        if not os.path.exists(path):
            print("not ok - setup: %s does not exist" % path)
            print("0 passed, 1 failed")
            return 1
    signal.signal(signal.SIGTERM, lambda sig, frame: sys.exit(1))
    root = tempfile.mkdtemp(prefix=prefix)
    t0 = time.monotonic()
    try:
        try:
            cases(root)
        except Exception as e:  # a host that would not start
            why = str(e) if isinstance(e, Fail) else \
                "%s: %s" % (type(e).__name__, e)
            print("not ok - setup: %s" % why, flush=True)
            results["failed"] += 1
        stop(current)
    finally:
        for h in hosts:
            h.kill_all()
        if os.environ.get("FERRY_TEST_KEEP") == "1" or results["failed"]:
            print("# host logs and databases kept in " + root)
        else:
            shutil.rmtree(root, ignore_errors=True)
    print("# %.1f s" % (time.monotonic() - t0))
    print("%d passed, %d failed" % (results["passed"], results["failed"]))
    return 1 if results["failed"] else 0


def main():
    for path in (FERRY, os.path.join(FIXTURES, "chaos.so"),
                 os.path.join(FIXTURES_V2, "chaos.so")):
        if not os.path.exists(path):
            print("not ok - setup: %s does not exist" % path)
            print("0 passed, 1 failed")
            return 1
    # A SIGTERM (ctest's timeout, a CI runner) still kills every host.
    signal.signal(signal.SIGTERM, lambda sig, frame: sys.exit(1))
    root = tempfile.mkdtemp(prefix="ferry-serve-")
    t0 = time.monotonic()
    try:
        for part in (main_cases, new_component_cases, limit_cases,
                     shutdown_cases):
            try:
                part(root)
            except Exception as e:  # a host that would not start
                print("not ok - %s: %s" % (part.__name__, e), flush=True)
                results["failed"] += 1
            stop(current)
        case("no malformed frame from a worker in any host log",
             lambda: logs_clean(root))
    finally:
        for h in hosts:
            h.kill_all()
        if os.environ.get("FERRY_TEST_KEEP") == "1" or results["failed"]:
            print("# host logs and databases kept in " + root)
        else:
            shutil.rmtree(root, ignore_errors=True)
    print("# %.1f s" % (time.monotonic() - t0))
    if results["skipped"]:
        print("# %d skipped" % results["skipped"])
    print("%d passed, %d failed" % (results["passed"], results["failed"]))
    return 1 if results["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
