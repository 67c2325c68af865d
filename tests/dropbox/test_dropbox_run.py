#!/usr/bin/env python3
"""The dropbox component through the real engine, as a user runs it:
`ferry run` of flows whose steps call dropbox.* against the fake Dropbox
(tests/fixtures/dropbox), with a components directory holding only
dropbox.so and an instance whose connection points at the fake. What is
checked is what a user sees: the run's output and exit status, the
recorded steps (`ferry executions show --json`: error code, message,
retryable, logs), and the files in the fake afterwards. The fake's
request log shows what went over the wire (headers, routes, pages).

Environment (set by CMakeLists.txt):
  FERRY_BIN            the ferry binary
  FERRY_DROPBOX_SO     dropbox.so as built
  FERRY_TEST_KEEP=1    keep the temporary directory

Prints "ok - NAME" or "not ok - NAME: why" per case, then "N passed, M
failed"; exits 1 if anything failed. Python 3 standard library only.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

# Nothing written into the source tree by the imports below.
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dbxfake  # noqa: E402

FERRY = os.environ.get("FERRY_BIN", "build/ferry")
DROPBOX_SO = os.environ.get("FERRY_DROPBOX_SO", "build/components/dropbox.so")
TOKEN = "sl.test-token-" + os.urandom(6).hex()

results = {"passed": 0, "failed": 0}


class Fail(Exception):
    pass


def check(cond, why):
    if not cond:
        raise Fail(why)


def case(name, fn):
    try:
        fn()
        print("ok - " + name, flush=True)
        results["passed"] += 1
    except Exception as e:  # one case's failure never stops the others
        why = str(e) if isinstance(e, Fail) else "%s: %s" % (
            type(e).__name__, e)
        print("not ok - %s: %s" % (name, why.replace("\n", "\n#")),
              flush=True)
        results["failed"] += 1


class Runner:
    """Runs one-flow integrations with `ferry run` in a directory of its
    own, all executions recorded in one store (so cursor_key state
    persists between runs, as it does for an instance)."""

    def __init__(self, root, fake):
        self.root = root
        self.fake = fake
        self.comps = os.path.join(root, "comps")
        os.makedirs(self.comps)
        os.symlink(os.path.abspath(DROPBOX_SO),
                   os.path.join(self.comps, "dropbox.so"))
        self.db = os.path.join(root, "runs.db")
        self.n = 0
        self.prev = None

    def fields(self, **extra):
        f = {"token": TOKEN, "api_url": self.fake.api_url,
             "content_url": self.fake.content_url}
        f.update(extra)
        return f

    def run(self, steps, ctype="dropbox.token", fields=None, body=None):
        """Runs the steps (each gets connection "dbx" unless it names
        none); returns (exit status, output, execution record)."""
        self.n += 1
        for s in steps:
            if "action" in s and s["action"].startswith("dropbox.") and \
                    "connection" not in s:
                s["connection"] = "dbx"
        ig = {"name": "dbx", "version": "1.0.0",
              "connections": {"dbx": {"type": ctype}},
              "flows": [{"name": "main", "trigger": {"type": "manual"},
                         "steps": steps}]}
        inst = {"integration": "dbx", "name": "acme",
                "connections": {"dbx": {"fields": fields or self.fields()}}}
        ig_path = os.path.join(self.root, "ig-%d.json" % self.n)
        in_path = os.path.join(self.root, "in-%d.json" % self.n)
        with open(ig_path, "w") as f:
            json.dump(ig, f)
        with open(in_path, "w") as f:
            json.dump(inst, f)
        argv = [FERRY, "run", ig_path, "--instance", in_path,
                "--components-dir", self.comps, "--db", self.db, "--quiet"]
        if body is not None:
            argv += ["--input", json.dumps(body)]
        p = subprocess.run(argv, capture_output=True, timeout=120,
                           env=dict(os.environ, FERRY_COMPONENTS_DIR=""))
        out = None
        if p.stdout.strip():
            try:
                out = json.loads(p.stdout)
            except ValueError:
                raise Fail("stdout is not JSON: %r" % p.stdout[:300])
        err = p.stderr.decode(errors="replace")
        if "Sanitizer" in err or "runtime error:" in err:
            raise Fail("ferry run reported a memory error:\n" + err[-3000:])
        rec = self.last()
        check(rec["id"] != self.prev, "the run recorded no execution: %s"
              % err[-600:])
        self.prev = rec["id"]
        if p.returncode not in (0, 1):
            raise Fail("ferry run exited %d: %s" % (p.returncode,
                                                    p.stderr.decode()[-600:]))
        return p.returncode, out, rec

    def last(self):
        p = subprocess.run([FERRY, "executions", "list", "--db", self.db,
                            "--limit", "1", "--json"], capture_output=True)
        xs = json.loads(p.stdout or b"[]")
        if not xs:
            return {"id": None}
        xid = xs[0]["id"]
        p = subprocess.run([FERRY, "executions", "show", xid, "--db", self.db,
                            "--json"], capture_output=True)
        return json.loads(p.stdout)

    def ok(self, steps, **kw):
        rc, out, rec = self.run(steps, **kw)
        check(rc == 0, "the run failed: %s: %s" % (rec.get("error_code"),
                                                   rec.get("error_message")))
        return out, rec

    def failed(self, steps, code, retryable, *words, **kw):
        """Runs steps expecting the last one to fail with code; returns the
        execution record."""
        rc, out, rec = self.run(steps, **kw)
        check(rc == 1, "the run did not fail (exit %d, output %r)"
              % (rc, out))
        step = rec["steps"][-1]
        check(step["error_code"] == code, "error %s: %s, not %s"
              % (step["error_code"], step["error_message"], code))
        check(step["retryable"] == retryable, "retryable %r, not %r: %s"
              % (step["retryable"], retryable, step["error_message"]))
        for w in words:
            check(w in step["error_message"], "the message %r does not say %r"
                  % (step["error_message"], w))
        return rec


def step(name, action, **inp):
    return {"name": name, "action": action, "input": inp}


def routes(log, host=None):
    return [r["route"] for r in log if host is None or r["host"] == host]


def cases(root, fake):
    r = Runner(root, fake)
    fake.control("config", {"tokens": [TOKEN], "page_size": 2000})

    def describe():
        p = subprocess.run([FERRY, "components", "describe", "dropbox",
                            "--components-dir", r.comps, "--json"],
                           capture_output=True)
        check(p.returncode == 0, "describe: %s" % p.stderr)
        d = json.loads(p.stdout)
        check([a["id"] for a in d["actions"]] ==
              ["dropbox.list_folder", "dropbox.get_latest_cursor",
               "dropbox.get_metadata", "dropbox.download", "dropbox.upload",
               "dropbox.move", "dropbox.delete"], "actions: %r" % d["actions"])
        check([t["id"] for t in d["triggers"]] == ["dropbox.new_files"],
              "triggers: %r" % d["triggers"])
        conns = {c["id"]: c for c in d["connections"]}
        check(conns["dropbox.oauth2"]["auth"] == "oauth2" and
              conns["dropbox.token"]["auth"] == "bearer", "auth: %r" % conns)
        defaults = {f["name"]: f.get("default")
                    for f in conns["dropbox.oauth2"]["fields"]}
        check(defaults["token_url"] ==
              "https://api.dropboxapi.com/oauth2/token" and
              defaults["api_url"] == "https://api.dropboxapi.com" and
              defaults["content_url"] == "https://content.dropboxapi.com",
              "oauth2 defaults: %r" % defaults)
    case("ferry components describe dropbox: actions, trigger, connection "
         "types with the real hosts as defaults", describe)

    # ---- listing ----

    def pagination():
        fake.reset()
        fake.control("config", {"page_size": 500})
        fake.put_many([("/Many/f%04d.txt" % i, "x" * (i % 7))
                       for i in range(2500)])
        fake.log(clear=True)
        out, _ = r.ok([step("l", "dropbox.list_folder", path="/many")])
        check(out["count"] == 2500 and len(out["entries"]) == 2500,
              "%d entries" % out["count"])
        names = [e["name"] for e in out["entries"]]
        check(names == ["f%04d.txt" % i for i in range(2500)],
              "names out of order or missing")
        e = out["entries"][7]
        for k in (".tag", "path_display", "path_lower", "rev", "size",
                  "server_modified", "content_hash", "id"):
            check(k in e, "an entry has no %s: %r" % (k, e))
        check(e["path_display"] == "/Many/f0007.txt" and e["size"] == 0 and
              e["content_hash"] == dbxfake.content_hash(b""),
              "entry: %r" % e)
        check(out["has_more"] is False and out["cursor"], "has_more/cursor")
        log = routes(fake.log())
        check(log == ["files/list_folder"] +
              ["files/list_folder/continue"] * 4,
              "requests: %r" % log)
        fake.control("config", {"page_size": 2000})
    case("list_folder over 2,500 entries in pages of 500: list_folder, "
         "then continue while has_more", pagination)

    def max_entries():
        fake.control("config", {"page_size": 500})
        out, _ = r.ok([step("l", "dropbox.list_folder", path="/Many",
                            max_entries=600)])
        check(out["count"] == 1000 and out["has_more"] is True,
              "first part: %d, has_more %r" % (out["count"],
                                               out["has_more"]))
        out2, _ = r.ok([step("l", "dropbox.list_folder",
                             cursor=out["cursor"])])
        check(out2["count"] == 1500 and out2["has_more"] is False and
              out2["entries"][0]["name"] == "f1000.txt",
              "the rest: %d from %r" % (out2["count"],
                                        out2["entries"][:1]))
        out3, _ = r.ok([step("l", "dropbox.list_folder", path="/Many",
                             limit=1000)])
        check(out3["count"] == 2500, "with limit: %d" % out3["count"])
        fake.control("config", {"page_size": 2000})
    case("list_folder max_entries stops with has_more and a cursor to go on "
         "from; limit sets the page size", max_entries)

    def recursive():
        fake.reset()
        fake.put("/Tree/a.txt", "a")
        fake.put("/Tree/Sub/b.txt", "bb")
        out, _ = r.ok([step("l", "dropbox.list_folder", path="/Tree/")])
        got = sorted((e[".tag"], e["path_display"]) for e in out["entries"])
        check(got == [("file", "/Tree/a.txt"), ("folder", "/Tree/Sub")],
              "not recursive: %r" % got)
        out, _ = r.ok([step("l", "dropbox.list_folder", path="/tree",
                            recursive=True)])
        got = sorted((e[".tag"], e["path_display"]) for e in out["entries"])
        check(("file", "/Tree/Sub/b.txt") in got and
              ("file", "/Tree/a.txt") in got, "recursive: %r" % got)
        out, _ = r.ok([step("l", "dropbox.list_folder", path="/")])
        check([e["path_display"] for e in out["entries"]] == ["/Tree"],
              "root: %r" % out["entries"])
    case("list_folder recursive, and the root as \"/\"", recursive)

    def cursor_key():
        fake.reset()
        fake.put("/Watch/one.txt", "1")
        out, _ = r.ok([step("l", "dropbox.list_folder", path="/Watch",
                            cursor_key="watch")])
        check([e["name"] for e in out["entries"]] == ["one.txt"],
              "first: %r" % out["entries"])
        out, _ = r.ok([step("l", "dropbox.list_folder", path="/Watch",
                            cursor_key="watch")])
        check(out["entries"] == [], "nothing changed: %r" % out["entries"])
        fake.put("/Watch/two.txt", "2")
        fake.control("put", {"path": "/Elsewhere/x.txt", "text": "x"})
        out, _ = r.ok([step("l", "dropbox.list_folder", path="/Watch",
                            cursor_key="watch")])
        check([(e[".tag"], e["name"]) for e in out["entries"]] ==
              [("file", "two.txt")], "changes: %r" % out["entries"])
        # get_latest_cursor: only what comes after it.
        r.ok([step("c", "dropbox.get_latest_cursor", path="/Watch",
                   cursor_key="late")])
        fake.put("/Watch/three.txt", "3")
        out, _ = r.ok([step("l", "dropbox.list_folder", path="/Watch",
                            cursor_key="late")])
        check([e["name"] for e in out["entries"]] == ["three.txt"],
              "after get_latest_cursor: %r" % out["entries"])
        # A cursor Dropbox resets: the listing starts over.
        fake.reset()
        fake.put("/Watch/four.txt", "4")
        out, rec = r.ok([step("l", "dropbox.list_folder", path="/Watch",
                              cursor_key="watch")])
        check([e["name"] for e in out["entries"]] == ["four.txt"],
              "after a reset: %r" % out["entries"])
        check(any("reset" in (l.get("message") or "")
                  for l in rec.get("logs", [])),
              "no log line about the reset: %r" % rec.get("logs"))
    case("list_folder with cursor_key returns only the changes since the "
         "last call; get_latest_cursor; a reset cursor lists again",
         cursor_key)

    # ---- metadata, move, delete ----

    def metadata():
        fake.reset()
        m = fake.put("/Docs/Report.xml", "<r/>")
        out, _ = r.ok([step("g", "dropbox.get_metadata",
                            path="/docs/report.XML")])
        check(out[".tag"] == "file" and out["rev"] == m["rev"] and
              out["path_display"] == "/Docs/Report.xml", "meta: %r" % out)
        rec = r.failed([step("g", "dropbox.get_metadata", path="/nope.xml")],
                       "FERRY_ENOTFOUND", False, "path/not_found",
                       "files/get_metadata", "'/nope.xml'", "HTTP 409")
        del rec
        out, _ = r.ok([step("g", "dropbox.get_metadata", path="/nope.xml",
                            missing_ok=True)])
        check(out is None, "missing_ok: %r" % out)
        r.failed([step("g", "dropbox.get_metadata", path="no-slash")],
                 "FERRY_EINVAL", False, "HTTP 400", "did not match pattern")
    case("get_metadata: the metadata; path/not_found not retryable; "
         "missing_ok; a malformed path is a 400", metadata)

    def move():
        fake.reset()
        fake.put("/In/a.txt", "A")
        fake.put("/Out/a.txt", "old")
        out, _ = r.ok([step("m", "dropbox.move", from_path="/In/a.txt",
                            to_path="/Archive/2027/a.txt")])
        check(out["metadata"]["path_display"] == "/Archive/2027/a.txt",
              "move: %r" % out)
        tree = fake.tree()
        check("/Archive/2027/a.txt" in tree["files"] and
              "/In/a.txt" not in tree["files"], "tree: %r" % tree)
        r.failed([step("m", "dropbox.move", from_path="/Archive/2027/a.txt",
                       to_path="/Out/a.txt")],
                 "FERRY_EEXISTS", False, "to/conflict/file")
        out, _ = r.ok([step("m", "dropbox.move",
                            from_path="/Archive/2027/a.txt",
                            to_path="/Out/a.txt", autorename=True)])
        check(out["metadata"]["path_display"] == "/Out/a (1).txt",
              "autorename: %r" % out)
        r.failed([step("m", "dropbox.move", from_path="/In/gone.txt",
                       to_path="/Out/b.txt")],
                 "FERRY_ENOTFOUND", False, "from_lookup/not_found")
    case("move: move_v2 creating folders; to/conflict not retryable; "
         "autorename; from_lookup/not_found", move)

    def delete():
        fake.reset()
        m = fake.put("/Del/a.txt", "A")
        fake.put("/Del/b.txt", "B")
        out, _ = r.ok([step("d", "dropbox.delete", path="/Del/a.txt")])
        check(out["deleted"] is True and out["metadata"]["rev"] == m["rev"],
              "delete: %r" % out)
        check("/Del/a.txt" not in fake.tree()["files"], "still there")
        r.failed([step("d", "dropbox.delete", path="/Del/a.txt")],
                 "FERRY_ENOTFOUND", False, "path_lookup/not_found")
        out, _ = r.ok([step("d", "dropbox.delete", path="/Del/a.txt",
                            missing_ok=True)])
        check(out == {"metadata": None, "deleted": False},
              "missing_ok: %r" % out)
        r.failed([step("d", "dropbox.delete", path="/Del/b.txt",
                       parent_rev="0123456789")],
                 "FERRY_EEXISTS", False, "path_write/conflict")
    case("delete: delete_v2; path_lookup/not_found; missing_ok; parent_rev",
         delete)

    # ---- download and upload ----

    def non_ascii():
        fake.reset()
        name = "/Données/Ünï €-\U0001F600.txt"
        fake.put(name, "héllo wörld")
        fake.log(clear=True)
        out, _ = r.ok([
            step("get", "dropbox.download", path=name, **{"as": "text"}),
            step("put", "dropbox.upload", path="/Sortie/Über €.txt",
                 text="{{ steps.get.output.text }}"),
            {"name": "both", "action": "core.set", "input": {"value": {
                "got": "{{ steps.get.output }}",
                "put": "{{ steps.put.output }}"}}}])
        got, put = out["got"], out["put"]
        check(got["text"] == "héllo wörld" and got["name"] ==
              "Ünï €-\U0001F600.txt" and got["path_display"] == name,
              "download: %r" % got)
        meta, data = fake.get("/Sortie/Über €.txt")
        check(data == "héllo wörld".encode() and put["rev"] == meta["rev"] and
              put["path_display"] == "/Sortie/Über €.txt",
              "upload: %r / %r" % (put, data))
        headers = [x["arg_header"] for x in fake.log()
                   if x["route"] in ("files/download", "files/upload")]
        check(len(headers) == 2 and all(h.isascii() for h in headers),
              "raw headers: %r" % headers)
        check('"/Donn\\u00e9es/\\u00dcn\\u00ef \\u20ac-\\ud83d\\ude00.txt"'
              in headers[0], "download's Dropbox-API-Arg: %s" % headers[0])
        check('"/Sortie/\\u00dcber \\u20ac.txt"' in headers[1],
              "upload's Dropbox-API-Arg: %s" % headers[1])
    case("download and upload with non-ASCII names: Dropbox-API-Arg is "
         "ASCII with \\uXXXX escapes (surrogate pairs above U+FFFF); "
         "metadata from Dropbox-API-Result", non_ascii)

    def blob_roundtrip():
        fake.reset()
        data = os.urandom(3 * 1024 * 1024 + 17)
        fake.put("/Bin/data.bin", data)
        fake.log(clear=True)
        out, _ = r.ok([
            step("get", "dropbox.download", path="/Bin/data.bin"),
            step("put", "dropbox.upload", path="/Bin/copy.bin",
                 blob="{{ steps.get.output.blob }}"),
            {"name": "both", "action": "core.set", "input": {"value": {
                "got": "{{ steps.get.output }}",
                "put": "{{ steps.put.output }}"}}}])
        got = out["got"]
        check(got["blob"]["size"] == len(data) and got["size"] == len(data),
              "download: %r" % got)
        meta, copy = fake.get("/Bin/copy.bin")
        check(copy == data, "the copy differs (%d bytes)" % len(copy or b""))
        check(out["put"]["content_hash"] == dbxfake.content_hash(data),
              "content_hash: %r" % out["put"])
        ups = [x for x in fake.log() if x["route"] == "files/upload"]
        check(len(ups) == 1 and ups[0]["arg"]["content_hash"] ==
              dbxfake.content_hash(data) and ups[0]["body_size"] == len(data),
              "upload request: %r" % ups)
    case("a 3 MiB binary file downloaded to a blob and uploaded from it in "
         "one request, with its content_hash", blob_roundtrip)

    def verify():
        fake.reset()
        fake.put("/V/a.bin", b"\x00" * 1000)
        fake.fault("files/download", kind="corrupt")
        r.failed([step("g", "dropbox.download", path="/V/a.bin")],
                 "FERRY_EIO", True, "content_hash mismatch")
        fake.fault("files/download", kind="corrupt")
        r.ok([step("g", "dropbox.download", path="/V/a.bin", verify=False)])
        r.failed([step("g", "dropbox.download", path="/V")],
                 "FERRY_EINVAL", False, "path/not_file")
        r.failed([step("g", "dropbox.download", path="/V/none.bin")],
                 "FERRY_ENOTFOUND", False, "path/not_found",
                 "files/download '/V/none.bin'")
        fake.put("/V/latin1.txt", b"caf\xe9")
        r.failed([step("g", "dropbox.download", path="/V/latin1.txt",
                       **{"as": "text"})], "FERRY_EPARSE", False, "not UTF-8")
    case("download: altered bytes fail on content_hash (retryable); "
         "not_file, not_found; as text refuses non-UTF-8", verify)

    def modes():
        fake.reset()
        first = fake.put("/U/a.txt", "one")
        r.failed([step("u", "dropbox.upload", path="/U/a.txt", text="two")],
                 "FERRY_EEXISTS", False, "path/conflict/file")
        out, _ = r.ok([step("u", "dropbox.upload", path="/U/a.txt",
                            text="one")])
        check(out["rev"] == first["rev"], "identical content is a no-op: %r"
              % out)
        out, _ = r.ok([step("u", "dropbox.upload", path="/U/a.txt",
                            text="two", autorename=True)])
        check(out["path_display"] == "/U/a (1).txt", "autorename: %r" % out)
        out, _ = r.ok([step("u", "dropbox.upload", path="/U/a.txt",
                            text="three", mode="overwrite")])
        check(out["rev"] != first["rev"] and out["size"] == 5,
              "overwrite: %r" % out)
        rev = out["rev"]
        r.failed([step("u", "dropbox.upload", path="/U/a.txt", text="four",
                       mode="update", rev=first["rev"])],
                 "FERRY_EEXISTS", False, "path/conflict")
        out, _ = r.ok([step("u", "dropbox.upload", path="/U/a.txt",
                            text="four", mode="update", rev=rev,
                            client_modified="2020-01-02T03:04:05Z")])
        check(out["rev"] != rev and out["client_modified"] ==
              "2020-01-02T03:04:05Z", "update: %r" % out)
        check(fake.get("/U/a.txt")[1] == b"four", "content after update")
        r.failed([step("u", "dropbox.upload", path="/U/b.txt", text="x",
                       mode="update")],
                 "FERRY_EINVAL", False, "needs the 'rev'")
        r.failed([step("u", "dropbox.upload", path="/U/b.txt")],
                 "FERRY_EINVAL", False, "exactly one of 'blob' and 'text'")
    case("upload modes: add (conflict, identical no-op, autorename), "
         "overwrite, update with rev", modes)

    def session():
        fake.reset()
        data = os.urandom(2 * 1024 * 1024 + 1000)
        fake.put("/S/src.bin", data)
        fake.log(clear=True)
        out, rec = r.ok([
            step("get", "dropbox.download", path="/S/src.bin"),
            step("put", "dropbox.upload", path="/S/Ünï.bin",
                 blob="{{ steps.get.output.blob }}",
                 session_threshold="1MiB", chunk_size="512KiB")])
        check(fake.get("/S/Ünï.bin")[1] == data, "the content differs")
        check(out["content_hash"] == dbxfake.content_hash(data) and
              out["size"] == len(data), "metadata: %r" % out)
        log = [x for x in fake.log() if x["route"].startswith(
            "files/upload_session")]
        check([x["route"].rsplit("/", 1)[1] for x in log] ==
              ["start"] + ["append_v2"] * 3 + ["finish"],
              "requests: %r" % [x["route"] for x in log])
        check([x["body_size"] for x in log] ==
              [524288] * 4 + [len(data) - 4 * 524288],
              "chunk sizes: %r" % [x["body_size"] for x in log])
        offsets = [x["arg"]["cursor"]["offset"] for x in log[1:]]
        check(offsets == [524288, 1048576, 1572864, 2097152],
              "offsets: %r" % offsets)
        fin = log[-1]["arg"]
        check(fin["commit"]["path"] == "/S/Ünï.bin" and
              fin["content_hash"] == dbxfake.content_hash(data) and
              all(x["host"] == "content" for x in log),
              "finish: %r" % fin)
    case("upload above session_threshold: upload session start, append_v2 "
         "per chunk, finish with the commit and content_hash", session)

    def incorrect_offset():
        fake.reset()
        data = os.urandom(2 * 1024 * 1024)
        fake.put("/S/src.bin", data)
        # The session loses the last 1000 bytes it had before the second
        # append: Dropbox answers incorrect_offset, the upload goes back.
        fake.fault("files/upload_session/append_v2", kind="rewind_session",
                   bytes=1000, after=1)
        fake.log(clear=True)
        out, rec = r.ok([
            step("get", "dropbox.download", path="/S/src.bin"),
            step("put", "dropbox.upload", path="/S/back.bin",
                 blob="{{ steps.get.output.blob }}",
                 session_threshold="1MiB", chunk_size="512KiB")])
        check(fake.get("/S/back.bin")[1] == data, "the content differs")
        log = [x for x in fake.log() if x["route"].startswith(
            "files/upload_session")]
        bad = [x for x in log if x.get("tags") == "incorrect_offset"]
        check(len(bad) == 1 and bad[0]["arg"]["cursor"]["offset"] == 1048576,
              "incorrect_offset answers: %r" % bad)
        after = log[log.index(bad[0]) + 1]["arg"]["cursor"]["offset"]
        check(after == 1048576 - 1000, "resumed at %r" % after)
        check(any("going on from there" in (l.get("message") or "")
                  for l in rec["logs"]), "no log line: %r" % rec["logs"])
        # An append whose answer was lost: it is sent again, Dropbox says
        # it has those bytes already, the upload goes forward.
        fake.fault("files/upload_session/append_v2", kind="apply_then_fail",
                   status=500)
        fake.log(clear=True)
        r.ok([step("get", "dropbox.download", path="/S/src.bin"),
              step("put", "dropbox.upload", path="/S/fwd.bin",
                   blob="{{ steps.get.output.blob }}",
                   session_threshold="1MiB", chunk_size="512KiB")])
        check(fake.get("/S/fwd.bin")[1] == data, "the content differs")
        log = [x for x in fake.log() if x["route"].startswith(
            "files/upload_session")]
        statuses = [(x["route"].rsplit("/", 1)[1], x["status"]) for x in log]
        check(statuses == [("start", 200), ("append_v2", 500),
                           ("append_v2", 409), ("append_v2", 200),
                           ("finish", 200)], "requests: %r" % statuses)
        # finish meets incorrect_offset too (nested under lookup_failed).
        fake.fault("files/upload_session/finish", kind="rewind_session",
                   bytes=10)
        r.ok([step("get", "dropbox.download", path="/S/src.bin"),
              step("put", "dropbox.upload", path="/S/fin.bin",
                   blob="{{ steps.get.output.blob }}",
                   session_threshold="1MiB", chunk_size="768KiB")])
        check(fake.get("/S/fin.bin")[1] == data, "the content differs")
    case("upload session: incorrect_offset resumes at the server's "
         "correct_offset, backwards and forwards, in append_v2 and finish",
         incorrect_offset)

    # ---- errors, rate limits ----

    def rate_limited():
        fake.reset()
        fake.put("/R/a.txt", "a")
        fake.fault("files/list_folder", status=429, retry_after=1, json={
            "error_summary": "too_many_requests/..",
            "error": {"reason": {".tag": "too_many_requests"},
                      "retry_after": 1}})
        fake.log(clear=True)
        t0 = time.monotonic()
        out, rec = r.ok([step("l", "dropbox.list_folder", path="/R")])
        took = time.monotonic() - t0
        check(out["count"] == 1, "output: %r" % out)
        check([x["status"] for x in fake.log()] == [429, 200],
              "statuses: %r" % [x["status"] for x in fake.log()])
        check(took >= 1.0, "did not wait for Retry-After: %.2f s" % took)
        check(any("Retry-After" in (l.get("message") or "")
                  for l in rec["logs"]), "no log line: %r" % rec["logs"])
        # Plain text and no header: the body's retry_after is not there
        # either, so the step fails at once, retryable.
        fake.fault("files/list_folder", status=429, text="Too many requests")
        r.failed([step("l", "dropbox.list_folder", path="/R")],
                 "FERRY_ERATELIMIT", True, "HTTP 429")
        fake.fault("files/list_folder", status=429, retry_after=120,
                   json={"error_summary": "too_many_write_operations/..",
                         "error": {"reason": {
                             ".tag": "too_many_write_operations"},
                             "retry_after": 120}})
        r.failed([step("l", "dropbox.list_folder", path="/R")],
                 "FERRY_ERATELIMIT", True, "too_many_write_operations",
                 "Retry-After 120 s is more than 60 s")
        fake.fault("files/list_folder", status=429, retry_after=0, count=4)
        r.failed([step("l", "dropbox.list_folder", path="/R")],
                 "FERRY_ERATELIMIT", True, "still after 3 waits")
    case("429: Retry-After waited for, then success; without a usable wait, "
         "too long, or too often: ERATELIMIT, retryable", rate_limited)

    def server_errors():
        fake.put("/R/a.txt", "a")
        fake.fault("files/list_folder", status=500)
        rec = r.failed([step("l", "dropbox.list_folder", path="/R")],
                       "FERRY_EREMOTE", True, "server error (HTTP 500",
                       "Internal Server Error")
        del rec
        fake.fault("files/download", status=503, text="down for a moment")
        r.failed([step("g", "dropbox.download", path="/R/a.txt")],
                 "FERRY_EUNAVAIL", True, "HTTP 503")
        r.ok([step("l", "dropbox.list_folder", path="/R")])
        fake.fault("files/move_v2", status=409, json={
            "error_summary": "too_many_write_operations/..",
            "error": {".tag": "too_many_write_operations"}})
        r.failed([step("m", "dropbox.move", from_path="/R/a.txt",
                       to_path="/R/b.txt")],
                 "FERRY_ERATELIMIT", True, "too_many_write_operations")
    case("5xx fails the step as retryable (500 EREMOTE, 503 EUNAVAIL); "
         "409 too_many_write_operations is retryable too", server_errors)

    def bad_token():
        rec = r.failed([step("l", "dropbox.list_folder", path="")],
                       "FERRY_EAUTH", False, "invalid_access_token",
                       "HTTP 401", fields=r.fields(token="sl.wrong-one"))
        check("sl.wrong-one" not in rec["steps"][-1]["error_message"],
              "the token is in the message")
    case("401 invalid_access_token with a bearer token: EAUTH, not "
         "retryable", bad_token)

    def no_connection():
        steps = [{"name": "l", "action": "dropbox.list_folder",
                  "input": {"path": ""}}]
        # No "connection" on the step.
        ig = {"name": "dbx", "version": "1.0.0",
              "flows": [{"name": "main", "trigger": {"type": "manual"},
                         "steps": steps}]}
        path = os.path.join(root, "noconn.json")
        with open(path, "w") as f:
            json.dump(ig, f)
        p = subprocess.run([FERRY, "run", path, "--components-dir", r.comps,
                            "--db", r.db], capture_output=True, timeout=60)
        check(p.returncode == 1 and b"FERRY_ECONFIG" in p.stderr and
              b"needs a connection" in p.stderr, "exit %d: %s"
              % (p.returncode, p.stderr[-400:]))
    case("a step without a connection fails with ECONFIG", no_connection)

    def oauth2():
        fake.reset()
        fake.put("/O/a.txt", "a")
        fake.control("config", {"oauth": {
            "client_id": "app-key", "client_secret": "app-secret-123",
            "refresh_tokens": ["rt-long-lived-1"], "codes": [],
            "expires_in": 14400}})
        fields = {"client_id": "app-key", "client_secret": "app-secret-123",
                  "refresh_token": "rt-long-lived-1",
                  "token_url": fake.api_url + "/oauth2/token",
                  "api_url": fake.api_url, "content_url": fake.content_url}
        fake.fault("files/list_folder", kind="expired_token")
        fake.log(clear=True)
        out, rec = r.ok([step("l", "dropbox.list_folder", path="/O"),
                         step("g", "dropbox.download", path="/O/a.txt",
                              **{"as": "text"})],
                        ctype="dropbox.oauth2", fields=fields)
        check(out["text"] == "a", "output: %r" % out)
        log = fake.log()
        tok = [x for x in log if x["route"] == "oauth2/token"]
        check(len(tok) == 2 and all(t["status"] == 200 and
                                    t["grant_type"] == "refresh_token" and
                                    t["client_auth"] == "body" for t in tok),
              "token requests: %r" % tok)
        lists = [x for x in log if x["route"] == "files/list_folder"]
        check([x["status"] for x in lists] == [401, 200] and
              lists[0]["token"] != lists[1]["token"],
              "list_folder: %r" % [(x["status"], x.get("token"))
                                   for x in lists])
        # A refresh token Dropbox no longer accepts.
        bad = dict(fields, refresh_token="rt-revoked")
        r.failed([step("l", "dropbox.list_folder", path="/O")],
                 "FERRY_EAUTH", False, "invalid_grant",
                 ctype="dropbox.oauth2", fields=bad)
    case("dropbox.oauth2: the host's token service refreshes with the "
         "refresh token; expired_access_token (401) is refreshed once and "
         "the request repeated; invalid_grant fails", oauth2)


def main():
    keep = os.environ.get("FERRY_TEST_KEEP") == "1"
    root = tempfile.mkdtemp(prefix="ferry-dropbox-run-")
    fake = dbxfake.Fake(root)
    try:
        cases(root, fake)
    finally:
        fake.stop()
    print("%d passed, %d failed" % (results["passed"], results["failed"]),
          flush=True)
    if results["failed"] or keep:
        print("# kept " + root)
    else:
        shutil.rmtree(root, ignore_errors=True)
    return 1 if results["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
