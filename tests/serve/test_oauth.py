#!/usr/bin/env python3
"""OAuth 2.0 connections and secrets at rest in `ferry serve`, against a
real OAuth 2.0 server on loopback (tests/fixtures/oauth/server.mjs: client
secrets checked, token lifetime set by the test, rotating refresh tokens,
PKCE) and its resource server, which accepts only valid tokens.

Cases: a token with a 2-second lifetime is refreshed before it expires
across 20 executions (the resource never refuses one); 50 concurrent
executions cause one token request; the authorization-code flow end to end
through /oauth/authorize and /oauth/callback, then a refresh that rotates
the refresh token; a refresh token the server no longer accepts marks the
connection as needing re-authorisation (API, /metrics, and executions fail
with that reason without asking the server again); no plaintext secret in
the database, the host's log or any API response; a wrong master key is
refused at start and the data stays readable with the right one;
`ferry secrets rotate-key` moves everything to a new key.

Environment (set by CMakeLists.txt): as for test_serve.py, plus
FERRY_COMPONENTS_BUILD (where http.so is) and FERRY_OAUTH_SERVER (the
server's script). Skips (exit 77) when node or the server's npm packages
are missing. Prints "ok - NAME" / "not ok - NAME: why", then "N passed, M
failed". Python 3 standard library only.
"""

import http.client
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_serve as ts  # noqa: E402
from test_serve import check, case  # noqa: E402

SERVER = os.environ.get("FERRY_OAUTH_SERVER", "")
COMPONENTS_BUILD = os.environ.get("FERRY_COMPONENTS_BUILD", "")
INSTANCE = "acme"
CLIENT_SECRET = "ferry-secret-" + os.urandom(6).hex()
API_KEY = "cfg-api-key-" + os.urandom(6).hex()
KEY_A = os.urandom(32).hex()
KEY_B = os.urandom(32).hex()


class OAuthServer:
    def __init__(self, root):
        self.dir = os.path.join(root, "oauth")
        os.makedirs(self.dir, exist_ok=True)
        self.port_file = os.path.join(self.dir, "port")
        self.log = open(os.path.join(self.dir, "server.log"), "wb")
        clients = {"ferry-client": CLIENT_SECRET, "web-client": CLIENT_SECRET}
        self.proc = subprocess.Popen(
            ["node", SERVER, "--port", "0", "--port-file", self.port_file,
             "--ttl", "2", "--alg", "ES256", "--clients", json.dumps(clients),
             "--exit-with-stdin"],
            stdin=subprocess.PIPE, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 15
        while True:
            try:
                with open(self.port_file) as f:
                    t = f.read()
                if t.endswith("\n"):
                    self.port = int(t)
                    break
            except OSError:
                pass
            check(self.proc.poll() is None and time.monotonic() < deadline,
                  "the OAuth server did not start")
            time.sleep(0.05)
        self.base = "http://127.0.0.1:%d" % self.port

    def ctl(self, path):
        with urllib.request.urlopen(self.base + "/__ctl/" + path,
                                    timeout=10) as r:
            return json.loads(r.read() or b"null")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self.log.close()


def integration(base):
    return {
        "name": "oauth-test", "version": "1.0.0",
        "config": {"api_key": {"type": "string", "secret": True,
                               "required": True}},
        "connections": {
            "api": {"type": "http.oauth2"},
            "burst": {"type": "http.oauth2"},
            "user": {"type": "http.oauth2"},
            "seeded": {"type": "http.oauth2"},
        },
        "flows": [
            {"name": name,
             "steps": [
                 {"name": "log", "action": "core.log",
                  "input": {"message": "using key {{ config.api_key }}"}},
                 {"name": "call", "action": "http.request",
                  "connection": name,
                  "input": {"url": base + "/resource/" + name,
                            "method": "POST",
                            "json": {"n": "{{ trigger.body.n }}"}}},
                 {"name": "out", "action": "core.set",
                  "input": {"value": "{{ steps.call.output.body }}"}}]}
            for name in ("api", "burst", "user", "seeded")] + [
            {"name": "on_alert",
             "steps": [{"name": "got", "action": "core.set",
                        "input": {"value": "{{ trigger.alert }}"}}]}],
        "alerts": [{"name": "reauth", "when": "reauth",
                    "notify": [{"flow": "on_alert"}]}]}


def instance(base, seeded_refresh):
    common = {"token_url": base + "/token", "client_secret": CLIENT_SECRET}
    return {
        "integration": "oauth-test", "name": INSTANCE,
        "config": {"api_key": API_KEY},
        "connections": {
            "api": {"fields": dict(common, client_id="ferry-client",
                                   grant="client_credentials",
                                   scopes="read")},
            "burst": {"fields": dict(common, client_id="ferry-client",
                                     grant="client_credentials",
                                     scopes="burst", client_auth="body")},
            "user": {"fields": dict(common, client_id="web-client",
                                    grant="authorization_code",
                                    authorize_url=base + "/authorize",
                                    scopes="openid read")},
            "seeded": {"fields": dict(common, client_id="web-client",
                                      grant="refresh_token",
                                      refresh_token=seeded_refresh)},
        }}


def auth_code_refresh_token(srv):
    """A refresh token obtained by the test itself, through the server's
    authorization-code flow with PKCE (to seed the "seeded" connection)."""
    import base64
    import hashlib
    verifier = base64.urlsafe_b64encode(os.urandom(32)).rstrip(b"=").decode()
    challenge = base64.urlsafe_b64encode(
        hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    redirect = "http://127.0.0.1:1/cb"
    q = urllib.parse.urlencode({
        "response_type": "code", "client_id": "web-client",
        "redirect_uri": redirect, "scope": "openid", "state": "s1",
        "code_challenge": challenge, "code_challenge_method": "S256"})

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *a, **kw):
            return None
    opener = urllib.request.build_opener(NoRedirect)
    try:
        opener.open(srv.base + "/authorize?" + q, timeout=10)
        raise ts.Fail("/authorize did not redirect")
    except urllib.error.HTTPError as e:
        loc = e.headers["Location"]
    code = urllib.parse.parse_qs(urllib.parse.urlparse(loc).query)["code"][0]
    body = urllib.parse.urlencode({
        "grant_type": "authorization_code", "code": code,
        "redirect_uri": redirect, "code_verifier": verifier,
        "client_id": "web-client", "client_secret": CLIENT_SECRET}).encode()
    with urllib.request.urlopen(srv.base + "/token", body, timeout=10) as r:
        return json.loads(r.read())["refresh_token"]


def use_refresh_token(srv, rt):
    body = urllib.parse.urlencode({
        "grant_type": "refresh_token", "refresh_token": rt,
        "client_id": "web-client", "client_secret": CLIENT_SECRET}).encode()
    with urllib.request.urlopen(srv.base + "/token", body, timeout=10) as r:
        return json.loads(r.read())


def start(h, flow, n):
    r = h.request("POST", "/api/v1/instances/%s/flows/%s/executions"
                  % (INSTANCE, flow), {"n": n})
    check(r.status == 202, "start %s: %r" % (flow, r))
    return r.json["id"]


def cases(root):
    srv = OAuthServer(root)
    state = {"responses": []}
    comps = os.path.join(root, "components")
    os.makedirs(comps)
    shutil.copy(os.path.join(COMPONENTS_BUILD, "http.so"), comps)
    os.environ["FERRY_MASTER_KEY"] = KEY_A
    h = ts.Host(root, "oauth", components=comps, limits={"timeout": "30s"})
    try:
        seeded = auth_code_refresh_token(srv)
        state["seeded"] = seeded
        h.start()
        ts.current["host"] = h
        api = h.request

        def record(r):
            state["responses"].append(r.text)
            return r
        h.request = lambda *a, **kw: record(api(*a, **kw))

        def deploy():
            r = h.deploy(integration=integration(srv.base),
                         instance=instance(srv.base, seeded))
            check(r.status == 201, "deploy: %r" % r)
        case("deploy four OAuth 2.0 connections", deploy)

        def refreshed_before_expiry():
            srv.ctl("stats?reset=1")
            outs = []
            for n in range(20):
                x = h.wait_done(start(h, "api", n))
                check(x["status"] == "succeeded",
                      "execution %d: %s %s" % (n, x["status"], ts.message(x)))
                outs.append(x["output"])
                time.sleep(0.25)
            st = srv.ctl("stats")
            print("# 20 executions over ~6 s, token lifetime 2 s: %d token "
                  "requests, resource accepted %d, rejected %d"
                  % (st["token_requests_total"], st["resource"]["accepted"],
                     st["resource"]["rejected"]), flush=True)
            check(st["resource"]["rejected"] == 0,
                  "the resource refused %d requests: a token was used after "
                  "it expired" % st["resource"]["rejected"])
            check(st["token_requests_total"] >= 3,
                  "only %d token requests over ~6 s of 2 s tokens"
                  % st["token_requests_total"])
            bad = [(i, o) for i, o in enumerate(outs)
                   if not (isinstance(o, dict) and o.get("ok") and
                           (o.get("body") or {}).get("n") == i)]
            check(not bad, "outputs: %r" % bad[:2])
        case("a 2-second token is refreshed before it expires across 20 "
             "executions", refreshed_before_expiry)

        def fifty_concurrent():
            # Tokens that outlive the burst, however slow the machine: one
            # token request is then the only right count.
            srv.ctl("ttl?s=3600")
            srv.ctl("stats?reset=1")
            ids = [start(h, "burst", n) for n in range(50)]
            xs = [h.wait_done(i, timeout=60) for i in ids]
            bad = [(x["id"], x["status"], ts.message(x)) for x in xs
                   if x["status"] != "succeeded"]
            check(not bad, "%d failed: %r" % (len(bad), bad[:2]))
            st = srv.ctl("stats")
            check(st["token_requests_total"] == 1,
                  "50 concurrent executions made %d token requests"
                  % st["token_requests_total"])
            srv.ctl("ttl?s=2")
        case("50 concurrent executions cause one token request",
             fifty_concurrent)

        def authorization_code():
            x = h.wait_done(start(h, "user", 0))
            check(x["status"] == "failed" and
                  "not authorised yet" in ts.message(x) and
                  "/oauth/authorize/acme/user" in ts.message(x),
                  "before authorising: %s %r" % (x["status"], ts.message(x)))
            r = h.request("GET", "/oauth/authorize/%s/user" % INSTANCE)
            check(r.status == 302, "authorize: %r" % r)
            # A browser follows: the provider's page, then our callback.
            c = http.client.HTTPConnection("127.0.0.1", h.port, timeout=10)
            c.request("GET", "/oauth/authorize/%s/user" % INSTANCE,
                      headers={"Authorization": "Bearer " + ts.TOKEN})
            loc = c.getresponse().getheader("Location")
            c.close()
            q = urllib.parse.parse_qs(urllib.parse.urlparse(loc).query)
            check(q.get("code_challenge_method") == ["S256"] and
                  q.get("state") and q.get("redirect_uri") ==
                  ["http://127.0.0.1:%d/oauth/callback" % h.port],
                  "authorization URL: %s" % loc)
            with urllib.request.urlopen(loc, timeout=10) as resp:
                text = resp.read().decode()
            state["responses"].append(text)
            check("is authorised" in text, "callback answered %r" % text)
            # The state is single use.
            cb = "/oauth/callback?code=x&state=" + q["state"][0]
            r = h.request("GET", cb, token=None)
            check(r.status == 400 and "used or expired state" in r.text,
                  "a reused state: %r" % r)
            x = h.wait_done(start(h, "user", 1))
            check(x["status"] == "succeeded" and
                  x["output"]["client_id"] == "web-client",
                  "after authorising: %s %r" % (x["status"], ts.message(x)))
            srv.ctl("stats?reset=1")
            time.sleep(2.2)  # past the token's lifetime: a refresh
            x = h.wait_done(start(h, "user", 2))
            check(x["status"] == "succeeded", "after expiry: %s %r"
                  % (x["status"], ts.message(x)))
            st = srv.ctl("stats")
            check(st["refreshes"] == 1, "stats: %r" % st)
        case("authorization code with PKCE through /oauth/authorize and "
             "/oauth/callback, then a rotating refresh", authorization_code)

        def reauth():
            # The seeded refresh token is used (and rotated) behind the
            # host's back: the host's copy is now a reused one.
            use_refresh_token(srv, seeded)
            srv.ctl("stats?reset=1")
            x = h.wait_done(start(h, "seeded", 0))
            check(x["status"] == "failed" and
                  "needs re-authorisation" in ts.message(x) and
                  "invalid_grant" in ts.message(x),
                  "a reused refresh token: %s %r"
                  % (x["status"], ts.message(x)))
            r = h.get("/api/v1/instances/%s/connections" % INSTANCE)
            by = {c["name"]: c for c in r.json}
            check(by["seeded"]["status"] == "reauth" and
                  by["api"]["status"] == "ok",
                  "connections: %r" % r.json)
            m = h.get("/metrics").text
            check(re.search(r"^ferry_connections_needing_reauth 1$", m, re.M),
                  "metrics: %s" % [ln for ln in m.splitlines()
                                   if "reauth" in ln])
            x = h.wait_done(start(h, "seeded", 1))
            check(x["status"] == "failed" and
                  "needs re-authorisation" in ts.message(x), "again: %r"
                  % ts.message(x))
            st = srv.ctl("stats")
            check(st["token_requests_total"] == 1,
                  "the host asked the server again: %r" % st)
            alerts = [h.execution(a["id"]) for a in h.get(
                "/api/v1/executions", query={"flow": "on_alert"}).json]
            check(len(alerts) == 1 and
                  alerts[0]["output"]["condition"] == "reauth" and
                  alerts[0]["output"]["connection"] == "seeded",
                  "reauth alert: %r" % [a.get("output") for a in alerts])
        case("a refused refresh token marks the connection as needing "
             "re-authorisation", reauth)

        def no_plaintext():
            for path in ("/api/v1/executions?limit=1000",
                         "/api/v1/instances/" + INSTANCE,
                         "/api/v1/instances/%s/connections" % INSTANCE,
                         "/metrics"):
                h.get(path)
            for x in h.get("/api/v1/executions?limit=1000").json:
                h.get("/api/v1/executions/" + x["id"])
            secrets = [CLIENT_SECRET, API_KEY, state["seeded"]]
            places = {"API responses": "\n".join(state["responses"])}
            with open(h.log_path, errors="replace") as f:
                places["host log"] = f.read()
            for suffix in ("", "-wal"):
                p = h.db + suffix
                if os.path.exists(p):
                    with open(p, "rb") as f:
                        places["database" + suffix] = \
                            f.read().decode("latin-1")
            leaks = [(where, s[:12] + "...") for where, text in places.items()
                     for s in secrets if s in text]
            check(not leaks, "plaintext secrets found: %r" % leaks)
            logs = [x for x in h.get("/api/v1/executions/" + h.get(
                "/api/v1/executions?flow=api&limit=1").json[0]["id"]).json[
                "logs"]]
            check(any("using key [redacted]" in ln["message"] for ln in logs),
                  "the secret config value is not shown redacted: %r"
                  % [ln["message"] for ln in logs])
            r = h.get("/api/v1/instances/" + INSTANCE)
            check(r.json["config"]["api_key"] == "[redacted]",
                  "instance config: %r" % r.json["config"])
        case("no plaintext secret in the database, the log or the API",
             no_plaintext)

        def wrong_key():
            h.signal(ts.signal.SIGTERM)
            check(h.wait_exit(15) == 0, "the host did not stop")
            ts.wait_gone(h.dir, 5)
            os.environ["FERRY_MASTER_KEY"] = KEY_B
            try:
                h.start()
                raise ts.Fail("the host started with the wrong key")
            except ts.Fail as e:
                check("is not the store's" in str(e), "refusal: %s" % e)
            del os.environ["FERRY_MASTER_KEY"]
            try:
                h.start()
                raise ts.Fail("the host started without a key")
            except ts.Fail as e:
                check("holds data encrypted under master key" in str(e),
                      "refusal: %s" % e)
            os.environ["FERRY_MASTER_KEY"] = KEY_A
            h.start()
            x = h.wait_done(start(h, "user", 3))
            check(x["status"] == "succeeded",
                  "with the right key again: %s %r"
                  % (x["status"], ts.message(x)))
        case("a wrong or missing master key is refused at start; the data "
             "stays readable", wrong_key)

        def rotate():
            h.signal(ts.signal.SIGTERM)
            check(h.wait_exit(15) == 0, "the host did not stop")
            keyfile = os.path.join(root, "new.key")
            with open(keyfile, "w") as f:
                f.write(KEY_B + "\n")
            os.chmod(keyfile, 0o600)
            env = dict(os.environ, FERRY_MASTER_KEY=KEY_A)
            p = subprocess.run([ts.FERRY, "secrets", "rotate-key",
                                "--new-key-file", keyfile, "--db", h.db],
                               env=env, capture_output=True, text=True)
            check(p.returncode == 0 and "re-encrypted" in p.stdout,
                  "rotate-key: %d %s %s" % (p.returncode, p.stdout, p.stderr))
            os.environ["FERRY_MASTER_KEY"] = KEY_B
            h.start()
            x = h.wait_done(start(h, "user", 4))
            check(x["status"] == "succeeded", "with the new key: %s %r"
                  % (x["status"], ts.message(x)))
        case("ferry secrets rotate-key re-encrypts everything under a new "
             "key", rotate)
    finally:
        srv.stop()
    ts.stop(ts.current)


def main():
    if not SERVER or not os.path.isdir(os.path.join(os.path.dirname(SERVER),
                                                    "node_modules")) or \
            not shutil.which("node"):
        print("# skipped: the OAuth test server needs node and its npm "
              "packages (scripts/npm-deps)")
        return 77
    return ts.run_suite("ferry-oauth-", cases,
                        (os.path.join(COMPONENTS_BUILD, "http.so"),))


if __name__ == "__main__":
    sys.exit(main())
