#!/usr/bin/env python3
"""Integration test of webhooks in `ferry serve`: a real host on a loopback
port, sent signed (and badly signed) requests at /webhooks/{instance}/{flow}
as a sender would, checked through the HTTP API.

Uses the Host helper of test_serve.py and its environment (FERRY_BIN,
FERRY_SERVE_FIXTURES, FERRY_SERVE_DEFS). Definitions:
webhooks.integration.json and webhooks.instance.json.

Prints "ok - NAME" or "not ok - NAME: why" per case, then "N passed, M
failed"; exits 1 if anything failed. Python 3 standard library only.
"""

import hashlib
import hmac
import http.client
import json
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_serve as ts  # noqa: E402
from test_serve import check, case  # noqa: E402

with open(os.path.join(ts.DEFS, "webhooks.integration.json")) as f:
    INTEGRATION = json.load(f)
with open(os.path.join(ts.DEFS, "webhooks.instance.json")) as f:
    INSTANCE_DOC = json.load(f)
INSTANCE = INSTANCE_DOC["name"]
SECRET = INSTANCE_DOC["config"]["webhook_secret"]
API_KEY = INSTANCE_DOC["config"]["api_key"]


class Raw:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = {k.lower(): v for k, v in headers}
        self.body = body
        self.text = body.decode("utf-8", "replace")
        try:
            self.json = json.loads(self.text)
        except ValueError:
            self.json = None

    def __repr__(self):
        return "HTTP %d %s" % (self.status, self.text[:300])


def hook(h, method, flow, body=b"", headers=None, query="",
         instance=INSTANCE, timeout=10):
    path = "/webhooks/%s/%s" % (instance, flow)
    if query:
        path += "?" + query
    c = http.client.HTTPConnection("127.0.0.1", h.port, timeout=timeout)
    try:
        c.request(method, path, body=body or None, headers=headers or {})
        r = c.getresponse()
        return Raw(r.status, r.getheaders(), r.read())
    finally:
        c.close()


def sign(body, prefix="sha256="):
    return prefix + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()


def count(h, flow):
    r = h.get("/api/v1/executions", query={"instance": INSTANCE,
                                           "flow": flow, "limit": 10000})
    check(r.status == 200 and isinstance(r.json, list), "list: %r" % r)
    return len(r.json)


def rejected(h):
    r = h.get("/metrics")
    check(r.status == 200, "/metrics: %r" % r)
    key = 'ferry_webhook_rejected_total{reason="mismatch"}'
    for line in r.text.splitlines():
        if line.startswith(key + " "):
            return float(line[len(key):])
    return 0.0


def cases(root):
    h = ts.Host(root, "hooks", limits={"timeout": "30s"})
    h.start()
    ts.current["host"] = h

    def deploy():
        r = h.deploy(integration=INTEGRATION, instance=INSTANCE_DOC)
        check(r.status == 201, "deploy answered %r" % r)
    case("deploy the webhook flows", deploy)

    def github_ok():
        body = json.dumps({"action": "opened", "number": 7}).encode()
        r = hook(h, "POST", "github", body, {
            "Content-Type": "application/json",
            "X-GitHub-Event": "pull_request",
            "X-Hub-Signature-256": sign(body)})
        check(r.status == 202 and r.json and r.json.get("id") and
              r.json.get("status") == "queued", "signed POST: %r" % r)
        x = h.wait_done(r.json["id"])
        check(x["status"] == "succeeded", "execution: %s" % x["status"])
        t = x.get("trigger") or {}
        check(t.get("type") == "webhook" and t.get("method") == "POST",
              "trigger: %r" % t)
        check(t.get("body") == {"action": "opened", "number": 7},
              "parsed body: %r" % t.get("body"))
        check(t.get("raw_body") == body.decode(), "raw_body: %r"
              % t.get("raw_body"))
        hd = t.get("headers") or {}
        check(hd.get("x-github-event") == "pull_request" and
              hd.get("content-type") == "application/json",
              "headers: %r" % hd)
        check(SECRET not in json.dumps(x), "the secret is in the execution")
        check(x.get("output") == {"action": "opened", "number": 7},
              "output: %r" % x.get("output"))
    case("github: a correct signature -> 202, the trigger has the parsed "
         "body and headers", github_ok)

    def github_bad():
        before, m0 = count(h, "github"), rejected(h)
        body = b'{"action": "opened"}'
        r = hook(h, "POST", "github", body, {
            "Content-Type": "application/json",
            "X-Hub-Signature-256": sign(b'{"action": "closed"}')})
        check(r.status == 401 and r.json and r.json.get("error"),
              "wrong signature: %r" % r)
        check(SECRET not in r.text, "the secret is in the answer")
        r = hook(h, "POST", "github", body,
                 {"Content-Type": "application/json"})
        check(r.status == 401, "no signature: %r" % r)
        time.sleep(0.2)
        check(count(h, "github") == before, "an execution was created")
        check(rejected(h) >= m0 + 1, "/metrics did not count the mismatch")
        with open(h.log_path, errors="replace") as f:
            log = f.read()
        check("webhook refused" in log, "the refusal is not logged")
        check(SECRET not in log, "the secret is in the log")
    case("github: a wrong signature -> 401, no execution, counted in "
         "/metrics", github_bad)

    def sync_echo():
        body = json.dumps({"hello": "world", "n": 3}).encode()
        r = hook(h, "POST", "echo", body, {
            "Content-Type": "application/json", "X-Signature": sign(body)})
        check(r.status == 200, "sync: %r" % r)
        check(r.json == {"echoed": {"hello": "world", "n": 3}},
              "sync output: %r" % r)
        r = hook(h, "POST", "echo", body, {
            "Content-Type": "application/json",
            "X-Signature": sign(body + b" ")})
        check(r.status == 401, "sync with a wrong signature: %r" % r)
    case("hmac sync: answered with the flow's output", sync_echo)

    def sync_timeout():
        t0 = time.monotonic()
        r = hook(h, "POST", "slow", b"{}", {"Content-Type": "application/json"})
        took = time.monotonic() - t0
        check(r.status == 202 and r.json and r.json.get("execution_id"),
              "past the deadline: %r" % r)
        check(took < 1.4, "the 300 ms deadline took %.1f s" % took)
        x = h.wait_done(r.json["id"])
        check(x["status"] == "succeeded", "the execution went on: %s"
              % x["status"])

    def sync_failed():
        r = hook(h, "POST", "failing", b"{}",
                 {"Content-Type": "application/json"})
        check(r.status == 500 and r.json and r.json.get("error") and
              r.json.get("status") == "failed", "a failed sync flow: %r" % r)
    case("sync, the flow fails: 500 with the error", sync_failed)

    case("sync past its timeout: 202 with the execution id, it goes on",
         sync_timeout)

    def slack():
        before = count(h, "slack")
        body = json.dumps({"type": "url_verification",
                           "challenge": "chal-3f9"}).encode()
        ts_ = str(int(time.time()))
        sig = "v0=" + hmac.new(SECRET.encode(),
                               b"v0:" + ts_.encode() + b":" + body,
                               hashlib.sha256).hexdigest()
        r = hook(h, "POST", "slack", body, {
            "Content-Type": "application/json",
            "X-Slack-Request-Timestamp": ts_, "X-Slack-Signature": sig})
        check(r.status == 200 and r.json == {"challenge": "chal-3f9"},
              "url_verification: %r" % r)
        old = str(int(time.time()) - 3600)
        sig = "v0=" + hmac.new(SECRET.encode(),
                               b"v0:" + old.encode() + b":" + body,
                               hashlib.sha256).hexdigest()
        r = hook(h, "POST", "slack", body, {
            "Content-Type": "application/json",
            "X-Slack-Request-Timestamp": old, "X-Slack-Signature": sig})
        check(r.status == 401, "an hour-old timestamp: %r" % r)
        time.sleep(0.2)
        check(count(h, "slack") == before, "a handshake created an execution")
    case("slack: url_verification answered, no execution", slack)

    def dropbox():
        before = count(h, "dropbox")
        r = hook(h, "GET", "dropbox", query="challenge=abc%20123")
        check(r.status == 200 and r.body == b"abc 123",
              "challenge: %r" % r)
        check(r.headers.get("content-type", "").startswith("text/plain"),
              "content type %r" % r.headers.get("content-type"))
        check(r.headers.get("x-content-type-options") == "nosniff",
              "X-Content-Type-Options %r"
              % r.headers.get("x-content-type-options"))
        body = b'{"list_folder": {"accounts": ["dbid:1"]}}'
        r = hook(h, "POST", "dropbox", body, {
            "Content-Type": "application/json",
            "X-Dropbox-Signature": sign(body, prefix="")})
        check(r.status == 202, "signed notification: %r" % r)
        time.sleep(0.2)
        check(count(h, "dropbox") == before + 1, "executions: %d, not %d"
              % (count(h, "dropbox"), before + 1))
    case("dropbox: the GET challenge echoed as text/plain, nosniff", dropbox)

    def api_key():
        r = hook(h, "POST", "keyed", b'{"k": 1}', {
            "Content-Type": "application/json", "X-Api-Key": API_KEY})
        check(r.status == 202, "with the key: %r" % r)
        x = h.wait_done(r.json["id"])
        hd = (x.get("trigger") or {}).get("headers") or {}
        check("x-api-key" not in hd and API_KEY not in json.dumps(x),
              "the key is in the execution: %r" % hd)
        r = hook(h, "POST", "keyed", b'{"k": 1}', {
            "Content-Type": "application/json", "X-Api-Key": "nope"})
        check(r.status == 401, "with a wrong key: %r" % r)
    case("api_key: accepted, and the key left out of the trigger", api_key)

    def errors():
        r = hook(h, "GET", "github")
        check(r.status == 405, "GET on a POST-only flow: %r" % r)
        r = hook(h, "POST", "github", b"{}", instance="nobody")
        check(r.status == 404, "unknown instance: %r" % r)
        r = hook(h, "POST", "nope", b"{}")
        check(r.status == 404, "unknown flow: %r" % r)
        r = hook(h, "POST", "manual", b"{}")
        check(r.status == 404, "a manual flow: %r" % r)
    case("404 for unknown instance, flow or non-webhook flow; 405 for a "
         "method", errors)

    def limits():
        before = count(h, "limited")
        r = hook(h, "POST", "limited", b'{"pad": "' + b"x" * 2048 + b'"}',
                 {"Content-Type": "application/json"})
        check(r.status == 413 and r.json and r.json.get("error"),
              "a 2 KiB body on a 1 KiB webhook: %r" % r)
        r = hook(h, "POST", "limited", b"a=1",
                 {"Content-Type": "application/x-www-form-urlencoded"})
        check(r.status == 415 and r.json and r.json.get("error"),
              "a form body on a JSON-only webhook: %r" % r)
        r = hook(h, "POST", "limited", b"{}", {"Content-Type": "text/plain"})
        check(r.status == 415, "text/plain: %r" % r)
        time.sleep(0.2)
        check(count(h, "limited") == before, "a refused request ran")
        r = hook(h, "POST", "limited", b'{"ok": 1}',
                 {"Content-Type": "Application/JSON; charset=utf-8"})
        check(r.status == 202, "JSON with a charset, in capitals: %r" % r)
        r = hook(h, "POST", "limited", b'{"ok": 2}',
                 {"Content-Type": "application/vnd.acme+json"})
        check(r.status == 202, "a listed vendor type: %r" % r)
        r = hook(h, "POST", "limited", b'{"pad": "' + b"x" * 900 + b'"}',
                 {"Content-Type": "application/json"})
        check(r.status == 202, "a body under the limit: %r" % r)
        time.sleep(0.2)
        check(count(h, "limited") == before + 3, "executions: %d, not %d"
              % (count(h, "limited"), before + 3))
    case("limits: a body over max_body -> 413, another content type -> "
         "415, no execution", limits)

    def dedupe_header():
        before = count(h, "deduped")
        hd = {"Content-Type": "application/json", "webhook-id": "msg_2f9a"}
        r1 = hook(h, "POST", "deduped", b'{"n": 1}', hd)
        check(r1.status == 202 and r1.json and r1.json.get("execution_id"),
              "first: %r" % r1)
        check(not r1.json.get("duplicate"), "first marked duplicate: %r" % r1)
        r2 = hook(h, "POST", "deduped", b'{"n": 2}', hd)
        check(r2.status == 202 and r2.json and
              r2.json.get("execution_id") == r1.json["execution_id"] and
              r2.json.get("duplicate") is True,
              "the same webhook-id again: %r (first %r)" % (r2, r1))
        r3 = hook(h, "POST", "deduped", b'{"n": 3}', {
            "Content-Type": "application/json", "webhook-id": "msg_other"})
        check(r3.status == 202 and
              r3.json.get("execution_id") != r1.json["execution_id"],
              "another webhook-id: %r" % r3)
        r4 = hook(h, "POST", "deduped", b'{"n": 4}',
                  {"Content-Type": "application/json"})
        check(r4.status == 202 and not r4.json.get("duplicate"),
              "no webhook-id: %r" % r4)
        x = h.wait_done(r1.json["id"])
        check((x.get("trigger") or {}).get("body") == {"n": 1},
              "the first request ran: %r" % x.get("trigger"))
        time.sleep(0.2)
        check(count(h, "deduped") == before + 3, "executions: %d, not %d"
              % (count(h, "deduped"), before + 3))
    case("dedupe: the same webhook-id twice -> one execution, both answers "
         "carry its id", dedupe_header)

    def dedupe_body():
        before = count(h, "deduped_body")
        body = json.dumps({"event": {"id": "Ev0PV52PS2"}}).encode()
        hd = {"Content-Type": "application/json"}
        r1 = hook(h, "POST", "deduped_body", body, hd)
        r2 = hook(h, "POST", "deduped_body", body, hd)
        check(r1.status == 202 and r2.status == 202 and
              r2.json.get("execution_id") == r1.json.get("execution_id") and
              r2.json.get("duplicate") is True,
              "the same event.id twice: %r, %r" % (r1, r2))
        time.sleep(0.2)
        check(count(h, "deduped_body") == before + 1, "executions: %d, not %d"
              % (count(h, "deduped_body"), before + 1))
    case("dedupe: a body path as the key", dedupe_body)

    def respond():
        r = hook(h, "POST", "responder", b'{"name": "widget"}',
                 {"Content-Type": "application/json"})
        check(r.status == 201 and r.body == b"created widget",
              "core.respond: %r" % r)
        check(r.headers.get("content-type", "").startswith("text/plain"),
              "content type %r" % r.headers.get("content-type"))
        check(r.headers.get("location") == "/widgets/widget",
              "Location %r" % r.headers.get("location"))
        check(r.headers.get("content-length") == str(len(r.body)),
              "a managed header was overridden: Content-Length %r"
              % r.headers.get("content-length"))
    case("sync: a flow ending in core.respond answers with its status, "
         "content type, headers and body", respond)

    def metrics():
        r = h.get("/metrics")
        check('ferry_webhook_rejected_total{reason="mismatch"}' in r.text,
              "no rejection counter: %s" % r.text[-500:])
        check('ferry_webhook_rejected_total{reason="missing"}' in r.text,
              "no missing counter")
    case("/metrics counts rejections by reason", metrics)

    def rotate_secret():
        # The verifier a flow's first request made is kept with the
        # deployment; a redeploy with another secret must replace it.
        body = json.dumps({"action": "opened", "number": 8}).encode()
        old = sign(body)
        r = hook(h, "POST", "github", body, {
            "Content-Type": "application/json", "X-Hub-Signature-256": old})
        check(r.status == 202, "with the first secret: %r" % r)
        doc = json.loads(json.dumps(INSTANCE_DOC))
        doc["config"]["webhook_secret"] = SECRET + "-rotated"
        d = h.deploy(integration=INTEGRATION, instance=doc)
        check(d.status in (200, 201), "redeploy answered %r" % d)
        r = hook(h, "POST", "github", body, {
            "Content-Type": "application/json", "X-Hub-Signature-256": old})
        check(r.status == 401, "the old secret after the redeploy: %r" % r)
        new = "sha256=" + hmac.new((SECRET + "-rotated").encode(), body,
                                   hashlib.sha256).hexdigest()
        r = hook(h, "POST", "github", body, {
            "Content-Type": "application/json", "X-Hub-Signature-256": new})
        check(r.status == 202, "the new secret after the redeploy: %r" % r)
        d = h.deploy(integration=INTEGRATION, instance=INSTANCE_DOC)
        check(d.status in (200, 201), "deploy back answered %r" % d)
        r = hook(h, "POST", "github", body, {
            "Content-Type": "application/json", "X-Hub-Signature-256": old})
        check(r.status == 202, "the first secret deployed again: %r" % r)
    case("a redeploy with another secret: the old one is refused, the new "
         "one accepted", rotate_secret)

    def stop():
        ts.current["host"] = None
        h.signal(signal.SIGTERM)
        rc = h.wait_exit(10)
        check(rc == 0, "exit status %r after SIGTERM: %s" % (rc, h.log_tail()))
    case("the host stops on SIGTERM with status 0", stop)


def main():
    return ts.run_suite("ferry-webhooks-", cases, (os.path.join(ts.FIXTURES, "chaos.so"),))


if __name__ == "__main__":
    sys.exit(main())
