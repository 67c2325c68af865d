#!/usr/bin/env python3
"""The dropbox component in `ferry serve`: a real host (the Host helper of
tests/serve/test_serve.py) with dropbox.so, and the fake Dropbox
(tests/fixtures/dropbox) holding the files.

- dropbox.new_files: files that appear in the fake's folder each run once
  and are moved to .done/ (or .error/ when the flow failed) by the next
  poll; hidden files and other extensions are left alone; a file that
  comes back changed (a new rev) runs again, and its disposal finds
  .done/NAME taken and picks another name; a recursive watch keeps the
  relative path; a file the flow deleted itself counts as disposed.
- A webhook flow with "verify": {"scheme": "dropbox"}: the GET challenge is
  echoed (text/plain, nosniff); a notification signed with the app secret
  runs the flow, which lists what changed since the last notification
  (dropbox.list_folder with cursor_key); a tampered or missing
  X-Dropbox-Signature is refused and runs nothing.

Environment (set by CMakeLists.txt): FERRY_BIN, FERRY_SERVE_DEFS (for
test_serve.py), FERRY_DROPBOX_SO. FERRY_TEST_KEEP=1 keeps the temporary
directory. Prints "ok - NAME" or "not ok - NAME: why" per case, then "N
passed, M failed"; exits 1 if anything failed. Python 3 standard library
only.
"""

import hashlib
import hmac
import http.client
import json
import os
import re
import shutil
import sys
import time

# Nothing written into the source tree by the imports below.
sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.environ.get("FERRY_SERVE_DEFS") or
                os.path.join(HERE, "..", "serve"))
import dbxfake  # noqa: E402
import test_serve as ts  # noqa: E402
from test_serve import check, case  # noqa: E402

DROPBOX_SO = os.environ.get("FERRY_DROPBOX_SO", "build/components/dropbox.so")
INSTANCE = "dbx-acme"
TOKEN = "sl.serve-" + os.urandom(6).hex()
# The self-made vector of the protocol reference (section 8).
SECRET = "app_secret_example"
NOTIFICATION = (b'{"list_folder": {"accounts": '
                b'["dbid:AAH4f99T0taONIb-OurWxbNQ6ywGRopQngc"]}}')
NOTIFICATION_SIG = \
    "fefd2407288a112d5a540c1663bb570ee986d14dcc81d3a3e91c03b96a9a7110"


def integration():
    def poll(path, recursive=False, files=None):
        return {"type": "poll", "source": "dropbox.new_files", "every": "1s",
                "connection": "dbx",
                "options": {"path": path, "recursive": recursive},
                "files": files or {"read_lock_interval": "300ms"}}

    return {
        "name": "dropbox-serve", "version": "1.0.0",
        "config": {"app_secret": {"type": "string", "required": True}},
        "connections": {"dbx": {"type": "dropbox.token"}},
        "flows": [
            {"name": "inbox",
             "trigger": poll("/Inbox", files={
                 "include": "*.xml", "read_lock_interval": "300ms"}),
             "steps": [
                 {"name": "bad", "jq": ".name | startswith(\"bad\")",
                  "input": "{{ trigger.item }}"},
                 {"name": "check", "branch": [
                     {"when": "{{ steps.bad.output }}", "steps": [
                         {"name": "fail", "action": "core.fail",
                          "input": {"message":
                                    "bad file {{ trigger.item.name }}"}}]}],
                  "else": [
                      {"name": "get", "action": "dropbox.download",
                       "connection": "dbx",
                       "input": {"path": "{{ trigger.item.path }}",
                                 "as": "text"}},
                      {"name": "ok", "action": "core.set", "input": {
                          "value": {"name": "{{ trigger.item.name }}",
                                    "rev": "{{ steps.get.output.rev }}",
                                    "text": "{{ steps.get.output.text }}"}}}
                  ]}]},
            {"name": "deep",
             "trigger": poll("/Deep", recursive=True,
                             files={"read_lock": "none"}),
             "steps": [{"name": "item", "action": "core.set",
                        "input": {"value": "{{ trigger.item }}"}}]},
            {"name": "consume",
             "trigger": poll("/Consume", files={"read_lock": "none"}),
             "steps": [{"name": "gone", "action": "dropbox.delete",
                        "connection": "dbx",
                        "input": {"path": "{{ trigger.item.path }}"}}]},
            {"name": "hook",
             "trigger": {"type": "webhook", "methods": ["GET", "POST"],
                         "verify": {"scheme": "dropbox",
                                    "secret": "{{ config.app_secret }}"}},
             "steps": [
                 {"name": "changes", "action": "dropbox.list_folder",
                  "connection": "dbx",
                  "input": {"path": "/Hooked", "cursor_key": "hooked"}},
                 {"name": "names",
                  "jq": "[.entries[] | select(.[\".tag\"] == \"file\") "
                        "| .name]",
                  "input": "{{ steps.changes.output }}"}]}]}


def executions(h, flow):
    r = h.get("/api/v1/executions", query={"instance": INSTANCE,
                                           "flow": flow, "limit": 10000,
                                           "oldest_first": "true"})
    check(r.status == 200 and isinstance(r.json, list),
          "executions list: %r" % r)
    xs = [h.execution(x["id"]) for x in r.json]
    return sorted(xs, key=lambda x: (x.get("created") or "", x["id"]))


def ended_polls(h, flow):
    """The poll runs of flow that have ended."""
    return [x for x in executions(h, flow) if x["status"] in ts.FINAL]


def wait_for(what, fn, timeout=30, every=0.1):
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        check(time.monotonic() < deadline, "after %.0f s: %s" % (timeout,
                                                                 what))
        time.sleep(every)


def final(h, flow, n):
    """The flow's executions once there are n and all have ended."""
    def done():
        xs = executions(h, flow)
        if len(xs) >= n and all(x["status"] in ts.FINAL for x in xs):
            return xs
        return None
    return wait_for("%s: %d ended executions" % (flow, n), done)


def files_under(fake, prefix):
    return sorted(p for p in fake.tree()["files"] if p.startswith(prefix))


class Raw:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = {k.lower(): v for k, v in headers}
        self.body = body

    def __repr__(self):
        return "HTTP %d %r" % (self.status, self.body[:200])


def hook(h, method, body=b"", headers=None, query=""):
    path = "/webhooks/%s/hook" % INSTANCE + ("?" + query if query else "")
    c = http.client.HTTPConnection("127.0.0.1", h.port, timeout=10)
    try:
        c.request(method, path, body=body or None, headers=headers or {})
        r = c.getresponse()
        return Raw(r.status, r.getheaders(), r.read())
    finally:
        c.close()


def sign(body):
    return hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()


def cases(root):
    fake = dbxfake.Fake(root)
    try:
        run_cases(root, fake)
    finally:
        fake.stop()


def run_cases(root, fake):
    fake.control("config", {"tokens": [TOKEN]})
    comps = os.path.join(root, "components")
    os.makedirs(comps)
    shutil.copyfile(DROPBOX_SO, os.path.join(comps, "dropbox.so"))
    h = ts.Host(root, "dbx", limits={"timeout": "30s"}, components=comps)
    h.start()
    ts.current["host"] = h

    def deploy():
        r = h.deploy(integration=integration(), instance={
            "integration": "dropbox-serve", "name": INSTANCE,
            "config": {"app_secret": SECRET},
            "connections": {"dbx": {"fields": {
                "token": TOKEN, "api_url": fake.api_url,
                "content_url": fake.content_url}}}})
        check(r.status == 201, "deploy answered %r" % r)
    case("deploy poll flows over dropbox.new_files and a dropbox-verified "
         "webhook", deploy)

    def done_once():
        a = fake.put("/Inbox/a.xml", "<a>1</a>")
        fake.put("/Inbox/bad1.xml", "<bad/>")
        fake.put("/Inbox/note.txt", "not xml")
        fake.put("/Inbox/.hidden.xml", "<h/>")
        xs = final(h, "inbox", 2)
        got = sorted((x["status"], x["trigger"]["item"]["name"]) for x in xs)
        check(got == [("failed", "bad1.xml"), ("succeeded", "a.xml")],
              "outcomes: %r" % got)
        ok = next(x for x in xs if x["status"] == "succeeded")
        item = ok["trigger"]["item"]
        check(item["path"] == "/Inbox/a.xml" and item["relative"] == "a.xml"
              and item["size"] == 8 and item["rev"] == a["rev"] and
              item["content_hash"] == a["content_hash"] and
              isinstance(item["mtime"], int) and
              abs(item["mtime"] - time.time()) < 120 and
              item["key"].startswith("a.xml|"),
              "the item: %r" % item)
        check(ok["output"] == {"name": "a.xml", "rev": a["rev"],
                               "text": "<a>1</a>"},
              "output: %r" % ok["output"])
        bad = next(x for x in xs if x["status"] == "failed")
        check("bad file bad1.xml" in ts.message(bad), ts.message(bad))
        want = ["/Inbox/.done/a.xml", "/Inbox/.error/bad1.xml",
                "/Inbox/.hidden.xml", "/Inbox/note.txt"]
        wait_for("not disposed of: %r" % files_under(fake, "/Inbox/"),
                 lambda: files_under(fake, "/Inbox/") == want)
        check(fake.get("/Inbox/.done/a.xml")[1] == b"<a>1</a>",
              "content changed")
        time.sleep(2.5)  # more polls: nothing runs again
        check(len(executions(h, "inbox")) == 2, "files ran again")
        # Every poll run that ended succeeded (the newest may still be
        # queued or running: the poll runs every second).
        polls = ended_polls(h, "inbox:poll")
        check(polls and all(p["status"] == "succeeded" for p in polls),
              "poll runs: %r" % [(p["status"], ts.message(p)) for p in polls
                                 if p["status"] != "succeeded"][:5])
    case("new files run once each, then .done/ or .error/ by the next poll; "
         "hidden and excluded files stay", done_once)

    def changed():
        v1 = fake.put("/Inbox/c.xml", "<c>v1</c>")
        wait_for("c.xml v1 not moved",
                 lambda: "/Inbox/.done/c.xml" in files_under(fake, "/Inbox/")
                 and "/Inbox/c.xml" not in files_under(fake, "/Inbox/"))
        time.sleep(1.1)  # another server_modified second
        v2 = fake.put("/Inbox/c.xml", "<c>v2</c>")  # the same size
        check(v2["rev"] != v1["rev"], "no new rev")
        xs = [x for x in final(h, "inbox", 4)
              if x["trigger"]["item"]["name"] == "c.xml"]
        check([(x["status"], x["output"]["text"], x["output"]["rev"])
               for x in xs] == [("succeeded", "<c>v1</c>", v1["rev"]),
                                ("succeeded", "<c>v2</c>", v2["rev"])],
              "c.xml executions: %r" % [(x["status"], x.get("output"))
                                        for x in xs])

        def moved():
            fs = files_under(fake, "/Inbox/.done/")
            extra = [p for p in fs if re.match(r"^/Inbox/\.done/c\.xml\.\d+$",
                                               p)]
            return extra if "/Inbox/c.xml" not in fs and extra else None
        extra = wait_for("v2 not moved beside v1: %r"
                         % files_under(fake, "/Inbox/"), moved)
        check(fake.get("/Inbox/.done/c.xml")[1] == b"<c>v1</c>" and
              fake.get(extra[0])[1] == b"<c>v2</c>",
              ".done/ contents: %r" % files_under(fake, "/Inbox/.done/"))
    case("a file that comes back with a new rev runs again; .done/NAME "
         "taken, it is moved to NAME.<ms>", changed)

    def deep():
        fake.put("/Deep/top.csv", "t")
        fake.put("/Deep/x/y/z.csv", "z")
        fake.put("/Deep/.git/config.csv", "hidden folder")
        xs = final(h, "deep", 2)
        rels = sorted(x["output"]["relative"] for x in xs)
        check(rels == ["top.csv", "x/y/z.csv"], "relative paths: %r" % rels)
        paths = sorted(x["output"]["path"] for x in xs)
        check(paths == ["/Deep/top.csv", "/Deep/x/y/z.csv"],
              "paths: %r" % paths)
        wait_for("not disposed of: %r" % files_under(fake, "/Deep/"),
                 lambda: files_under(fake, "/Deep/") ==
                 ["/Deep/.done/top.csv", "/Deep/.done/x/y/z.csv",
                  "/Deep/.git/config.csv"])
        time.sleep(2)
        check(len(executions(h, "deep")) == 2, "ran again")
    case("recursive: the relative path is kept into .done/; folders "
         "starting with '.' are skipped", deep)

    def consumed():
        fake.put("/Consume/once.txt", "1")
        xs = final(h, "consume", 1)
        check(xs[0]["status"] == "succeeded", "consume: %s" %
              ts.message(xs[0]))
        time.sleep(2.5)  # the disposal finds the file gone
        check(files_under(fake, "/Consume/") == [], "left: %r"
              % files_under(fake, "/Consume/"))
        check(len(executions(h, "consume")) == 1, "ran again")
        with open(h.log_path, errors="replace") as f:
            log = f.read()
        check("cannot dispose" not in log, "a disposal error was logged")
        moves = [x for x in fake.log() if x["route"] == "files/move_v2" and
                 x["arg"]["from_path"] == "/Consume/once.txt"]
        check(moves and moves[0]["status"] == 409 and
              moves[0]["tags"] == "from_lookup/not_found",
              "the move to .done/: %r" % moves)
        polls = ended_polls(h, "consume:poll")
        check(all(p["status"] == "succeeded" for p in polls),
              "poll runs failed: %r" % [ts.message(p) for p in polls
                                        if p["status"] != "succeeded"][:3])
    case("a file the flow deleted counts as disposed of: no error, no rerun",
         consumed)

    def challenge():
        before = len(executions(h, "hook"))
        r = hook(h, "GET", query="challenge=abc%20123")
        check(r.status == 200 and r.body == b"abc 123", "challenge: %r" % r)
        check(r.headers.get("content-type", "").startswith("text/plain"),
              "content type %r" % r.headers.get("content-type"))
        check(r.headers.get("x-content-type-options") == "nosniff",
              "X-Content-Type-Options %r" %
              r.headers.get("x-content-type-options"))
        r = hook(h, "GET")
        check(r.status == 401, "GET without a challenge: %r" % r)
        time.sleep(0.3)
        check(len(executions(h, "hook")) == before, "a GET ran the flow")
    case("webhook: the GET challenge is echoed as text/plain with nosniff "
         "and runs nothing", challenge)

    def notified():
        check(sign(NOTIFICATION) == NOTIFICATION_SIG,
              "the test's signing does not match the reference vector")
        fake.put("/Hooked/one.txt", "1")
        r = hook(h, "POST", NOTIFICATION, {
            "Content-Type": "application/json",
            "X-Dropbox-Signature": NOTIFICATION_SIG})
        check(r.status == 202, "signed notification: %r" % r)
        x = h.wait_done(json.loads(r.body)["id"])
        check(x["status"] == "succeeded" and x["output"] == ["one.txt"],
              "first notification: %s %r %s" % (x["status"], x.get("output"),
                                                ts.message(x)))
        check(x["trigger"]["body"] == json.loads(NOTIFICATION),
              "trigger body: %r" % x["trigger"].get("body"))
        fake.put("/Hooked/two.txt", "2")
        r = hook(h, "POST", NOTIFICATION, {
            "Content-Type": "application/json",
            "X-Dropbox-Signature": NOTIFICATION_SIG})
        check(r.status == 202, "second notification: %r" % r)
        x = h.wait_done(json.loads(r.body)["id"])
        check(x["status"] == "succeeded" and x["output"] == ["two.txt"],
              "second notification lists only the change: %r"
              % x.get("output"))
    case("webhook: a signed notification runs the flow, which lists what "
         "changed since the last one (cursor_key)", notified)

    def refused():
        before = len(executions(h, "hook"))
        tampered = NOTIFICATION.replace(b"dbid:AAH4", b"dbid:AAH5")
        for headers, why in (
                ({"X-Dropbox-Signature": NOTIFICATION_SIG}, "tampered body"),
                ({"X-Dropbox-Signature": "0" * 64}, "wrong signature"),
                ({}, "no signature")):
            headers["Content-Type"] = "application/json"
            body = tampered if why == "tampered body" else NOTIFICATION
            r = hook(h, "POST", body, headers)
            check(r.status == 401, "%s: %r" % (why, r))
        time.sleep(0.3)
        check(len(executions(h, "hook")) == before, "a refused request ran")
    case("webhook: a tampered body, a wrong or a missing X-Dropbox-Signature "
         "is refused with 401 and runs nothing", refused)


def main():
    return ts.run_suite("ferry-dropbox-serve-", cases, (DROPBOX_SO,))


if __name__ == "__main__":
    sys.exit(main())
