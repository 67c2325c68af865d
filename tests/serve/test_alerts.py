#!/usr/bin/env python3
"""Alerting in `ferry serve`: monitors declared in the integration, alerts
delivered to a receiver in this process that verifies the Standard
Webhooks signature, to a Slack-like chat.postMessage endpoint, and to a flow
of the instance.

Cases: a failed execution alerts once on each channel with the instance,
flow, execution id, failed step, error and a link; repeats within the
window are grouped into one summary with the count, then a success sends
"resolved"; a slow execution fires the duration monitor; a flow with no
execution for longer than "over" fires the silence monitor; an alert
whose delivery fails is retried until it gets through.

Environment: as for test_serve.py, plus FERRY_COMPONENTS_BUILD (http.so,
for the bearer connection type). Prints "ok - NAME" / "not ok - NAME: why",
then "N passed, M failed". Python 3 standard library only.
"""

import base64
import hashlib
import hmac
import http.server
import json
import os
import shutil
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_serve as ts  # noqa: E402
from test_serve import check, case  # noqa: E402

COMPONENTS_BUILD = os.environ.get("FERRY_COMPONENTS_BUILD", "")
INSTANCE = "alerted"
SECRET = "whsec_" + base64.b64encode(os.urandom(32)).decode()
BOT = "xoxb-" + os.urandom(8).hex()


def stdwh_sign(secret, wid, ts_, body):
    key = base64.b64decode(secret[len("whsec_"):])
    mac = hmac.new(key, b"%s.%s." % (wid.encode(), ts_.encode()) + body,
                   hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


class Receiver:
    def __init__(self):
        self.lock = threading.Lock()
        self.hooks = []   # verified webhook events
        self.bad = []     # webhook deliveries that did not verify
        self.slack = []   # chat.postMessage bodies
        self.fail_next = 0
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def answer(self, code, obj):
                data = json.dumps(obj).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n)
                with outer.lock:
                    if self.path == "/hook":
                        if outer.fail_next > 0:
                            outer.fail_next -= 1
                            return self.answer(503, {"error": "busy"})
                        wid = self.headers.get("webhook-id", "")
                        wts = self.headers.get("webhook-timestamp", "")
                        sig = self.headers.get("webhook-signature", "")
                        good = sig == stdwh_sign(SECRET, wid, wts, body)
                        (outer.hooks if good else outer.bad).append(
                            json.loads(body))
                        return self.answer(200, {})
                    if self.path == "/api/chat.postMessage":
                        if self.headers.get("Authorization") != "Bearer " + BOT:
                            return self.answer(200, {"ok": False,
                                                     "error": "invalid_auth"})
                        outer.slack.append(json.loads(body))
                        return self.answer(200, {"ok": True, "ts": "1.2"})
                self.answer(404, {})

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def events(self, alert, status=None):
        with self.lock:
            return [e for e in self.hooks if e["alert"] == alert and
                    (status is None or e["status"] == status)]


def integration(base):
    hook = {"webhook": {"url": base + "/hook",
                        "secret": "{{ config.alert_secret }}"}}
    return {
        "name": "alerts-test", "version": "1.0.0",
        "config": {"alert_secret": {"type": "string", "secret": True,
                                    "required": True}},
        "connections": {"ops": {"type": "http.bearer"}},
        "flows": [
            {"name": "work",
             "steps": [{"name": "check",
                        "branch": [{"when": "{{ trigger.body.fail }}",
                                    "steps": [{"name": "boom",
                                               "action": "core.fail",
                                               "input": {"message":
                                                         "record rejected"}}]}],
                        "else": [{"name": "nap", "action": "chaos.sleep",
                                  "input": {"ms":
                                            "{{ trigger.body.ms }}"}}]}]},
            {"name": "hook", "steps": [{"name": "x", "action": "core.set",
                                        "input": {"value": 1}}]},
            {"name": "on_alert",
             "steps": [{"name": "got", "action": "core.set",
                        "input": {"value": "{{ trigger.alert }}"}}]},
        ],
        "alerts": [
            {"name": "failures", "when": "failed", "flows": ["work"],
             "repeat": "4s",
             "notify": [hook,
                        {"slack": {"connection": "ops", "channel": "#ops",
                                   "api_url": base + "/api"}},
                        {"flow": "on_alert"}]},
            {"name": "slow", "when": "duration", "over": "700ms",
             "flows": ["work"], "notify": [hook]},
            {"name": "quiet", "when": "silence", "over": "3s",
             "flows": ["hook"], "repeat": "1h", "notify": [hook]},
        ]}


def start(h, flow, body):
    r = h.request("POST", "/api/v1/instances/%s/flows/%s/executions"
                  % (INSTANCE, flow), body)
    check(r.status == 202, "start: %r" % r)
    return r.json["id"]


def wait_for(what, fn, timeout=20):
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        check(time.monotonic() < deadline, what)
        time.sleep(0.1)


def cases(root):
    rx = Receiver()
    base = "http://127.0.0.1:%d" % rx.port
    comps = os.path.join(root, "components")
    os.makedirs(comps)
    shutil.copy(os.path.join(COMPONENTS_BUILD, "http.so"), comps)
    shutil.copy(os.path.join(ts.FIXTURES, "chaos.so"), comps)
    h = ts.Host(root, "alerts", components=comps)
    h.start()
    ts.current["host"] = h

    def deploy():
        r = h.deploy(integration=integration(base),
                     instance={"integration": "alerts-test",
                               "name": INSTANCE,
                               "config": {"alert_secret": SECRET},
                               "connections": {"ops": {"fields":
                                                       {"token": BOT}}}})
        check(r.status == 201, "deploy: %r" % r)
    case("deploy an integration with three monitors", deploy)

    def failed():
        xid = start(h, "work", {"fail": True})
        h.wait_done(xid)
        e = wait_for("no webhook alert", lambda: rx.events("failures"))[0]
        check(e["status"] == "firing" and e["instance"] == INSTANCE and
              e["flow"] == "work" and e["execution_id"] == xid and
              e["step"] == "check.boom" and "record rejected" in e["error"]
              and e["link"].endswith("/api/v1/executions/" + xid) and
              e["type"] == "ferry.alert" and e["condition"] == "failed",
              "the event: %r" % e)
        check(not rx.bad, "a delivery did not verify: %r" % rx.bad[:1])
        s = wait_for("no Slack message", lambda: rx.slack)[0]
        check(s["channel"] == "#ops" and xid in s["text"] and
              "failures" in s["text"], "slack: %r" % s)
        r = wait_for("the on_alert flow did not run",
                     lambda: [x for x in h.get(
                         "/api/v1/executions",
                         query={"flow": "on_alert"}).json
                         if x["status"] == "succeeded"])
        x = h.execution(r[0]["id"])
        check(x["output"]["alert"] == "failures" and
              x["output"]["execution_id"] == xid, "on_alert: %r"
              % x["output"])
    case("a failed execution alerts on the webhook (signed), Slack and a "
         "flow, with its step, error and a link", failed)

    def grouped():
        for _ in range(3):
            h.wait_done(start(h, "work", {"fail": True}))
        time.sleep(1)
        check(len(rx.events("failures")) == 1,
              "repeats were not grouped: %d alerts"
              % len(rx.events("failures")))
        time.sleep(3.5)  # past the 4 s repeat window
        h.wait_done(start(h, "work", {"fail": True}))
        ev = wait_for("no summary", lambda: rx.events("failures")[1:])[0]
        check(ev["status"] == "firing" and ev["count"] == 4 and
              ev["summary"].startswith("still:"), "summary: %r" % ev)
        h.wait_done(start(h, "work", {"fail": False, "ms": 1}))
        res = wait_for("no resolved alert",
                       lambda: rx.events("failures", "resolved"))
        check(len(res) == 1, "resolved: %r" % res)
    case("repeats are grouped into one summary with the count; a success "
         "resolves", grouped)

    def retried():
        # "failures" was resolved: the next failure alerts at once, and
        # its delivery (or another one before it) meets two 503s.
        before = len(rx.events("failures", "firing"))
        with rx.lock:
            rx.fail_next = 2
        t0 = time.monotonic()
        h.wait_done(start(h, "work", {"fail": True}))
        wait_for("the alert was not delivered after failures",
                 lambda: len(rx.events("failures", "firing")) > before, 30)
        check(rx.fail_next == 0, "the receiver was not asked again")
        print("# delivered %.1f s after two 503s" % (time.monotonic() - t0),
              flush=True)
        with open(h.log_path) as f:
            log = f.read()
        check("alert: delivery failed: HTTP 503; retried" in log,
              "no log line for the failed delivery")
    case("an alert whose delivery fails is retried until it gets through",
         retried)
    def slow():
        h.wait_done(start(h, "work", {"fail": False, "ms": 900}))
        e = wait_for("no duration alert", lambda: rx.events("slow"))[0]
        check(e["duration_ms"] >= 700 and e["condition"] == "duration",
              "slow: %r" % e)
    case("an execution over its duration fires the duration monitor", slow)

    def silence():
        e = wait_for("no silence alert", lambda: rx.events("quiet"), 15)[0]
        check(e["flow"] == "hook" and e["status"] == "firing", "quiet: %r"
              % e)
        h.wait_done(start(h, "hook", {}))
        wait_for("silence not resolved",
                 lambda: rx.events("quiet", "resolved"), 15)
        check(len(rx.events("quiet", "firing")) == 1,
              "silence alerted %d times" % len(rx.events("quiet", "firing")))
    case("no execution of a flow for longer than 'over' fires the silence "
         "monitor, which resolves when one runs", silence)

    def refused_and_late():
        # A second host: one worker at a time, so that a scheduled run
        # waits behind a slow one and starts late; a component file that is
        # not a component, refused at load.
        h.signal(ts.signal.SIGTERM)
        check(h.wait_exit(15) == 0, "the first host did not stop")
        ts.current["host"] = None
        with open(os.path.join(comps, "broken.so"), "wb") as f:
            f.write(b"not an ELF file")
        h2 = ts.Host(root, "alerts2", components=comps,
                     limits={"concurrency": 1})
        h2.start()
        ts.current["host"] = h2
        integ = integration(base)
        integ["flows"].append(
            {"name": "tick",
             "trigger": {"type": "schedule", "every": "2s"},
             "steps": [{"name": "t", "action": "core.set",
                        "input": {"value": 1}}]})
        integ["alerts"] = [
            {"name": "late", "when": "schedule_late", "over": "500ms",
             "flows": ["tick"], "repeat": "1h",
             "notify": [{"webhook": {"url": base + "/hook",
                                     "secret": "{{ config.alert_secret }}"}}]},
            {"name": "refused", "when": "component_refused", "repeat": "1h",
             "notify": [{"webhook": {"url": base + "/hook",
                                     "secret": "{{ config.alert_secret }}"}}]}]
        r = h2.deploy(integration=integ,
                      instance={"integration": "alerts-test",
                                "name": INSTANCE,
                                "config": {"alert_secret": SECRET},
                                "connections": {"ops": {"fields":
                                                        {"token": BOT}}}})
        check(r.status == 201, "deploy: %r" % r)
        # Occupy the only worker past a fire time.
        start(h2, "work", {"fail": False, "ms": 3000})
        e = wait_for("no schedule_late alert", lambda: rx.events("late"),
                     20)[0]
        check(e["flow"] == "tick" and e["condition"] == "schedule_late",
              "late: %r" % e)
        # Refusals are checked at start: restart with the deployment.
        h2.signal(ts.signal.SIGTERM)
        check(h2.wait_exit(15) == 0, "the second host did not stop")
        h2.start()
        e = wait_for("no component_refused alert",
                     lambda: rx.events("refused"), 20)[0]
        check("broken.so" in e["component"] and
              e["condition"] == "component_refused", "refused: %r" % e)
        check(not rx.bad, "a delivery did not verify")
    case("a scheduled run that starts late and a component refused at "
         "load both alert", refused_and_late)
    ts.stop(ts.current)
    rx.server.shutdown()


def main():
    return ts.run_suite("ferry-alerts-", cases,
                        (os.path.join(COMPONENTS_BUILD, "http.so"),))


if __name__ == "__main__":
    sys.exit(main())
