#!/usr/bin/env python3
"""The slack component through the real engine: `ferry run` of flows whose
steps call slack.* actions, with a components directory holding slack.so
(and http.so, to make blobs), an instance with the connection, and the
fake Slack (tests/fixtures/slack/fake_slack.py) as the API. Each case
looks at what a user would: the output, the recorded execution (`ferry
executions show --json`: error code, message, retryable, logs), and what
the fake received.

Environment (set by CMakeLists.txt):
  FERRY_BIN   the ferry binary
  SLACK_SO    slack.so as built
  HTTP_SO     http.so as built
  FAKE_SLACK  the fake's script
  FERRY_TEST_KEEP=1  keep the temporary directory

Prints "ok - NAME" or "not ok - NAME: why" per case, then a count; exits 1
if anything failed. Python 3 standard library only.
"""

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import slacktest as st  # noqa: E402
from slacktest import check, case, gap, Fail  # noqa: E402

FERRY = os.environ.get("FERRY_BIN", "build/ferry")
SLACK_SO = os.environ.get("SLACK_SO", "build/components/slack.so")
HTTP_SO = os.environ.get("HTTP_SO", "build/components/http.so")

BOT = "xoxb-fake-bot"
HOOK_OK = "/services/T0FAKE/B0GENERAL/hooksecret1"


class Run:
    """One `ferry run`: rc, output (stdout JSON or None), x (the recorded
    execution), err (stderr), seconds."""

    def __init__(self, rc, out, x, err, seconds):
        self.rc, self.out, self.x, self.err = rc, out, x, err
        self.seconds = seconds

    @property
    def status(self):
        return self.x.get("status") if self.x else None

    def step(self, name="r"):
        for s in (self.x or {}).get("steps", []):
            if s["name"] == name:
                return s
        raise Fail("no recorded step %s: %s" % (name, self.err[-800:]))

    def logs(self):
        return [entry["message"] for entry in (self.x or {}).get("logs", [])]

    def __repr__(self):
        return "rc %d, status %s, error %s: %s" % (
            self.rc, self.status, self.x.get("error_code") if self.x else "-",
            (self.x or {}).get("error_message") or self.err[-500:])


class Engine:
    def __init__(self, root, fake):
        self.root = root
        self.fake = fake
        self.comps = os.path.join(root, "comps")
        os.makedirs(self.comps)
        os.symlink(os.path.abspath(SLACK_SO),
                   os.path.join(self.comps, "slack.so"))
        os.symlink(os.path.abspath(HTTP_SO),
                   os.path.join(self.comps, "http.so"))
        self.n = 0

    def ferry(self, *argv, proc=False):
        env = dict(os.environ)
        env.pop("FERRY_DB", None)
        env.pop("FERRY_COMPONENTS_DIR", None)
        args = [FERRY] + list(argv)
        if proc:
            return subprocess.Popen(args, cwd=self.root, env=env,
                                    stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE)
        return subprocess.run(args, cwd=self.root, env=env,
                              capture_output=True, timeout=120)

    def run(self, steps, conn_type=None, fields=None, interrupt_when=None):
        """Runs one flow of steps (a list, or one step dict) with, when
        conn_type is given, a connection "slack" of that type and fields.
        interrupt_when: a function; once it returns true the run gets
        SIGINT, and seconds counts from then."""
        self.n += 1
        if isinstance(steps, dict):
            steps = [steps]
        ig = {"name": "slack-test", "version": "1.0.0",
              "flows": [{"name": "main", "trigger": {"type": "manual"},
                         "steps": steps}]}
        inst = {"integration": "slack-test", "name": "i%d" % self.n}
        if conn_type:
            ig["connections"] = {"slack": {"type": conn_type}}
            inst["connections"] = {"slack": {"fields": fields}}
        igf = os.path.join(self.root, "ig-%d.json" % self.n)
        inf = os.path.join(self.root, "in-%d.json" % self.n)
        db = os.path.join(self.root, "run-%d.db" % self.n)
        with open(igf, "w") as f:
            json.dump(ig, f)
        with open(inf, "w") as f:
            json.dump(inst, f)
        t0 = time.monotonic()
        argv = ["run", igf, "--instance", inf, "--components-dir",
                self.comps, "--db", db]
        if interrupt_when is None:
            p = self.ferry(*argv)
            rc, out, err = p.returncode, p.stdout, p.stderr
        else:
            p = self.ferry(*argv, proc=True)
            deadline = time.monotonic() + 30
            while not interrupt_when() and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(0.3)
            t0 = time.monotonic()
            p.send_signal(signal.SIGINT)
            out, err = p.communicate(timeout=60)
            rc = p.returncode
        seconds = time.monotonic() - t0
        err = err.decode("utf-8", "replace")
        for bad in ("Sanitizer", "runtime error:"):
            check(bad not in err, "the sanitizers reported:\n" + err[-3000:])
        try:
            out = json.loads(out) if out.strip() else None
        except ValueError:
            out = None
        x = None
        p = self.ferry("executions", "list", "--db", db, "--json")
        lst = json.loads(p.stdout or b"[]") if p.returncode == 0 else []
        if lst:
            p = self.ferry("executions", "show", lst[0]["id"], "--db", db,
                           "--json")
            check(p.returncode == 0, "executions show: %s" % p.stderr)
            x = json.loads(p.stdout)
        return Run(rc, out, x, err, seconds)


def bot(fake, token=BOT):
    return {"token": token, "api_url": fake.api_url}


def step(action, input, name="r", connection="slack"):
    s = {"name": name, "action": action, "input": input}
    if connection:
        s["connection"] = connection
    return s


def expect_ok(r):
    check(r.rc == 0 and r.status == "succeeded", "expected success: %r" % r)


def expect_fail(r, code, retryable, *words, name="r"):
    check(r.rc == 1 and r.status == "failed", "expected a failure: %r" % r)
    s = r.step(name)
    check(s.get("error_code") == code, "error code %s, not %s: %r" %
          (s.get("error_code"), code, r))
    check(s.get("retryable") is retryable, "retryable %s, not %s: %r" %
          (s.get("retryable"), retryable, r))
    for w in words:
        check(w in (s.get("error_message") or ""),
              "the message %r does not say %r" % (s.get("error_message"), w))


def hidden(r, secret):
    """secret is nowhere in what the run printed or recorded."""
    where = [("stderr", r.err)] + [
        ("recorded %s" % k, json.dumps(v)) for k, v in (r.x or {}).items()]
    for what, text in where:
        i = text.find(secret)
        check(i < 0, "%r shows in %s: ...%s..." %
              (secret, what, text[max(0, i - 80):i + 40]))


# ---- cases ----

def cases(e):
    fake = e.fake

    def describe():
        p = e.ferry("components", "describe", "slack", "--components-dir",
                    e.comps, "--json")
        check(p.returncode == 0, "describe: %s" % p.stderr)
        d = json.loads(p.stdout)
        check([a["id"] for a in d["actions"]] ==
              ["slack.post_message", "slack.webhook_post",
               "slack.upload_file", "slack.list_channels"],
              "actions: %r" % [a["id"] for a in d["actions"]])
        conns = {c["id"]: c for c in d["connections"]}
        check({k: c["auth"] for k, c in conns.items()} ==
              {"slack.bot": "bearer", "slack.oauth2": "oauth2",
               "slack.webhook": "custom"}, "connections: %r" % conns)
        fields = {f["name"]: f for f in conns["slack.oauth2"]["fields"]}
        check(fields["token_url"].get("default") ==
              "https://slack.com/api/oauth.v2.access" and
              fields["authorize_url"].get("default") ==
              "https://slack.com/oauth/v2/authorize",
              "oauth2 defaults: %r" % fields)
    case("components describe: four actions, three connection types, "
         "Slack's OAuth endpoints as defaults", describe)

    # -- chat.postMessage --

    def post_ok():
        fake.reset()
        blocks = [{"type": "section",
                   "text": {"type": "mrkdwn", "text": "*deploy* done"}}]
        r = e.run(step("slack.post_message",
                       {"channel": "C00000001", "text": "deploy done",
                        "blocks": blocks, "thread_ts": "1700000000.000100",
                        "unfurl_links": False}), "slack.bot", bot(fake))
        expect_ok(r)
        check(r.out.get("ok") is True and r.out.get("channel") ==
              "C00000001" and r.out.get("ts"), "output: %r" % r.out)
        check(r.out["message"].get("blocks") == blocks, "message: %r" % r.out)
        reqs = fake.requests()
        check(len(reqs) == 1 and reqs[0]["path"] == "/api/chat.postMessage"
              and reqs[0]["method"] == "POST", "requests: %r" % reqs)
        q = reqs[0]
        check(q["headers"].get("authorization") == "Bearer " + BOT,
              "authorization: %r" % q["headers"])
        check(q["headers"].get("content-type") ==
              "application/json; charset=utf-8", "content type: %r" %
              q["headers"].get("content-type"))
        check(q["args"] == {"channel": "C00000001", "text": "deploy done",
                            "blocks": blocks,
                            "thread_ts": "1700000000.000100",
                            "unfurl_links": False}, "sent: %r" % q["args"])
        check("warning" not in q["answer"], "Slack warned: %r" % q["answer"])
        m = fake.messages()
        check(len(m) == 1 and m[0]["message"]["thread_ts"] ==
              "1700000000.000100", "posted: %r" % m)
    case("post_message: chat.postMessage with blocks and thread_ts, bearer "
         "token, JSON with charset; Slack's answer is the output", post_ok)

    def post_errors():
        for channel, token, inp, error, code in (
                ("C0NOPE", BOT, {}, "channel_not_found", "FERRY_ENOTFOUND"),
                ("G0HIDDEN", BOT, {}, "channel_not_found", "FERRY_ENOTFOUND"),
                ("C0NOTMEMB", BOT, {}, "not_in_channel", "FERRY_EPERM"),
                ("C0ARCHIVD", BOT, {}, "is_archived", "FERRY_EREMOTE"),
                ("C00000001", BOT, {"text": None}, "no_text", "FERRY_EINVAL"),
                ("C00000001", "xoxb-wrong-token", {}, "invalid_auth",
                 "FERRY_EAUTH"),
                ("C00000001", "xoxb-revoked", {}, "token_revoked",
                 "FERRY_EAUTH")):
            fake.reset()
            inp = dict({"channel": channel, "text": "hello"}, **inp)
            inp = {k: v for k, v in inp.items() if v is not None}
            r = e.run(step("slack.post_message", inp), "slack.bot",
                      bot(fake, token))
            expect_fail(r, code, False, "chat.postMessage: " + error)
            n = len(fake.requests())
            check(n == 1, "%s: %d requests, not 1" % (error, n))
            hidden(r, token)
    case("post_message: ok:false on HTTP 200 fails the step, not retryable: "
         "channel_not_found, not_in_channel, is_archived, no_text, "
         "invalid_auth, token_revoked", post_errors)

    def post_retryable():
        for status, error, code in ((200, "internal_error", "FERRY_EUNAVAIL"),
                                    (200, "ratelimited", "FERRY_ERATELIMIT"),
                                    (500, "internal_error", "FERRY_EUNAVAIL"),
                                    (503, "service_unavailable",
                                     "FERRY_EUNAVAIL")):
            fake.reset()
            fake.inject("chat.postMessage", status=status, error=error)
            r = e.run(step("slack.post_message",
                           {"channel": "C00000001", "text": "x"}),
                      "slack.bot", bot(fake))
            expect_fail(r, code, True, "chat.postMessage: " + error)
            if status != 200:
                expect_fail(r, code, True, "HTTP %d" % status)
            check(len(fake.requests()) == 1, "%s: sent again by the action"
                  % error)
    case("post_message: ratelimited, internal_error and 5xx are retryable "
         "step errors", post_retryable)

    def post_429():
        fake.reset()
        fake.inject("chat.postMessage", status=429, retry_after="1", times=2)
        r = e.run(step("slack.post_message",
                       {"channel": "C00000001", "text": "after the limit"}),
                  "slack.bot", bot(fake))
        expect_ok(r)
        reqs = fake.requests("/api/chat.postMessage")
        check([q["status"] for q in reqs] == [429, 429, 200],
              "answers: %r" % [q["status"] for q in reqs])
        gaps = [b["time"] - a["time"] for a, b in zip(reqs, reqs[1:])]
        check(all(g >= 0.95 for g in gaps), "Retry-After not waited: %r"
              % gaps)
        waits = [m for m in r.logs() if "Retry-After" in m]
        check(len(waits) == 2 and "waiting 1000 ms" in waits[0],
              "log: %r" % r.logs())
        check(len(fake.messages()) == 1, "posted %d times" %
              len(fake.messages()))
    case("post_message: 429 with Retry-After: 1, twice, then success: two "
         "waits of a second, one message", post_429)

    def post_429_long():
        fake.reset()
        fake.inject("chat.postMessage", status=429, retry_after="120")
        r = e.run(step("slack.post_message",
                       {"channel": "C00000001", "text": "x"}),
                  "slack.bot", bot(fake))
        expect_fail(r, "FERRY_ERATELIMIT", True, "chat.postMessage: "
                    "ratelimited (HTTP 429",
                    "Retry-After 120 s is more than max_retry_after, 60 s")
        check(r.seconds < 10, "it waited: %.1f s" % r.seconds)
        fake.reset()
        fake.inject("chat.postMessage", status=429, retry_after="1", times=3)
        r = e.run(step("slack.post_message",
                       {"channel": "C00000001", "text": "x",
                        "retry_after_attempts": 1}), "slack.bot", bot(fake))
        expect_fail(r, "FERRY_ERATELIMIT", True,
                    "still after 1 waits for Retry-After")
        check(len(fake.requests()) == 2, "requests: %d, not 2" %
              len(fake.requests()))
    case("post_message: a Retry-After beyond max_retry_after, or too many, "
         "fails at once, retryable, saying so", post_429_long)

    def post_cancel():
        fake.reset()
        fake.inject("chat.postMessage", status=429, retry_after="30")
        r = e.run(step("slack.post_message",
                       {"channel": "C00000001", "text": "x"}),
                  "slack.bot", bot(fake),
                  interrupt_when=lambda: len(fake.requests()) >= 1)
        check(r.seconds < 3, "SIGINT during the wait took %.1f s" % r.seconds)
        check(r.status == "cancelled", "status: %r" % r)
        check(len(fake.requests()) == 1, "sent again after the cancel")
    case("post_message: cancelled while waiting for Retry-After (SIGINT to "
         "ferry run): stops within a second or two", post_cancel)

    def wrong_connections():
        fake.reset()
        r = e.run(step("slack.post_message",
                       {"channel": "C00000001", "text": "x"}),
                  "slack.webhook", {"url": fake.base + HOOK_OK})
        expect_fail(r, "FERRY_ECONFIG", False, "slack.webhook",
                    "slack.bot or slack.oauth2")
        r = e.run(step("slack.post_message",
                       {"channel": "C00000001", "text": "x"},
                       connection=None))
        expect_fail(r, "FERRY_ECONFIG", False, "needs a connection")
        r = e.run(step("slack.webhook_post", {"text": "x"}), "slack.bot",
                  bot(fake))
        expect_fail(r, "FERRY_ECONFIG", False, "slack.webhook")
        check(fake.requests() == [], "something was sent: %r" %
              fake.requests())
    case("a Web API action with a webhook connection, or none, and "
         "webhook_post with a bot one: configuration errors, nothing sent",
         wrong_connections)

    def oauth2():
        fake.reset()
        fields = {"client_id": "fake-client", "client_secret": "fake-secret",
                  "grant": "refresh_token",
                  "refresh_token": "xoxe-1-fake-refresh",
                  "token_url": fake.api_url + "/oauth.v2.access",
                  "api_url": fake.api_url}
        r = e.run(step("slack.post_message",
                       {"channel": "C00000001", "text": "via oauth"}),
                  "slack.oauth2", fields)
        expect_ok(r)
        tok = fake.requests("/api/oauth.v2.access")
        check(len(tok) == 1, "token requests: %r" % tok)
        check(tok[0]["args"].get("grant_type") == "refresh_token" and
              tok[0]["answer"].get("ok") is True, "token request: %r" %
              tok[0])
        access = tok[0]["answer"]["access_token"]
        post = fake.requests("/api/chat.postMessage")
        check(len(post) == 1 and post[0]["headers"].get("authorization") ==
              "Bearer " + access, "chat.postMessage: %r" % post)
        hidden(r, "fake-secret")
        # The refresh token was rotated (Slack's are single use): the old
        # one is refused in-band, HTTP 200 with ok:false and
        # invalid_refresh_token. The connection needs re-authorisation: a
        # failure that is not retried, not "the service is unavailable".
        r = e.run(step("slack.post_message",
                       {"channel": "C00000001", "text": "again"}),
                  "slack.oauth2", fields)
        expect_fail(r, "FERRY_EAUTH", False, "invalid_refresh_token")
        check(len(fake.requests("/api/chat.postMessage")) == 1,
              "posted with no token: %r" % fake.requests())
    case("slack.oauth2: the host's token service gets a token from "
         "oauth.v2.access (refresh_token grant) and the call carries it; "
         "a rotated-away refresh token means re-authorisation",
         oauth2)

    # -- incoming webhooks --

    def hook_ok():
        fake.reset()
        blocks = [{"type": "section",
                   "text": {"type": "mrkdwn", "text": "*order* shipped"}}]
        r = e.run(step("slack.webhook_post",
                       {"text": "order shipped", "blocks": blocks,
                        "payload": {"text": "overridden",
                                    "icon_emoji": ":ship:"}}),
                  "slack.webhook", {"url": fake.base + HOOK_OK})
        expect_ok(r)
        check(r.out == {"ok": True}, "output: %r" % r.out)
        reqs = fake.requests(HOOK_OK)
        check(len(reqs) == 1 and reqs[0]["args"] ==
              {"text": "order shipped", "blocks": blocks,
               "icon_emoji": ":ship:"}, "sent: %r" % reqs)
        check(reqs[0]["headers"].get("content-type") == "application/json",
              "content type: %r" % reqs[0]["headers"])
        check("authorization" not in reqs[0]["headers"], "credentials sent")
        check(fake.messages()[0]["channel"] == "C00000001", "not posted")
    case("webhook_post: the message as JSON to the webhook URL; 200 ok is "
         "{ok: true}", hook_ok)

    def hook_errors():
        for path, inp, status, text, code in (
                (HOOK_OK, {}, 400, "no_text", "FERRY_EINVAL"),
                (HOOK_OK, {"text": "x", "blocks": [{"text": "no type"}]},
                 400, "invalid_payload", "FERRY_EINVAL"),
                ("/services/T0FAKE/B0ARCHIVD/hooksecret2", {"text": "x"}, 410,
                 "channel_is_archived", "FERRY_ENOTFOUND"),
                ("/services/T0FAKE/B0DELETED/hooksecret3", {"text": "x"}, 404,
                 "channel_not_found", "FERRY_ENOTFOUND"),
                ("/services/T0FAKE/B0GENERAL/wrongsecret", {"text": "x"}, 403,
                 "invalid_token", "FERRY_EPERM"),
                ("/services/T0FAKE/B0NOSUCH/hooksecret9", {"text": "x"}, 404,
                 "no_service", "FERRY_ENOTFOUND")):
            fake.reset()
            r = e.run(step("slack.webhook_post", inp), "slack.webhook",
                      {"url": fake.base + path})
            expect_fail(r, code, False, "slack.webhook_post: HTTP %d %s" %
                        (status, text))
            check(len(fake.requests()) == 1, "%s: sent again" % text)
            check(path.rsplit("/", 1)[1] not in r.x["error_message"],
                  "the message shows the webhook's secret: %r" % r)
    case("webhook_post: plain-text errors with their statuses fail the "
         "step, not retryable: no_text, invalid_payload, "
         "channel_is_archived, channel_not_found, invalid_token, no_service",
         hook_errors)

    def hook_retryable():
        fake.reset()
        fake.inject("webhook", status=500, text="rollup_error")
        r = e.run(step("slack.webhook_post", {"text": "x"}), "slack.webhook",
                  {"url": fake.base + HOOK_OK})
        expect_fail(r, "FERRY_EREMOTE", True,
                    "slack.webhook_post: HTTP 500 rollup_error")
        fake.reset()
        fake.inject("webhook", status=429, retry_after="1",
                    text="rate_limited")
        r = e.run(step("slack.webhook_post", {"text": "x"}), "slack.webhook",
                  {"url": fake.base + HOOK_OK})
        expect_ok(r)
        check([q["status"] for q in fake.requests()] == [429, 200],
              "answers: %r" % fake.requests())
        fake.reset()
        r = e.run(step("slack.webhook_post", {"text": "x"}), "slack.webhook",
                  {"url": "http://127.0.0.1:1/services/T0FAKE/B0GENERAL/"
                   "hooksecret1"})
        expect_fail(r, "FERRY_EUNAVAIL", True, "slack.webhook_post")
        check("hooksecret1" not in r.x["error_message"], "the message shows "
              "the webhook's secret: %r" % r)
    case("webhook_post: 500 rollup_error and a refused connection are "
         "retryable; 429 waits for Retry-After", hook_retryable)

    def hook_url_hidden():
        fake.reset()
        r = e.run(step("slack.webhook_post", {"text": "x"}), "slack.webhook",
                  {"url": fake.base + HOOK_OK})
        expect_ok(r)
        hidden(r, "hooksecret1")
    case("webhook_post: the webhook URL (its secret) is in no log line or "
         "record", hook_url_hidden)

    # -- files --

    def upload_blob():
        fake.reset()
        n = 300000
        want = hashlib.sha256(
            (bytes(range(256)) * (n // 256 + 1))[:n]).hexdigest()
        r = e.run([
            step("http.request", {"url": fake.base + "/_fake/bytes/%d" % n,
                                  "as": "blob"}, name="get", connection=None),
            step("slack.upload_file",
                 {"blob": "{{ steps.get.output.body }}",
                  "filename": "data.bin", "title": "The data",
                  "channel": "C00000001", "initial_comment": "here it is"})],
            "slack.bot", bot(fake))
        expect_ok(r)
        reqs = [q for q in fake.requests() if q["path"] != "/_fake/bytes/%d"
                % n]
        check([q["path"].split("/v1/")[0] for q in reqs] ==
              ["/api/files.getUploadURLExternal", "/upload",
               "/api/files.completeUploadExternal"],
              "calls: %r" % [q["path"] for q in reqs])
        get, up, done = reqs
        check(get["args"] == {"filename": "data.bin", "length": str(n)} and
              get["headers"]["content-type"] ==
              "application/x-www-form-urlencoded",
              "getUploadURLExternal: %r" % get)
        fid = get["answer"]["file_id"]
        check(up["server"] == "files" and up["method"] == "POST" and
              up["body_len"] == n and up["body_sha256"] == want,
              "the bytes: %d of %d, sha256 %s" %
              (up["body_len"], n, up["body_sha256"]))
        check("authorization" not in up["headers"],
              "the token went to the upload URL")
        check(json.loads(done["args"]["files"]) ==
              [{"id": fid, "title": "The data"}] and
              done["args"].get("channel_id") == "C00000001" and
              done["args"].get("initial_comment") == "here it is",
              "completeUploadExternal: %r" % done["args"])
        check(done["headers"].get("authorization") == "Bearer " + BOT,
              "completeUploadExternal without the token")
        check(r.out == {"ok": True, "files": [{"id": fid,
                                               "title": "The data"}]},
              "output: %r" % r.out)
        f = fake.files()[fid]
        check(f["completed"] and f["received"] == n and
              f["channel_id"] == "C00000001", "the file: %r" % f)
    case("upload_file: a 300 kB blob in three calls (upload URL, the bytes "
         "to it on another origin without the token, complete with channel "
         "and title); the bytes arrived", upload_blob)

    def upload_text():
        fake.reset()
        text = "city,temp\nZ\u00fcrich,21\n"
        r = e.run(step("slack.upload_file",
                       {"text": text, "filename": "t.csv",
                        "snippet_type": "csv"}), "slack.bot", bot(fake))
        expect_ok(r)
        fid = r.out["files"][0]["id"]
        f = fake.files()[fid]
        data = text.encode()
        check(f["length"] == len(data) and f["received"] == len(data) and
              f["sha256"] == hashlib.sha256(data).hexdigest() and
              f["snippet_type"] == "csv", "the file: %r" % f)
        check(f["channel_id"] is None and f["title"] == "t.csv",
              "shared or titled: %r" % f)
    case("upload_file: text content, no channel (the file stays private), "
         "title defaults to the filename", upload_text)

    def upload_errors():
        fake.reset()
        r = e.run(step("slack.upload_file",
                       {"text": "x", "filename": "a.txt",
                        "channel": "C00000001"}), "slack.bot",
                  bot(fake, "xoxb-no-files"))
        expect_fail(r, "FERRY_EPERM", False,
                    "files.getUploadURLExternal: missing_scope",
                    "needed files:write")
        check(len(fake.requests()) == 1, "went on after missing_scope")
        fake.reset()
        fake.inject("upload", status=500, text="upload failed")
        r = e.run(step("slack.upload_file",
                       {"text": "x", "filename": "a.txt",
                        "channel": "C00000001"}), "slack.bot", bot(fake))
        expect_fail(r, "FERRY_EREMOTE", True, "slack.upload_file: sending "
                    "'a.txt'", "upload URL: HTTP 500")
        paths = [q["path"] for q in fake.requests()]
        check(not any("complete" in p for p in paths),
              "completed after a failed upload: %r" % paths)
        key = [p for p in paths if p.startswith("/upload/")][0].rsplit("/")[-1]
        check(key not in r.x["error_message"], "the upload URL is shown")
        fake.reset()
        r = e.run(step("slack.upload_file",
                       {"text": "x", "filename": "a.txt",
                        "channel": "C0NOTMEMB"}), "slack.bot", bot(fake))
        expect_fail(r, "FERRY_EPERM", False,
                    "files.completeUploadExternal: not_in_channel")
        r = e.run(step("slack.upload_file", {"filename": "a.txt"}),
                  "slack.bot", bot(fake))
        expect_fail(r, "FERRY_EINVAL", False, "blob or as text")
    case("upload_file: missing_scope stops at the first call; a failed "
         "upload is retryable and not completed; not_in_channel at "
         "completion; no content", upload_errors)

    # -- conversations.list --

    def list_pages():
        fake.reset()
        r = e.run(step("slack.list_channels", {"limit": 2}), "slack.bot",
                  bot(fake))
        expect_ok(r)
        reqs = fake.requests("/api/conversations.list")
        check(len(reqs) == 5 and r.out["pages"] == 5, "pages: %d requests, "
              "output %r" % (len(reqs), r.out.get("pages")))
        check(all(q["method"] == "GET" and q["args"]["limit"] == "2" and
                  q["args"]["types"] == "public_channel" for q in reqs),
              "arguments: %r" % [q["args"] for q in reqs])
        for a, b in zip(reqs, reqs[1:]):
            check(b["args"].get("cursor") ==
                  a["answer"]["response_metadata"]["next_cursor"],
                  "cursor not followed: %r" % b["args"])
        check("cursor" not in reqs[0]["args"], "a cursor on page 1")
        ids = [c["id"] for c in r.out["channels"]]
        check(r.out["count"] == 9 and len(set(ids)) == 9 and
              "C0ARCHIVD" in ids and "G0PRIVATE" not in ids,
              "channels: %r" % ids)
        check(r.out.get("next_cursor") is None, "next_cursor: %r" % r.out)
    case("list_channels: 9 channels, limit 2: five pages following "
         "next_cursor", list_pages)

    def list_short_pages():
        fake.reset()
        r = e.run(step("slack.list_channels",
                       {"limit": 2, "exclude_archived": True,
                        "types": ["public_channel", "private_channel"]}),
                  "slack.bot", bot(fake))
        expect_ok(r)
        reqs = fake.requests("/api/conversations.list")
        sizes = [len(q["answer"]["channels"]) for q in reqs]
        check(1 in sizes[:-1], "no short page before the last: %r" % sizes)
        check(reqs[0]["args"]["types"] == "public_channel,private_channel",
              "types: %r" % reqs[0]["args"])
        ids = [c["id"] for c in r.out["channels"]]
        check(len(ids) == 9 and "C0ARCHIVD" not in ids and "G0PRIVATE" in ids,
              "channels: %r" % ids)
    case("list_channels: a short page (archived channels filtered after "
         "paging) does not end the listing; types as an array",
         list_short_pages)

    def list_429():
        fake.reset()
        fake.inject("conversations.list", status=429, retry_after="1", skip=2)
        r = e.run(step("slack.list_channels", {"limit": 2}), "slack.bot",
                  bot(fake))
        expect_ok(r)
        st_ = [q["status"] for q in fake.requests("/api/conversations.list")]
        check(st_ == [200, 200, 429, 200, 200, 200], "answers: %r" % st_)
        check(r.out["count"] == 9 and r.out["pages"] == 5, "output: %r" %
              {k: r.out[k] for k in ("count", "pages")})
    case("list_channels: a 429 on the third page is waited for and the "
         "listing goes on", list_429)

    def list_max():
        fake.reset()
        r = e.run(step("slack.list_channels", {"limit": 2, "max_channels": 3}),
                  "slack.bot", bot(fake))
        expect_ok(r)
        first = [c["id"] for c in r.out["channels"]]
        check(r.out["pages"] == 2 and len(first) == 4 and
              r.out.get("next_cursor"), "output: %r" % r.out)
        r = e.run(step("slack.list_channels",
                       {"limit": 2, "cursor": r.out["next_cursor"]}),
                  "slack.bot", bot(fake))
        expect_ok(r)
        rest = [c["id"] for c in r.out["channels"]]
        check(len(rest) == 5 and not set(rest) & set(first),
              "resumed: %r after %r" % (rest, first))
        fake.reset()
        r = e.run(step("slack.list_channels", {"limit": 0}), "slack.bot",
                  bot(fake))
        expect_fail(r, "FERRY_EINVAL", False, "limit must be from 1 to 1000")
        r = e.run(step("slack.list_channels", {}), "slack.bot",
                  bot(fake, "xoxb-wrong-token"))
        expect_fail(r, "FERRY_EAUTH", False,
                    "conversations.list: invalid_auth")
    case("list_channels: max_channels stops early with next_cursor, which "
         "resumes; limit checked; invalid_auth", list_max)


def main():
    for path in (FERRY, SLACK_SO, HTTP_SO, st.FAKE):
        if not os.path.exists(path):
            print("not ok - setup: %s does not exist" % path)
            print("0 passed, 1 failed")
            return 1
    signal.signal(signal.SIGTERM, lambda sig, frame: sys.exit(1))
    root = tempfile.mkdtemp(prefix="ferry-slack-")
    t0 = time.monotonic()
    fake = None
    try:
        fake = st.FakeSlack()
        cases(Engine(root, fake))
    except Exception as e:
        print("not ok - setup: %s: %s" % (type(e).__name__, e))
        st.results["failed"] += 1
    finally:
        if fake:
            fake.stop()
        if os.environ.get("FERRY_TEST_KEEP") == "1" or st.results["failed"]:
            print("# kept " + root)
        else:
            shutil.rmtree(root, ignore_errors=True)
    return st.summary(t0)


if __name__ == "__main__":
    sys.exit(main())
