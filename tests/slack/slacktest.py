"""Helpers shared by the slack tests: the fake Slack as a child process,
case bookkeeping, and Slack's request signature (protocols.md 1.1).

Python 3 standard library only.
"""

import hashlib
import hmac
import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

FAKE = os.environ.get("FAKE_SLACK", os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "slack",
    "fake_slack.py"))


class Fail(Exception):
    pass


def check(cond, why):
    if not cond:
        raise Fail(why)


# ---- results ----

results = {"passed": 0, "failed": 0, "gaps": 0}


def case(name, fn):
    """Runs one case; a failure never stops the others."""
    try:
        fn()
        print("ok - " + name, flush=True)
        results["passed"] += 1
    except Exception as e:
        why = str(e) if isinstance(e, Fail) else "%s: %s" % (
            type(e).__name__, e)
        print("not ok - %s: %s" % (name, why.replace("\n", "\n# ")),
              flush=True)
        results["failed"] += 1


def gap(name, fn):
    """A behaviour the host does not have yet. Its failure is reported as
    a TAP TODO (it does not fail the test); once it passes, it says so, so
    that it can become a plain case."""
    try:
        fn()
        print("ok - %s # TODO passes now: make it a plain case" % name,
              flush=True)
    except Exception as e:
        why = str(e) if isinstance(e, Fail) else "%s: %s" % (
            type(e).__name__, e)
        print("not ok - %s # TODO host gap: %s" % (name,
                                                  why.replace("\n", " ")),
              flush=True)
        results["gaps"] += 1


def summary(t0):
    print("# %.1f s" % (time.monotonic() - t0))
    print("%d passed, %d failed, %d known gaps" % (
        results["passed"], results["failed"], results["gaps"]))
    return 1 if results["failed"] else 0


# ---- Slack's signature ----

def slack_signature(secret, timestamp, body):
    """X-Slack-Signature for body (bytes) sent at timestamp (a string of
    Unix seconds): v0= and the hex HMAC-SHA256 of "v0:ts:body"."""
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


# ---- the fake ----

class FakeSlack:
    """tests/fixtures/slack/fake_slack.py as a child process. Its stdin is
    a pipe held here: closing it (stop, or this process dying) ends it."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="ferry-fake-slack-")
        port_file = os.path.join(self.dir, "port")
        self.log = open(os.path.join(self.dir, "fake.log"), "wb")
        self.proc = subprocess.Popen(
            [sys.executable, FAKE, "--port-file", port_file],
            stdin=subprocess.PIPE, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 15
        while True:
            if self.proc.poll() is not None:
                raise Fail("the fake Slack exited with %s" %
                           self.proc.returncode)
            try:
                with open(port_file) as f:
                    text = f.read()
                if text.endswith("\n"):
                    self.port = int(text)
                    break
            except (OSError, ValueError):
                pass
            if time.monotonic() > deadline:
                raise Fail("the fake Slack wrote no port file in 15 s")
            time.sleep(0.02)
        self.base = "http://127.0.0.1:%d" % self.port
        self.api_url = self.base + "/api"

    def call(self, method, path, body=None):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            data = json.dumps(body).encode() if body is not None else None
            c.request(method, path, body=data,
                      headers={"Content-Type": "application/json"}
                      if data else {})
            r = c.getresponse()
            return json.loads(r.read() or b"null")
        finally:
            c.close()

    def reset(self, **cfg):
        self.call("POST", "/_fake/reset", cfg)

    def inject(self, method, **kw):
        kw["method"] = method
        self.call("POST", "/_fake/inject", kw)

    def requests(self, path=None):
        rs = self.call("GET", "/_fake/requests")
        return [r for r in rs if path is None or r["path"] == path]

    def messages(self):
        return self.call("GET", "/_fake/messages")

    def files(self):
        return self.call("GET", "/_fake/files")

    def stop(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
                self.proc.wait(5)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait(5)
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)
