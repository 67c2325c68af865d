#!/usr/bin/env python3
"""Hostile input to `ferry serve`'s HTTP API and webhooks, each with the
answer a client must get and nothing stored: truncated bodies, a wrong
Content-Length, invalid UTF-8, deeply nested JSON, huge numbers, NUL bytes
in names, path traversal in instance names, line breaks in values that
would end up in headers, oversized headers, a client that sends its
request slowly, and thousands of idle connections while /healthz keeps
answering.

Environment: as for test_serve.py. Prints "ok - NAME" / "not ok - NAME:
why", then "N passed, M failed". Python 3 standard library only.
"""

import json
import os
import resource
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_serve as ts  # noqa: E402
from test_serve import check, case  # noqa: E402

IDLE = 2000 if ts.SANITIZED else 10000


def raw(port, data, timeout=10, read=True):
    """Sends bytes on a fresh connection; returns (status, body text)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(data)
        if not read:
            return None, ""
        buf = b""
        while True:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            buf += chunk
            head, _, body = buf.partition(b"\r\n\r\n")
            if b"content-length:" in head.lower():
                n = int([ln for ln in head.split(b"\r\n")
                         if ln.lower().startswith(b"content-length:")][0]
                        .split(b":")[1])
                if len(body) >= n:
                    break
        line = buf.split(b"\r\n", 1)[0].decode("latin-1")
        status = int(line.split()[1]) if line.startswith("HTTP/") else 0
        return status, buf.partition(b"\r\n\r\n")[2].decode("utf-8",
                                                            "replace")
    finally:
        s.close()


def post(port, path, body, ctype="application/json", extra=b"",
         length=None):
    n = len(body) if length is None else length
    req = (b"POST %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
           b"Content-Type: %s\r\nContent-Length: %d\r\n%s"
           b"Connection: close\r\n\r\n" % (path.encode(), ts.TOKEN.encode(),
                                           ctype.encode(), n, extra)) + body
    return raw(port, req)


def count(h):
    r = h.get("/api/v1/executions", query={"limit": 10000})
    check(r.status == 200, "list: %r" % r)
    return len(r.json)


def cases(root):
    # Room for the idle connections, in this process and the host it starts.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < IDLE + 400:
        resource.setrlimit(resource.RLIMIT_NOFILE,
                           (min(IDLE + 400, hard), hard))
    h = ts.Host(root, "hostile")
    h.start()
    ts.current["host"] = h
    h.deploy()
    start_path = "/api/v1/instances/%s/flows/echo/executions" % ts.INSTANCE
    state = {"before": count(h)}

    def bodies():
        port = h.port
        table = [
            ("invalid JSON", b'{"a": ', 400, "invalid JSON"),
            ("invalid UTF-8", b'{"a": "\xff\xfe"}', 400, ""),
            ("a JSON array, not an object",
             b'{"integration": [1], "instance": 2}', 400, ""),
            ("deeply nested JSON", b"[" * 100000 + b"]" * 100000, 400, ""),
            ("a huge number", b'{"n": 1' + b"0" * 5000 + b"}", None, ""),
        ]
        for name, body, want, text in table:
            st, out = post(port, "/api/v1/instances", body)
            check(st in (400, 413, 422) if want else st in (400, 413, 201),
                  "%s: answered %s %r" % (name, st, out[:200]))
            check(not text or text in out, "%s: %r" % (name, out[:200]))
        # Truncated: the length says more than comes; the host must not
        # hang on it forever nor take it.
        st, out = post(port, start_path, b'{"value": 1}', length=100)
        check(st in (0, 400, 408), "truncated body: %s %r" % (st, out[:200]))
        check(count(h) == state["before"], "something was stored")
    case("bad bodies are refused with a clear status and nothing stored",
         bodies)

    def names():
        port = h.port
        for bad in ("..%2F..%2Fetc", "a%00b", "%2e%2e", "x%0d%0aSet-Cookie:%20a"):
            st, out = raw(port, b"GET /api/v1/instances/%s HTTP/1.1\r\n"
                          b"Host: x\r\nAuthorization: Bearer %s\r\n"
                          b"Connection: close\r\n\r\n"
                          % (bad.encode(), ts.TOKEN.encode()))
            check(st in (400, 404), "instance name %s: %s %r"
                  % (bad, st, out[:200]))
        # Deploying an instance whose name would escape the deployments
        # directory or carry a NUL.
        integ = ts.INTEGRATION
        for name in ("../evil", "a\u0000b", ".hidden", "a/b"):
            inst = dict(ts.INSTANCE_DOC, name=name)
            r = h.request("POST", "/api/v1/instances",
                          {"integration": integ, "instance": inst})
            check(r.status in (400, 422), "instance name %r: %r"
                  % (name, r))
        files = os.listdir(h.deployments)
        check(not any("evil" in f or f.startswith(".h") for f in files),
              "deployments: %r" % files)
        check(not os.path.exists(os.path.join(root, "evil.instance.json")),
              "a file was written outside the deployments directory")
    case("path traversal and NUL bytes in names are refused", names)

    def header_values():
        # A webhook's core.respond header with a line break is refused, and
        # no header is injected.
        st, out = raw(h.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
                      b"X-A: " + b"a" * 70000 + b"\r\nConnection: close\r\n\r\n")
        check(st in (0, 400, 413, 431), "oversized header: %s" % st)
        r = h.get("/healthz", token=None)
        check(r.status == 200, "health after: %r" % r)
    case("an oversized header is refused and the host goes on", header_values)

    def slow_client():
        s = socket.create_connection(("127.0.0.1", h.port), timeout=30)
        s.sendall(b"POST %s HTTP/1.1\r\nHost: x\r\n" % start_path.encode())
        t0 = time.monotonic()
        # Meanwhile others are served.
        r = h.get("/healthz", token=None)
        check(r.status == 200, "health while a client dawdles: %r" % r)
        s.settimeout(30)
        try:
            data = s.recv(1024)
        except OSError:
            data = b""
        took = time.monotonic() - t0
        s.close()
        print("# a client that stopped mid-request was closed after %.1f s"
              % took, flush=True)
        check(took < 30, "the host kept a half request open for 30 s")
        check(not data or b" 408 " in data or b" 400 " in data,
              "answer: %r" % data[:100])
    case("a client that stops mid-request is timed out; others are served",
         slow_client)

    def idle_connections():
        n = min(IDLE, resource.getrlimit(resource.RLIMIT_NOFILE)[0] - 200)
        socks = []
        t0 = time.monotonic()
        try:
            for _ in range(n):
                socks.append(socket.create_connection(("127.0.0.1", h.port),
                                                      timeout=10))
            worst = 0.0
            for _ in range(20):
                t = time.monotonic()
                r = h.get("/healthz", token=None)
                worst = max(worst, time.monotonic() - t)
                check(r.status == 200, "healthz with %d idle connections: %r"
                      % (n, r))
            print("# %d idle connections opened in %.1f s; /healthz worst "
                  "%.1f ms" % (n, time.monotonic() - t0, worst * 1000),
                  flush=True)
        finally:
            for s in socks:
                s.close()
    case("thousands of idle connections: /healthz keeps answering",
         idle_connections)
    ts.stop(ts.current)


def main():
    return ts.run_suite("ferry-hostile-", cases, ())


if __name__ == "__main__":
    sys.exit(main())
