#!/usr/bin/env python3
"""Slack's Events API received by `ferry serve`: a webhook flow declared as
docs/slack.md says (verify scheme "slack" with the signing secret from the
instance's config, async answers, dedupe on the body's event_id), sent
requests as Slack sends them, signed by this test per protocols.md 1.1
(the signer is checked first against Slack's published example). The flow
replies in the event's thread with slack.post_message, against the fake
Slack (tests/fixtures/slack/fake_slack.py).

Uses the Host helper of tests/serve/test_serve.py (FERRY_SERVE_DEFS names
that directory). Environment, set by CMakeLists.txt: FERRY_BIN, SLACK_SO,
FAKE_SLACK, FERRY_SERVE_DEFS, FERRY_SANITIZED.

Prints "ok - NAME" or "not ok - NAME: why" per case, then "N passed, M
failed"; exits 1 if anything failed. Python 3 standard library only.
"""

import http.client
import json
import os
import shutil
import signal
import sys
import time
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.environ.get("FERRY_SERVE_DEFS",
                                  os.path.join(HERE, "..", "serve")))
import slacktest  # noqa: E402
from slacktest import slack_signature  # noqa: E402
import test_serve as ts  # noqa: E402
from test_serve import check, case  # noqa: E402

SLACK_SO = os.environ.get("SLACK_SO", "build/components/slack.so")
SECRET = "fake-signing-secret-" + os.urandom(6).hex()
INSTANCE = "acme"

INTEGRATION = {
    "name": "slack-events",
    "version": "1.0.0",
    "config": {"slack_signing_secret": {"type": "string", "required": True,
                                        "secret": True}},
    "connections": {"slack": {"type": "slack.bot"}},
    "flows": [{
        "name": "events",
        "trigger": {
            "type": "webhook",
            "verify": {"scheme": "slack",
                       "secret": "{{ config.slack_signing_secret }}"},
            "response": "async",
            "content_types": ["application/json"],
            "dedupe": {"body": "event_id"},
            "dedupe_window": "1h"},
        "steps": [{
            "name": "reply", "action": "slack.post_message",
            "connection": "slack",
            "input": {"channel": "{{ trigger.body.event.channel }}",
                      "thread_ts": "{{ trigger.body.event.ts }}",
                      "text": "seen: {{ trigger.body.event.text }}"}}]}]}


def instance(fake):
    return {"integration": "slack-events", "name": INSTANCE,
            "config": {"slack_signing_secret": SECRET},
            "connections": {"slack": {"fields": {
                "token": "xoxb-fake-bot", "api_url": fake.api_url}}}}


class Raw:
    def __init__(self, status, headers, body, seconds):
        self.status = status
        self.headers = {k.lower(): v for k, v in headers}
        self.text = body.decode("utf-8", "replace")
        self.seconds = seconds
        try:
            self.json = json.loads(self.text)
        except ValueError:
            self.json = None

    def __repr__(self):
        return "HTTP %d %s" % (self.status, self.text[:300])


def deliver(h, body, ts_=None, secret=SECRET, sig=None, headers=None):
    """POSTs body (bytes) to the events flow as Slack does: JSON, signed
    with the timestamp ts_ (now by default)."""
    ts_ = ts_ if ts_ is not None else str(int(time.time()))
    hd = {"Content-Type": "application/json",
          "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
          "X-Slack-Request-Timestamp": ts_,
          "X-Slack-Signature": sig or slack_signature(secret, ts_, body)}
    hd.update(headers or {})
    hd = {k: v for k, v in hd.items() if v is not None}
    c = http.client.HTTPConnection("127.0.0.1", h.port, timeout=10)
    t0 = time.monotonic()
    try:
        c.request("POST", "/webhooks/%s/events" % INSTANCE, body=body,
                  headers=hd)
        r = c.getresponse()
        return Raw(r.status, r.getheaders(), r.read(), time.monotonic() - t0)
    finally:
        c.close()


def event(event_id, text, ts_="1700000000.000100", channel="C00000001"):
    return json.dumps({
        "token": "legacy-verification-token", "team_id": "T0FAKE",
        "api_app_id": "A0FAKEAPP", "type": "event_callback",
        "event": {"type": "app_mention", "user": "U0FAKEUSER", "text": text,
                  "ts": ts_, "channel": channel, "event_ts": ts_},
        "event_id": event_id, "event_time": int(time.time()),
        "authorizations": [{"team_id": "T0FAKE", "user_id": "U0FAKEBOT",
                            "is_bot": True}],
        "is_ext_shared_channel": False,
        "event_context": "4-fake"}, separators=(",", ":")).encode()


def executions(h):
    r = h.get("/api/v1/executions", query={"instance": INSTANCE,
                                           "flow": "events", "limit": 1000})
    check(r.status == 200 and isinstance(r.json, list), "list: %r" % r)
    return r.json


def replies(fake, thread_ts):
    return [m for m in fake.messages()
            if m["message"].get("thread_ts") == thread_ts]


def signer():
    """protocols.md 1.1: Slack's published example, byte for byte."""
    body = (b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain="
            b"testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id="
            b"U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text="
            b"&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2F"
            b"T1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id="
            b"398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c")
    got = slack_signature("8f742231b10e8888abcd99yyyzzz85a5", "1531420618",
                          body)
    check(got == "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666"
          "489c69b503", "the test's signer gives %s" % got)


def cases(root):
    case("the test's signer reproduces Slack's published signature",
         signer)
    fake = slacktest.FakeSlack()
    try:
        run_cases(root, fake)
    finally:
        fake.stop()


def run_cases(root, fake):
    comps = os.path.join(root, "components")
    os.makedirs(comps)
    shutil.copyfile(SLACK_SO, os.path.join(comps, "slack.so"))
    h = ts.Host(root, "slack", limits={"timeout": "30s"}, components=comps)
    h.start()
    ts.current["host"] = h
    first = {}

    def deploy():
        r = h.deploy(integration=INTEGRATION, instance=instance(fake))
        check(r.status == 201, "deploy: %r" % r)
    case("deploy the events flow (webhook, verify slack, async, dedupe on "
         "event_id)", deploy)

    def challenge():
        body = json.dumps({"token": "legacy", "challenge": "3eZbrw1aBm2rZgRN",
                           "type": "url_verification"}).encode()
        r = deliver(h, body)
        check(r.status == 200 and r.json == {"challenge": "3eZbrw1aBm2rZgRN"},
              "url_verification: %r" % r)
        check(r.headers.get("content-type", "").startswith("application/json"),
              "content type: %r" % r.headers)
        r = deliver(h, body, secret="not-the-secret")
        check(r.status == 401 and "3eZbrw1aBm2rZgRN" not in r.text,
              "a badly signed url_verification: %r" % r)
        time.sleep(0.3)
        check(executions(h) == [], "a handshake ran the flow")
        check(fake.requests() == [], "a handshake reached Slack")
    case("url_verification: answered with the challenge (and only when "
         "signed), no execution", challenge)

    def valid():
        body = event("Ev0001AAAA", "<@U0FAKEBOT> hello", "1700000001.000100")
        r = deliver(h, body)
        check(r.status == 202 and r.json and r.json.get("id") and
              not r.json.get("duplicate"), "a signed event: %r" % r)
        check(r.seconds < 3, "answered in %.1f s" % r.seconds)
        first["id"] = r.json["id"]
        x = h.wait_done(r.json["id"])
        check(x["status"] == "succeeded", "execution: %s %s" %
              (x["status"], x.get("error_message")))
        t = x.get("trigger") or {}
        check(t.get("body", {}).get("event_id") == "Ev0001AAAA" and
              t.get("raw_body") == body.decode(), "trigger: %r" % t)
        hd = t.get("headers") or {}
        check(hd.get("x-slack-request-timestamp") and
              hd.get("x-slack-signature"), "headers: %r" % hd)
        m = replies(fake, "1700000001.000100")
        check(len(m) == 1 and m[0]["channel"] == "C00000001" and
              m[0]["message"]["text"] == "seen: <@U0FAKEBOT> hello",
              "the reply: %r" % m)
        check(SECRET not in json.dumps(x), "the signing secret is in the "
              "execution")
    case("an event_callback with a valid signature: 202 at once, the flow "
         "replies in the thread", valid)

    def retry():
        before = len(executions(h))
        body = event("Ev0001AAAA", "<@U0FAKEBOT> hello", "1700000001.000100")
        r = deliver(h, body, headers={"X-Slack-Retry-Num": "1",
                                      "X-Slack-Retry-Reason": "http_timeout"})
        check(r.status == 202 and r.json and r.json.get("duplicate") is True
              and r.json.get("id") == first["id"],
              "the retry: %r (first %s)" % (r, first["id"]))
        time.sleep(0.5)
        check(len(executions(h)) == before, "the retry ran the flow again")
        check(len(replies(fake, "1700000001.000100")) == 1,
              "the reply was posted twice")
    case("a retry (X-Slack-Retry-Num: 1, re-signed) of an accepted event: "
         "202 duplicate with the first execution's id, nothing runs", retry)

    def slow():
        # The flow takes 4 s (Slack is slow); the answer must not wait, and
        # a retry that comes while it still runs is a duplicate too.
        fake.inject("chat.postMessage", delay_ms=4000)
        body = event("Ev0002BBBB", "slow one", "1700000002.000100")
        r = deliver(h, body)
        check(r.status == 202 and r.seconds < 3,
              "answered %r in %.1f s" % (r, r.seconds))
        r2 = deliver(h, body, headers={"X-Slack-Retry-Num": "1",
                                       "X-Slack-Retry-Reason": "http_timeout"})
        check(r2.status == 202 and r2.json.get("duplicate") is True and
              r2.json.get("id") == r.json["id"], "the retry: %r" % r2)
        x = h.wait_done(r.json["id"])
        check(x["status"] == "succeeded", "execution: %r" % x.get("status"))
        check(len(replies(fake, "1700000002.000100")) == 1, "replies: %r" %
              replies(fake, "1700000002.000100"))
    case("async: a flow that takes 4 s is acknowledged within Slack's 3 s; "
         "a retry while it runs is a duplicate", slow)

    def others():
        before = len(executions(h))
        body = event("Ev0003CCCC", "another", "1700000003.000100")
        r = deliver(h, body, headers={"X-Slack-Retry-Num": "2",
                                      "X-Slack-Retry-Reason": "http_error"})
        check(r.status == 202 and not r.json.get("duplicate"),
              "a first delivery that says retry: %r" % r)
        x = h.wait_done(r.json["id"])
        check(len(executions(h)) == before + 1, "not run")
        hd = (x.get("trigger") or {}).get("headers") or {}
        check(hd.get("x-slack-retry-num") == "2" and
              hd.get("x-slack-retry-reason") == "http_error",
              "the retry headers in the trigger: %r" % hd)
    case("a delivery with a new event_id runs, retry header or not", others)

    def refused():
        before = len(executions(h))
        body = event("Ev0004DDDD", "transfer 10 EUR", "1700000004.000100")
        ts_ = str(int(time.time()))
        sig = slack_signature(SECRET, ts_, body)
        tampered = body.replace(b"10 EUR", b"99 EUR")
        r = deliver(h, tampered, ts_=ts_, sig=sig)
        check(r.status == 401 and r.json and
              "mismatch" in (r.json.get("error") or ""),
              "a tampered body: %r" % r)
        old = str(int(time.time()) - 600)
        r = deliver(h, body, ts_=old)
        check(r.status == 401 and "too old" in (r.json.get("error") or ""),
              "a 10-minute-old timestamp: %r" % r)
        future = str(int(time.time()) + 600)
        r = deliver(h, body, ts_=future)
        check(r.status == 401 and "future" in (r.json.get("error") or ""),
              "a timestamp 10 minutes ahead: %r" % r)
        r = deliver(h, body, headers={"X-Slack-Signature": None})
        check(r.status == 401, "no signature: %r" % r)
        r = deliver(h, body, secret="an-old-secret")
        check(r.status == 401, "another secret: %r" % r)
        time.sleep(0.3)
        check(len(executions(h)) == before, "a refused request ran")
        check(replies(fake, "1700000004.000100") == [], "a refused request "
              "reached Slack")
        # Refused, so not remembered: the genuine delivery still runs.
        r = deliver(h, body)
        check(r.status == 202 and not r.json.get("duplicate"),
              "the genuine one after refusals: %r" % r)
        h.wait_done(r.json["id"])
        with open(h.log_path, errors="replace") as f:
            log = f.read()
        check(SECRET not in log, "the signing secret is in the host's log")
    case("refused with 401 and nothing run: a tampered body, a stale and a "
         "future timestamp, no signature, another secret", refused)

    def install():
        inst = "acme-oauth"
        ig = {"name": "slack-install", "version": "1.0.0",
              "connections": {"slack": {"type": "slack.oauth2"}},
              "flows": [{"name": "post", "trigger": {"type": "manual"},
                         "steps": [{"name": "say",
                                    "action": "slack.post_message",
                                    "connection": "slack",
                                    "input": {"channel": "C00000002",
                                              "text": "installed"}}]}]}
        fields = {"client_id": "fake-client", "client_secret": "fake-secret",
                  "scopes": "chat:write,channels:read",
                  "authorize_url": fake.base + "/oauth/v2/authorize",
                  "token_url": fake.api_url + "/oauth.v2.access",
                  "api_url": fake.api_url}
        r = h.deploy(integration=ig, instance={
            "integration": "slack-install", "name": inst,
            "connections": {"slack": {"fields": fields}}})
        check(r.status == 201, "deploy: %r" % r)

        def post():
            r = h.request("POST", "/api/v1/instances/%s/flows/post/executions"
                          % inst, {})
            check(r.status == 202, "start: %r" % r)
            return h.wait_done(r.json["id"])
        x = post()
        check(x["status"] == "failed" and "/oauth/authorize/%s/slack" % inst
              in ts.message(x), "before installing: %s %r" %
              (x["status"], ts.message(x)))
        # The operator's browser: the host, Slack's page, the callback.
        c = http.client.HTTPConnection("127.0.0.1", h.port, timeout=10)
        c.request("GET", "/oauth/authorize/%s/slack" % inst,
                  headers={"Authorization": "Bearer " + ts.TOKEN})
        resp = c.getresponse()
        loc = resp.getheader("Location")
        c.close()
        check(resp.status == 302 and loc and
              loc.startswith(fake.base + "/oauth/v2/authorize?"),
              "authorize: %d %s" % (resp.status, loc))
        q = urllib.parse.parse_qs(urllib.parse.urlsplit(loc).query)
        check(q.get("client_id") == ["fake-client"] and
              q.get("scope") == ["chat:write,channels:read"] and
              q.get("redirect_uri") ==
              ["http://127.0.0.1:%d/oauth/callback" % h.port],
              "the authorize URL: %s" % loc)
        with urllib.request.urlopen(loc, timeout=10) as resp:
            text = resp.read().decode()
        check("is authorised" in text, "the callback answered %r" % text)
        tok = fake.requests("/api/oauth.v2.access")
        check(len(tok) == 1 and tok[0]["args"].get("grant_type") ==
              "authorization_code" and tok[0]["answer"].get("ok") is True,
              "the code exchange: %r" % tok)
        access = tok[0]["answer"]["access_token"]
        x = post()
        check(x["status"] == "succeeded", "after installing: %s %r" %
              (x["status"], ts.message(x)))
        sent = fake.requests("/api/chat.postMessage")[-1]
        check(sent["headers"].get("authorization") == "Bearer " + access,
              "chat.postMessage carried %r" %
              sent["headers"].get("authorization"))
        for secret in ("fake-secret", access):
            check(secret not in json.dumps(x), "%r is in the execution" %
                  secret)
    case("slack.oauth2 installed through the host (/oauth/authorize, "
         "Slack's authorize page, /oauth/callback, oauth.v2.access), then "
         "used by slack.post_message", install)

    def clean_stop():
        ts.current["host"] = None
        h.signal(signal.SIGTERM)
        rc = h.wait_exit(15)
        check(rc == 0, "exit status %r after SIGTERM: %s" %
              (rc, h.log_tail()))
        with open(h.log_path, errors="replace") as f:
            bad = [line.strip() for line in f
                   if "Sanitizer" in line or "runtime error:" in line]
        check(not bad, "the host's log has sanitizer reports: %s" % bad[:3])
    case("the host stops cleanly; no sanitizer report from it or its "
         "workers", clean_stop)


def main():
    return ts.run_suite("ferry-slack-events-", cases,
                        (SLACK_SO, slacktest.FAKE))


if __name__ == "__main__":
    sys.exit(main())
