#!/usr/bin/env python3
"""The sftp component through the engine: `ferry run` of flows whose steps
use an sftp.server connection given in an instance file, against a real
OpenSSH sshd on loopback (sshd.py).

Cases: the description; password, ed25519, ecdsa (OpenSSH and PEM) and
encrypted-key logins; a wrong password, an unknown key, an rsa key, a
wrong passphrase, a wrong pinned fingerprint and no pinned fingerprint
refused with their messages (and not retryable); every action with its
options and errors; paths outside the root refused; one session for all
the steps of a run; a put seen by a concurrent reader only whole; a
connection dropped during a transfer and a stalled server (timeout) failing
the step as retryable.

Environment (set by CMakeLists.txt): FERRY_BIN, SFTP_SO. FERRY_TEST_KEEP=1
keeps the temporary directories.

Prints "ok - NAME" or "not ok - NAME: why" per case, then "N passed, M
failed, K skipped"; exits 1 if anything failed, 77 if sshd is missing.
Python 3 standard library only.
"""

import hashlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sshd  # noqa: E402

FERRY = os.path.abspath(os.environ.get("FERRY_BIN", "build/ferry"))
SFTP_SO = os.path.abspath(os.environ.get("SFTP_SO",
                                         "build/components/sftp.so"))

results = {"passed": 0, "failed": 0, "skipped": 0}

# For the login with an ecdsa key in OpenSSH format, whose parsing leaks
# inside libssh2 1.10 (lsan-libssh2.supp says what). Harmless in a build
# without the sanitizers.
# The slow unwinder sees through OpenSSL's frames, so that the
# suppressions can name its allocators.
LIBSSH2_LEAK = {
    "LSAN_OPTIONS": "suppressions=%s:print_suppressions=0" % (
        os.path.join(os.path.dirname(os.path.abspath(__file__)),
                     "lsan-libssh2.supp")),
    "ASAN_OPTIONS": ":".join(filter(None, [os.environ.get("ASAN_OPTIONS"),
                                           "fast_unwind_on_malloc=0"]))}


class Fail(Exception):
    pass


class Skip(Exception):
    pass


def check(cond, why):
    if not cond:
        raise Fail(why)


def case(name, fn):
    try:
        fn()
        print("ok - " + name, flush=True)
        results["passed"] += 1
    except Skip as e:
        print("ok - %s # SKIP %s" % (name, e), flush=True)
        results["skipped"] += 1
    except Exception as e:  # one case's failure never stops the others
        why = str(e) if isinstance(e, Fail) else "%s: %s" % (
            type(e).__name__, e)
        print("not ok - %s: %s" % (name, why.replace("\n", "\n# ")),
              flush=True)
        results["failed"] += 1


class Run:
    """The result of one `ferry run`."""

    def __init__(self, proc, db):
        self.rc = proc.returncode
        self.out = proc.stdout
        self.err = proc.stderr
        self.db = db
        self.json = None
        if self.rc == 0:
            try:
                self.json = json.loads(self.out)
            except ValueError:
                pass

    def __repr__(self):
        return "exit %s\n  stdout: %s\n  stderr: %s" % (
            self.rc, self.out[-1500:], self.err[-1500:])

    def failed_step(self):
        """(error name, message, retryable) of the failed step."""
        with sqlite3.connect(self.db) as c:
            row = c.execute("SELECT error_code, error_message, retryable "
                            "FROM steps WHERE status = 'failed' "
                            "ORDER BY started_us DESC LIMIT 1").fetchone()
        check(row, "no failed step in the store: %r" % self)
        return row


class Env:
    def __init__(self, server):
        self.s = server
        self.dir = tempfile.mkdtemp(prefix="ferry-sftp-run-")
        self.comps = os.path.join(self.dir, "comps")
        os.makedirs(self.comps)
        os.symlink(SFTP_SO, os.path.join(self.comps, "sftp.so"))
        self.n = 0

    def fields(self, **kw):
        f = {"host": "127.0.0.1", "port": self.s.port,
             "username": self.s.user, "host_key_sha256": self.s.fp,
             "root": self.s.data}
        if "password" not in kw and "private_key" not in kw:
            f["private_key"] = self.s.key_text("ed25519")
        f.update(kw)
        return {k: v for k, v in f.items() if v is not None}

    def run(self, steps, fields=None, body=None, timeout=300, env=None):
        """Runs a flow of steps (each using connection "srv" unless it is
        a jq step) and returns a Run. env: variables to add."""
        self.n += 1
        steps = [dict(s) for s in steps]
        for s in steps:
            if "action" in s and s["action"].startswith("sftp."):
                s.setdefault("connection", "srv")
        ig = {"name": "sftp-test", "version": "1.0.0",
              "connections": {"srv": {"type": "sftp.server"}},
              "flows": [{"name": "main", "trigger": {"type": "manual"},
                         "steps": steps}]}
        inst = {"integration": "sftp-test", "name": "t",
                "connections": {"srv": {"fields": fields or self.fields()}}}
        base = os.path.join(self.dir, "run%d" % self.n)
        with open(base + ".ig.json", "w") as f:
            json.dump(ig, f)
        with open(base + ".inst.json", "w") as f:
            json.dump(inst, f)
        db = base + ".db"
        argv = [FERRY, "run", base + ".ig.json", "--instance",
                base + ".inst.json", "--components-dir", self.comps,
                "--db", db]
        if body is not None:
            argv += ["--input", json.dumps(body)]
        p = subprocess.run(argv, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True,
                           timeout=timeout, cwd=self.dir,
                           env=dict(os.environ, **(env or {})))
        return Run(p, db)

    def ok(self, steps, **kw):
        r = self.run(steps, **kw)
        check(r.rc == 0 and r.json is not None, "the run failed: %r" % r)
        return r.json

    def fails(self, steps, code, *words, retryable=False, **kw):
        r = self.run(steps, **kw)
        check(r.rc == 1, "expected the run to fail: %r" % r)
        check(code in r.err, "stderr does not name %s: %r" % (code, r))
        for w in words:
            check(w in r.err, "stderr does not say %r: %r" % (w, r))
        _, msg, retry = r.failed_step()
        check(bool(retry) == retryable, "retryable is %s, expected %s: %s"
              % (retry, retryable, msg))
        return r

    def cleanup(self):
        if os.environ.get("FERRY_TEST_KEEP") == "1":
            print("# kept " + self.dir)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)


def step(name, action, **inp):
    return {"name": name, "action": action, "input": inp}


def out_step(**refs):
    """A last jq step whose output is an object of earlier outputs."""
    return {"name": "out", "jq": ".",
            "input": {k: "{{ steps.%s.output }}" % v for k, v in refs.items()}}


def write(path, data, server, mtime=None):
    """Writes a file on the server's side, as its user would own it."""
    parent = os.path.dirname(path)
    missing = []
    while not os.path.isdir(parent):
        missing.append(parent)
        parent = os.path.dirname(parent)
    for d in reversed(missing):
        os.mkdir(d)
        server.own(d)
    with open(path, "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())
    server.own(path)
    if mtime:
        os.utime(path, (mtime, mtime))


def read(path):
    with open(path, "rb") as f:
        return f.read()


def own_tree(path, server):
    for base, dirs, files in os.walk(path):
        server.own(base)
        for n in dirs + files:
            server.own(os.path.join(base, n))


def main():
    try:
        server = sshd.Sshd(password=True)
    except sshd.Unavailable as e:
        print("SKIP: %s" % e)
        return sshd.SKIP
    env = None
    try:
        server.start()
        env = Env(server)
        cases(env, server)
    finally:
        if results["failed"]:
            print("# sshd log (tail):\n# " + server.log_tail(30)
                  .replace("\n", "\n# "))
        server.stop()
        if env:
            env.cleanup()
    print("%d passed, %d failed, %d skipped" % (
        results["passed"], results["failed"], results["skipped"]))
    return 1 if results["failed"] else 0


def cases(env, s):
    data = s.data
    D = lambda *p: os.path.join(data, *p)  # noqa: E731
    port = s.port

    def describe():
        p = subprocess.run([FERRY, "components", "describe", "sftp",
                            "--components-dir", env.comps, "--json"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True)
        check(p.returncode == 0, "describe: %s" % p.stderr)
        d = json.loads(p.stdout)
        check([a["id"] for a in d["actions"]] ==
              ["sftp.list", "sftp.stat", "sftp.get", "sftp.put", "sftp.move",
               "sftp.delete", "sftp.mkdir"], "actions: %r" % d["actions"])
        check([t["id"] for t in d["triggers"]] == ["sftp.new_files"],
              "triggers: %r" % d["triggers"])
        conn = d["connections"][0]
        check(conn["id"] == "sftp.server" and conn["auth"] == "custom",
              "connection: %r" % conn)
        names = [f["name"] for f in conn["fields"]]
        check(names == ["host", "port", "username", "password", "private_key",
                        "passphrase", "host_key_sha256",
                        "insecure_skip_host_key_check", "root", "timeout"],
              "fields: %r" % names)
    case("ferry components describe sftp", describe)

    # ---- logins ----

    def password():
        if not s.password:
            raise Skip("not root: sshd checks passwords only as root")
        j = env.ok([step("put", "sftp.put", path="pw/hello.txt",
                         text="hello over a password", parents=True),
                    step("get", "sftp.get", path="pw/hello.txt",
                         **{"as": "text"}),
                    out_step(get="get")],
                   fields=env.fields(password=s.password))
        check(j["get"]["text"] == "hello over a password", "got %r" % j)
        check(read(D("pw", "hello.txt")) == b"hello over a password",
              "the file on the server")
    case("password login", password)

    def keys():
        for name, extra in (("ed25519", {}), ("ecdsa", {}),
                            ("ecdsa_pem", {}),
                            ("ed25519_enc", {"passphrase": s.passphrase})):
            r = env.run([step("st", "sftp.stat", path=".")],
                        fields=env.fields(private_key=s.key_text(name),
                                          **extra),
                        env=LIBSSH2_LEAK if name == "ecdsa" else None)
            check(r.rc == 0 and r.json["type"] == "dir" and
                  r.json["path"] == data, "%s: %r" % (name, r))
    case("key login: ed25519, ecdsa (OpenSSH and PEM), encrypted ed25519 "
         "with its passphrase", keys)

    def wrong_password():
        if not s.password:
            raise Skip("not root: sshd checks passwords only as root")
        env.fails([step("st", "sftp.stat", path=".")], "FERRY_EAUTH",
                  "authentication failed for user '%s' at 127.0.0.1:%d: the "
                  "password was refused" % (s.user, port),
                  "(the server offers: publickey,password)",
                  fields=env.fields(password="not-" + s.password))
    case("a wrong password is refused, not retryable", wrong_password)

    def wrong_key():
        env.fails([step("st", "sftp.stat", path=".")], "FERRY_EAUTH",
                  "authentication failed for user '%s' at 127.0.0.1:%d: the "
                  "public key was refused" % (s.user, port),
                  fields=env.fields(private_key=s.key_text("stranger")))
        r = env.fails([step("st", "sftp.stat", path=".")], "FERRY_EAUTH",
                      "an rsa key needs rsa-sha2 signatures",
                      fields=env.fields(private_key=s.key_text("rsa")))
        env.fails([step("st", "sftp.stat", path=".")], "FERRY_ECONFIG",
                  "the private key cannot be read",
                  "wrong or missing passphrase",
                  fields=env.fields(private_key=s.key_text("ed25519_enc"),
                                    passphrase="wrong"))
        env.fails([step("st", "sftp.stat", path=".")], "FERRY_ECONFIG",
                  "the private key cannot be read",
                  fields=env.fields(private_key="not a key"))
        check(s.passphrase not in r.err, "a secret in the message")
    case("an unknown key, an rsa key (libssh2 1.10), a wrong passphrase and "
         "a broken key are refused", wrong_key)

    def host_key():
        wrong = "SHA256:" + "A" * 43
        env.fails([step("st", "sftp.stat", path=".")], "FERRY_EAUTH",
                  "host key mismatch for 127.0.0.1:%d: expected %s, the "
                  "server presented %s (ssh-ed25519)" % (port, wrong, s.fp),
                  fields=env.fields(host_key_sha256=wrong))
        env.fails([step("st", "sftp.stat", path=".")], "FERRY_ECONFIG",
                  "pins no host key for 127.0.0.1:%d" % port,
                  "it presented %s (ssh-ed25519)" % s.fp,
                  "insecure_skip_host_key_check",
                  fields=env.fields(host_key_sha256=None))
        env.fails([step("st", "sftp.stat", path=".")], "FERRY_ECONFIG",
                  "host_key_sha256 is not a SHA-256 fingerprint",
                  fields=env.fields(host_key_sha256="MD5:12:34"))
        r = env.run([step("st", "sftp.stat", path=".")],
                    fields=env.fields(host_key_sha256=None,
                                      insecure_skip_host_key_check=True))
        check(r.rc == 0 and "host key not checked" in r.err,
              "insecure: %r" % r)
        # As ssh-keygen -lf prints the whole line, and the bare base64.
        line = "256 %s ferry-test-host (ED25519)" % s.fp
        for pin in (line, s.fp[len("SHA256:"):], s.fp[len("SHA256:"):] + "="):
            r = env.run([step("st", "sftp.stat", path=".")],
                        fields=env.fields(host_key_sha256=pin))
            check(r.rc == 0, "pin %r: %r" % (pin, r))
    case("host key: a mismatch names both fingerprints, no pin is refused "
         "(naming the server's), insecure_skip_host_key_check, pin formats",
         host_key)

    def one_session():
        r = env.run([step("a", "sftp.mkdir", path="sess"),
                     step("b", "sftp.put", path="sess/x", text="x"),
                     step("c", "sftp.list", path="sess"),
                     step("d", "sftp.get", path="sess/x"),
                     step("e", "sftp.delete", path="sess", recursive=True)])
        check(r.rc == 0, "%r" % r)
        check(r.err.count("connected to 127.0.0.1:%d" % port) == 1,
              "not one connection: %r" % r)
    case("the steps of a run share one SSH session", one_session)

    # ---- paths ----

    def escapes():
        for p, words in (("../etc/passwd", "a '..' segment is not allowed"),
                         ("/etc/passwd",
                          "it is outside the connection's root '%s'" % data),
                         ("in/../../x", "a '..' segment is not allowed"),
                         (os.path.dirname(data) + "/other",
                          "outside the connection's root")):
            env.fails([step("g", "sftp.get", path=p)], "FERRY_EPERM",
                      "sftp.get: path '%s' is refused" % p, words)
        env.fails([step("p", "sftp.put", path="/tmp/escape.txt", text="x")],
                  "FERRY_EPERM", "outside the connection's root")
        env.fails([step("m", "sftp.move", **{"from": "a", "to": "../b"})],
                  "FERRY_EPERM", "to '../b' is refused")
        env.fails([step("d", "sftp.delete", path=".")], "FERRY_EPERM",
                  "the connection's root '%s' cannot be deleted" % data)
        # A relative root is taken from the login directory; it confines
        # the same way.
        os.makedirs(D("rel", "inner"), exist_ok=True)
        own_tree(D("rel"), s)
        j = env.ok([step("st", "sftp.stat", path=".")],
                   fields=env.fields(root=D("rel", "inner")))
        check(j["path"] == D("rel", "inner"), "%r" % j)
        env.fails([step("g", "sftp.get", path=D("rel", "x"))], "FERRY_EPERM",
                  "outside the connection's root '%s'" % D("rel", "inner"),
                  fields=env.fields(root=D("rel", "inner")))
    case("paths with '..' or outside the root are refused, not retryable",
         escapes)

    # ---- actions ----

    def mkdir():
        j = env.ok([step("a", "sftp.mkdir", path="mk/a/b/c"),
                    step("b", "sftp.mkdir", path="mk/a/b/c"),
                    step("c", "sftp.mkdir", path="mk/p", parents=False,
                         permissions="0700"),
                    out_step(a="a", b="b", c="c")])
        check(j["a"] == {"path": D("mk", "a", "b", "c"), "created": True},
              "%r" % j)
        check(j["b"]["created"] is False, "%r" % j)
        check(os.path.isdir(D("mk", "a", "b", "c")), "not made")
        check(os.stat(D("mk", "p")).st_mode & 0o777 == 0o700, "mode")
        env.fails([step("a", "sftp.mkdir", path="mk/x/y", parents=False)],
                  "FERRY_ENOTFOUND", "creating the directory %s: no such "
                  "file (SSH_FX_NO_SUCH_FILE)" % D("mk", "x", "y"))
        env.fails([step("a", "sftp.mkdir", path="mk/a", exist_ok=False)],
                  "FERRY_EEXISTS", "%s already exists" % D("mk", "a"))
        write(D("mk", "file"), "f", s)
        env.fails([step("a", "sftp.mkdir", path="mk/file/sub")],
                  "FERRY_EINVAL", "creating the directory %s: not a "
                  "directory" % D("mk", "file"))
    case("sftp.mkdir: parents, existing, permissions, errors", mkdir)

    def put_and_stat():
        j = env.ok([step("p", "sftp.put", path="pt/new.txt", text="one",
                         parents=True),
                    step("s", "sftp.stat", path="pt/new.txt"),
                    step("p2", "sftp.put", path="pt/new.txt", text="second",
                         overwrite=True),
                    step("x", "sftp.put", path="pt/mode.sh", text="#!/bin/sh",
                         permissions="0750"),
                    out_step(p="p", s="s", p2="p2")])
        check(j["p"] == {"path": D("pt", "new.txt"), "name": "new.txt",
                         "size": 3}, "%r" % j["p"])
        st = j["s"]
        check(st["type"] == "file" and st["size"] == 3 and
              st["permissions"] == "0644" and st["exists"] is True and
              st["mtime"].endswith("Z") and len(st["mtime"]) == 20,
              "stat: %r" % st)
        check(read(D("pt", "new.txt")) == b"second", "not replaced")
        check(os.stat(D("pt", "mode.sh")).st_mode & 0o777 == 0o750, "mode")
        check(not [n for n in os.listdir(D("pt")) if n.startswith(".")],
              "a temporary file was left: %r" % os.listdir(D("pt")))
        env.fails([step("p", "sftp.put", path="pt/new.txt", text="3")],
                  "FERRY_EEXISTS", "%s already exists (set overwrite to "
                  "replace it)" % D("pt", "new.txt"))
        env.fails([step("p", "sftp.put", path="pt/none/x.txt", text="3")],
                  "FERRY_ENOTFOUND", "no such file")
        env.fails([step("p", "sftp.put", path="pt/y.txt")], "FERRY_EINVAL",
                  "give exactly one of blob and text")
        env.fails([step("p", "sftp.put", path="pt/y.txt", text="y",
                        permissions="rw-r--r--")], "FERRY_EINVAL",
                  "permissions must be an octal string")
        os.symlink(D("pt", "new.txt"), D("pt", "link"))
        j = env.ok([step("a", "sftp.stat", path="pt/link"),
                    step("b", "sftp.stat", path="pt/link",
                         follow_links=False),
                    step("c", "sftp.stat", path="pt"),
                    step("d", "sftp.stat", path="pt/missing",
                         missing_ok=True),
                    out_step(a="a", b="b", c="c", d="d")])
        check(j["a"]["type"] == "file" and j["b"]["type"] == "link" and
              j["c"]["type"] == "dir", "types: %r" % j)
        check(j["d"] == {"path": D("pt", "missing"), "name": "missing",
                         "exists": False}, "missing_ok: %r" % j["d"])
        env.fails([step("s", "sftp.stat", path="pt/missing")],
                  "FERRY_ENOTFOUND", "sftp.stat: reading the attributes of "
                  "%s: no such file (SSH_FX_NO_SUCH_FILE)"
                  % D("pt", "missing"))
    case("sftp.put (text, overwrite, parents, permissions) and sftp.stat",
         put_and_stat)

    def get_and_blobs():
        payload = bytes(range(256)) * 4096 + b"tail"  # 1 MiB + 4, binary
        write(D("gb", "bin.dat"), payload, s, mtime=1700000000)
        write(D("gb", "latin1.txt"), b"caf\xe9", s)
        j = env.ok([step("g", "sftp.get", path="gb/bin.dat",
                         content_type="application/x-test"),
                    step("p", "sftp.put", path="gb/copy.dat",
                         blob="{{ steps.g.output.blob }}"),
                    out_step(g="g", p="p")])
        g = j["g"]
        check(g["size"] == len(payload) and g["name"] == "bin.dat" and
              g["mtime"] == "2023-11-14T22:13:20Z" and
              g["blob"]["size"] == len(payload) and
              g["blob"]["content_type"] == "application/x-test",
              "get: %r" % g)
        check(read(D("gb", "copy.dat")) == payload, "the copy differs")
        env.fails([step("g", "sftp.get", path="gb/latin1.txt",
                        **{"as": "text"})],
                  "FERRY_EPARSE", "is not valid UTF-8 text; get it as a blob")
        env.fails([step("g", "sftp.get", path="gb/bin.dat",
                        max_text_bytes=1000, **{"as": "text"})],
                  "FERRY_ETOOBIG", "is 1048580 bytes, more than "
                  "max_text_bytes (1000)")
        env.fails([step("g", "sftp.get", path="gb")], "FERRY_EINVAL",
                  "%s is a directory" % D("gb"))
        env.fails([step("g", "sftp.get", path="gb/none")],
                  "FERRY_ENOTFOUND", "sftp.get: opening %s: no such file "
                  "(SSH_FX_NO_SUCH_FILE)" % D("gb", "none"))
        if os.geteuid() == 0:
            write(D("gb", "secret"), "s", s)
            os.chown(D("gb", "secret"), 0, 0)
            os.chmod(D("gb", "secret"), 0o600)
            env.fails([step("g", "sftp.get", path="gb/secret")],
                      "FERRY_EPERM", "opening %s: permission denied "
                      "(SSH_FX_PERMISSION_DENIED)" % D("gb", "secret"))
    case("sftp.get to a blob and as text, sftp.put from a blob; errors name "
         "the path and the SFTP status", get_and_blobs)

    def listing():
        for rel in ("ls/a.csv", "ls/b.xml", "ls/.hidden.csv",
                    "ls/sub/c.csv", "ls/sub/deep/d.csv", "ls/.dot/e.csv"):
            write(D(*rel.split("/")), rel, s, mtime=1700000000)
        os.symlink(D("ls", "a.csv"), D("ls", "ln.csv"))
        own_tree(D("ls"), s)
        j = env.ok([step("flat", "sftp.list", path="ls"),
                    step("rec", "sftp.list", path="ls", recursive=True,
                         glob="*.csv", type="file", include_hidden=False),
                    step("sub", "sftp.list", path=D("ls"), recursive=True,
                         glob="sub/*.csv"),
                    step("lim", "sftp.list", path="ls", limit=2),
                    out_step(flat="flat", rec="rec", sub="sub", lim="lim")])
        flat = j["flat"]
        check(flat["path"] == D("ls") and not flat["truncated"],
              "%r" % flat)
        names = [e["name"] for e in flat["entries"]]
        check(names == sorted([".dot", ".hidden.csv", "a.csv", "b.xml",
                               "ln.csv", "sub"]), "flat: %r" % names)
        by = {e["name"]: e for e in flat["entries"]}
        check(by["a.csv"] == {"path": D("ls", "a.csv"), "relative": "a.csv",
                              "name": "a.csv", "type": "file",
                              "size": len("ls/a.csv"),
                              "mtime": "2023-11-14T22:13:20Z",
                              "permissions": "0644"}, "%r" % by["a.csv"])
        check(by["ln.csv"]["type"] == "link" and by["sub"]["type"] == "dir",
              "types: %r" % by)
        rec = [e["relative"] for e in j["rec"]["entries"]]
        check(rec == ["a.csv", "sub/c.csv", "sub/deep/d.csv"],
              "recursive: %r" % rec)
        check([e["relative"] for e in j["sub"]["entries"]] == ["sub/c.csv"],
              "glob with '/': %r" % j["sub"])
        check(j["lim"]["count"] == 2 and j["lim"]["truncated"] is True,
              "limit: %r" % j["lim"])
        env.fails([step("l", "sftp.list", path="ls/none")],
                  "FERRY_ENOTFOUND", "listing %s: no such file"
                  % D("ls", "none"))
    case("sftp.list: entries, recursion, glob, type, hidden names, limit",
         listing)

    def move():
        write(D("mv", "a.txt"), "a", s)
        write(D("mv", "b.txt"), "b", s)
        write(D("mv", "c.txt"), "c", s)
        j = env.ok([step("m", "sftp.move", **{"from": "mv/a.txt",
                                               "to": "mv/done/x/a.txt",
                                               "parents": True}),
                    step("o", "sftp.move", **{"from": "mv/b.txt",
                                               "to": "mv/c.txt",
                                               "overwrite": True}),
                    out_step(m="m")])
        check(j["m"] == {"from": D("mv", "a.txt"),
                         "to": D("mv", "done", "x", "a.txt")}, "%r" % j)
        check(read(D("mv", "done", "x", "a.txt")) == b"a", "moved")
        check(read(D("mv", "c.txt")) == b"b" and
              not os.path.exists(D("mv", "b.txt")), "overwrite")
        write(D("mv", "d.txt"), "d", s)
        env.fails([step("m", "sftp.move", **{"from": "mv/d.txt",
                                              "to": "mv/c.txt"})],
                  "FERRY_EEXISTS", "%s already exists (set overwrite"
                  % D("mv", "c.txt"))
        check(read(D("mv", "c.txt")) == b"b", "replaced without overwrite")
        env.fails([step("m", "sftp.move", **{"from": "mv/none",
                                              "to": "mv/z"})],
                  "FERRY_ENOTFOUND", "renaming %s to %s: no such file"
                  % (D("mv", "none"), D("mv", "z")))
    case("sftp.move: parents, overwrite (atomic), refusing to replace, a "
         "missing source", move)

    def delete():
        write(D("del", "f.txt"), "f", s)
        write(D("del", "tree", "a", "b", "c.txt"), "c", s)
        write(D("del", "tree", "d.txt"), "d", s)
        os.makedirs(D("del", "empty"))
        own_tree(D("del"), s)
        j = env.ok([step("f", "sftp.delete", path="del/f.txt"),
                    step("m", "sftp.delete", path="del/f.txt",
                         missing_ok=True),
                    step("e", "sftp.delete", path="del/empty"),
                    step("t", "sftp.delete", path="del/tree",
                         recursive=True),
                    out_step(f="f", m="m", e="e", t="t")])
        check(j["f"] == {"path": D("del", "f.txt"), "deleted": True,
                         "count": 1}, "%r" % j["f"])
        check(j["m"]["deleted"] is False, "%r" % j["m"])
        check(j["t"]["count"] == 5, "tree count: %r" % j["t"])
        check(os.listdir(D("del")) == [], "left: %r" % os.listdir(D("del")))
        env.fails([step("f", "sftp.delete", path="del/f.txt")],
                  "FERRY_ENOTFOUND", "deleting %s: no such file"
                  % D("del", "f.txt"))
        write(D("del", "full", "x"), "x", s)
        own_tree(D("del"), s)
        env.fails([step("f", "sftp.delete", path="del/full")],
                  "FERRY_EREMOTE", "removing the directory %s" % D("del",
                                                                  "full"),
                  "set recursive")
    case("sftp.delete: a file, missing_ok, an empty directory, a tree, "
         "errors", delete)

    # ---- atomic put ----

    def atomic_put():
        size = 64 * 1024 * 1024
        block = os.urandom(1024 * 1024)
        write(D("at", "src.bin"), block * (size // len(block)), s)
        final = D("at", "out", "big.bin")
        os.makedirs(D("at", "out"))
        own_tree(D("at"), s)
        write(final, b"old content", s)
        seen = {"sizes": set(), "tmp": 0, "looks": 0}
        stop = threading.Event()

        def reader():
            while not stop.is_set():
                for n in os.listdir(D("at", "out")):
                    if n.startswith("."):
                        seen["tmp"] += 1
                    elif n == "big.bin":
                        try:
                            seen["sizes"].add(os.stat(final).st_size)
                        except FileNotFoundError:
                            seen["sizes"].add(-1)
                seen["looks"] += 1
        t = threading.Thread(target=reader, daemon=True)
        t.start()
        try:
            env.ok([step("g", "sftp.get", path="at/src.bin"),
                    step("p", "sftp.put", path="at/out/big.bin",
                         blob="{{ steps.g.output.blob }}",
                         overwrite=True)])
        finally:
            stop.set()
            t.join()
        check(seen["tmp"] > 0, "the reader never saw the upload happen "
              "(%d looks)" % seen["looks"])
        check(seen["sizes"] <= {len(b"old content"), size},
              "the reader saw big.bin at sizes %r (only %d and %d are whole)"
              % (sorted(seen["sizes"]), len(b"old content"), size))
        check(hashlib.sha256(read(final)).digest() ==
              hashlib.sha256(read(D("at", "src.bin"))).digest(),
              "the upload differs")
        check(os.listdir(D("at", "out")) == ["big.bin"],
              "left behind: %r" % os.listdir(D("at", "out")))
    case("sftp.put is atomic: a reader sees the old file or the whole new "
         "one, never part of it", atomic_put)

    # ---- transport failures ----

    def sparse(path, size):
        with open(path, "wb") as f:
            f.truncate(size)
        s.own(path)

    def dropped():
        sparse(D("drop.bin"), 8 * 1024 ** 3)
        before = set(s.sessions())
        p, db = start_run(env, [step("g", "sftp.get", path="drop.bin")])
        try:
            new = wait_transfer(s, p, before)
            for pid in new:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            out, err = p.communicate(timeout=60)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        check(p.returncode == 1, "exit %s: %s" % (p.returncode, err))
        check("FERRY_EIO" in err and "reading %s" % D("drop.bin") in err and
              "the connection failed" in err, "stderr: %s" % err)
        row = failed_step(db)
        check(row[2] == 1, "not retryable: %r" % (row,))
    case("a connection dropped during a transfer fails the step as "
         "retryable", dropped)

    def stalled():
        sparse(D("stall.bin"), 8 * 1024 ** 3)
        before = set(s.sessions())
        # 3 s: long enough that a loaded machine (the suite runs tests in
        # parallel, some under ASan) does not time out before the stop.
        p, db = start_run(env, [step("g", "sftp.get", path="stall.bin")],
                          fields=env.fields(timeout="3s"))
        new = []
        try:
            new = wait_transfer(s, p, before)
            for pid in new:
                os.kill(pid, signal.SIGSTOP)
            t0 = time.monotonic()
            out, err = p.communicate(timeout=60)
            took = time.monotonic() - t0
        finally:
            for pid in new:
                try:
                    os.kill(pid, signal.SIGKILL)
                    os.kill(pid, signal.SIGCONT)
                except OSError:
                    pass
            if p.poll() is None:
                p.kill()
                p.wait()
        check(p.returncode == 1, "exit %s: %s" % (p.returncode, err))
        check("FERRY_ETIMEOUT" in err and "timed out" in err,
              "stderr: %s" % err)
        check(took < 15, "the step took %.1f s to give up" % took)
        row = failed_step(db)
        check(row[2] == 1, "not retryable: %r" % (row,))
    case("a server that stops answering fails the step after the timeout, "
         "retryable", stalled)


def start_run(env, steps, fields=None):
    """Starts `ferry run` in the background; returns (Popen, db path)."""
    env.n += 1
    ig = {"name": "sftp-test", "version": "1.0.0",
          "connections": {"srv": {"type": "sftp.server"}},
          "flows": [{"name": "main", "trigger": {"type": "manual"},
                     "steps": [dict(s, connection="srv") if "action" in s
                               else s for s in steps]}]}
    inst = {"integration": "sftp-test", "name": "t",
            "connections": {"srv": {"fields": fields or env.fields()}}}
    base = os.path.join(env.dir, "bg%d" % env.n)
    with open(base + ".ig.json", "w") as f:
        json.dump(ig, f)
    with open(base + ".inst.json", "w") as f:
        json.dump(inst, f)
    db = base + ".db"
    p = subprocess.Popen([FERRY, "run", base + ".ig.json", "--instance",
                          base + ".inst.json", "--components-dir", env.comps,
                          "--db", db], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, cwd=env.dir)
    return p, db


def wchar(pid):
    """Bytes pid has written so far with write(2), from /proc (a download
    writes its blob's file)."""
    try:
        with open("/proc/%d/io" % pid) as f:
            for line in f:
                if line.startswith("wchar:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def wait_transfer(s, p, before, timeout=20):
    """Waits until the `ferry run` p has written 16 MB to its blob since its
    session started (the download is under way); returns the pids of the
    sshd processes of that session (those not in before)."""
    deadline = time.monotonic() + timeout
    start = None
    while time.monotonic() < deadline and p.poll() is None:
        new = [pid for pid in s.sessions() if pid not in before]
        if new and start is None:
            start = wchar(p.pid)
        if start is not None and wchar(p.pid) - start > 16 * 1024 * 1024:
            return [pid for pid in s.sessions() if pid not in before]
        time.sleep(0.01)
    raise Fail("no transfer under way after %d s (exit %s)"
               % (timeout, p.poll()))


def failed_step(db):
    with sqlite3.connect(db) as c:
        row = c.execute("SELECT error_code, error_message, retryable FROM "
                        "steps WHERE status = 'failed'").fetchone()
    check(row, "no failed step in the store")
    return row


if __name__ == "__main__":
    sys.exit(main())
