#!/usr/bin/env python3
"""A 1 GB file through the sftp component with memory bounded: `ferry run`
of a flow that downloads it from a real sshd (sshd.py) to a blob and
uploads the blob again under another name. The peak resident memory of
that run (VmHWM in /proc, read until it exits) is compared with a run that
only connects and stats; the difference must stay under 64 MB, and the copy
must be the same bytes.

Under the sanitizers (FERRY_SANITIZED=1) the file is 256 MB, since
AddressSanitizer slows the transfer several times over and keeps freed
memory in quarantine (limited here with ASAN_OPTIONS quarantine_size_mb);
the test says so in its output. FERRY_SFTP_LARGE_MB overrides the size.

Environment (set by CMakeLists.txt): FERRY_BIN, SFTP_SO, FERRY_SANITIZED.
Prints "ok - ..." lines with the figures; exits 1 on a failure, 77 if
sshd is missing. Python 3 standard library only.
"""

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sshd  # noqa: E402

FERRY = os.path.abspath(os.environ.get("FERRY_BIN", "build/ferry"))
SFTP_SO = os.path.abspath(os.environ.get("SFTP_SO",
                                         "build/components/sftp.so"))
SANITIZED = os.environ.get("FERRY_SANITIZED") == "1"
MB = 1024 * 1024
SIZE_MB = int(os.environ.get("FERRY_SFTP_LARGE_MB",
                             "256" if SANITIZED else "1024"))
LIMIT_MB = 64


def measured_run(tmp, comps, server, name, steps):
    """Runs steps with `ferry run`; returns (seconds, peak RSS in bytes,
    parsed output)."""
    ig = {"name": "sftp-large", "version": "1.0.0",
          "connections": {"srv": {"type": "sftp.server"}},
          "flows": [{"name": "main", "trigger": {"type": "manual"},
                     "steps": [dict(s, connection="srv") if "action" in s
                               else s for s in steps]}]}
    inst = {"integration": "sftp-large", "name": "t",
            "connections": {"srv": {"fields": {
                "host": "127.0.0.1", "port": server.port,
                "username": server.user, "host_key_sha256": server.fp,
                "private_key": server.key_text("ed25519"),
                "root": server.data}}}}
    base = os.path.join(tmp, name)
    with open(base + ".ig.json", "w") as f:
        json.dump(ig, f)
    with open(base + ".inst.json", "w") as f:
        json.dump(inst, f)
    env = dict(os.environ)
    env["TMPDIR"] = os.path.join(tmp, "blobs")  # where the blob goes
    os.makedirs(env["TMPDIR"], exist_ok=True)
    if SANITIZED:
        extra = "quarantine_size_mb=16"
        env["ASAN_OPTIONS"] = (env["ASAN_OPTIONS"] + ":" + extra
                               if env.get("ASAN_OPTIONS") else extra)
    out = open(base + ".out", "wb")
    err = open(base + ".err", "wb")
    t0 = time.monotonic()
    p = subprocess.Popen([FERRY, "run", base + ".ig.json", "--instance",
                          base + ".inst.json", "--components-dir", comps,
                          "--db", base + ".db"],
                         stdout=out, stderr=err, env=env, cwd=tmp)
    # VmHWM is the peak of the process's own memory since its exec. (The
    # ru_maxrss of wait4 would not do: it keeps the peak of the forked
    # copy of this Python process from before the exec.)
    peak = 0
    while p.poll() is None:
        peak = max(peak, vm_hwm(p.pid))
        time.sleep(0.01)
    took = time.monotonic() - t0
    out.close()
    err.close()
    with open(base + ".err", errors="replace") as f:
        err_text = f.read()
    if p.returncode != 0:
        raise RuntimeError("%s: exit %d: %s" % (name, p.returncode,
                                                 err_text[-2000:]))
    with open(base + ".out") as f:
        result = json.load(f)
    return took, peak, result


def vm_hwm(pid):
    """The peak resident memory of pid in bytes, 0 once it is gone."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


def sha256_of(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(4 * MB)
            if not b:
                return h.hexdigest()
            h.update(b)


def main():
    try:
        server = sshd.Sshd()
    except sshd.Unavailable as e:
        print("SKIP: %s" % e)
        return sshd.SKIP
    tmp = tempfile.mkdtemp(prefix="ferry-sftp-large-")
    failed = False
    try:
        server.start()
        comps = os.path.join(tmp, "comps")
        os.makedirs(comps)
        os.symlink(SFTP_SO, os.path.join(comps, "sftp.so"))
        if SANITIZED:
            print("# sanitizer build: %d MB instead of 1024 MB" % SIZE_MB)

        # The file, written on the server's side: a random 4 MB block
        # repeated, so that it is quick to make and not all zeros.
        src = os.path.join(server.data, "big.bin")
        block = os.urandom(4 * MB)
        h = hashlib.sha256()
        t0 = time.monotonic()
        with open(src, "wb") as f:
            for _ in range(SIZE_MB // 4):
                f.write(block)
                h.update(block)
        server.own(src)
        expected = h.hexdigest()
        print("# made %d MB in %.1f s" % (SIZE_MB, time.monotonic() - t0))

        _, base_rss, _ = measured_run(
            tmp, comps, server, "baseline",
            [{"name": "s", "action": "sftp.stat", "input": {"path": "."}}])
        took, rss, result = measured_run(
            tmp, comps, server, "large",
            [{"name": "get", "action": "sftp.get",
              "input": {"path": "big.bin"}},
             {"name": "put", "action": "sftp.put",
              "input": {"path": "big-copy.bin",
                        "blob": "{{ steps.get.output.blob }}"}},
             {"name": "out", "jq": ".",
              "input": {"get": "{{ steps.get.output }}",
                        "put": "{{ steps.put.output }}"}}])
        size = SIZE_MB * MB
        growth = rss - base_rss
        rate = 2 * size / MB / took
        print("# %d MB down and up in %.1f s (%.0f MB/s both ways); peak RSS "
              "%.1f MB, baseline %.1f MB, growth %.1f MB (limit %d MB)"
              % (SIZE_MB, took, rate, rss / MB, base_rss / MB, growth / MB,
                 LIMIT_MB))
        if result["get"]["size"] != size or result["put"]["size"] != size:
            print("not ok - sizes: %r" % result)
            failed = True
        else:
            print("ok - %d MB downloaded to a blob and uploaded: sizes" %
                  SIZE_MB)
        got = sha256_of(os.path.join(server.data, "big-copy.bin"))
        if got != expected:
            print("not ok - the copy differs (sha256 %s, expected %s)"
                  % (got, expected))
            failed = True
        else:
            print("ok - the copy has the same bytes")
        if growth >= LIMIT_MB * MB:
            print("not ok - memory grew by %.1f MB (limit %d MB)"
                  % (growth / MB, LIMIT_MB))
            failed = True
        else:
            print("ok - memory grew by %.1f MB, under %d MB"
                  % (growth / MB, LIMIT_MB))
    except Exception as e:
        print("not ok - %s: %s" % (type(e).__name__, e))
        failed = True
    finally:
        server.stop()
        if os.environ.get("FERRY_TEST_KEEP") == "1":
            print("# kept " + tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
