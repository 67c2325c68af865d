#!/usr/bin/env python3
"""Loopback HTTP(S) server for the HTTP client tests.

Usage: server.py DIR

Listens on 127.0.0.1 on three ports the kernel picks: two plain HTTP
listeners (two origins, for redirects across origins) and one HTTPS
listener whose certificate is issued by a test CA generated in DIR with
openssl. Prints one JSON line {"http", "http2", "https", "ca"} on stdout
once all three listen, then serves until killed or until the process that
started it exits.

Routes (any method):
  /echo...                  the request as JSON: method, path, query (raw),
                            args, headers ([name, value] pairs), body (text
                            up to 64 KiB, else null), body_size, body_fnv
                            (FNV-1a 64, hex)
  /status/CODE?body=&repeat=N&type=&h=Name:Value
  /retry/KEY?n=N&after=V&code=429
                            the first N requests of KEY answer CODE with
                            Retry-After V ("date+S": an HTTP-date S seconds
                            ahead), then 200 {"attempts": n}
  /redirect/CODE?to=URL     CODE with Location: URL
  /chain/N                  302 to /chain/N-1; /chain/0 echoes
  /large?size=N             N bytes, byte i being i % 251
  /auth/basic?user=&pass=   200 if the Authorization matches, else 401
  /auth/bearer?token=       (the 401 body echoes the Authorization
  /auth/header?name=&key=    received, to show that messages hide it)
  /auth/query?name=&key=
  /oauth/KEY?good=TOKEN     200 if Authorization is Bearer TOKEN, else 401
  /count/KEY                {"count": requests seen for KEY}
  /delay?ms=N               waits, then 200
  /content?type=&body=&b64= a body with this Content-Type
  /headers                  repeated and mixed-case response headers
  /gzip                     a gzip-encoded JSON body
"""
import base64
import email.utils
import gzip
import json
import os
import ssl
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

COUNTS = {}
LOCK = threading.Lock()


def hit(key):
    with LOCK:
        COUNTS[key] = COUNTS.get(key, 0) + 1
        return COUNTS[key]


def fnv(data):
    h = 0xcbf29ce484222325
    for b in data:
        h ^= b
        h = (h * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return "%016x" % h


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return out
                out += self.rfile.read(size)
                self.rfile.readline()
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def send(self, code, body=b"", ctype="text/plain", headers=()):
        if isinstance(body, str):
            body = body.encode()
        self.send_response(code)
        if ctype:
            self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def send_json(self, code, obj, headers=()):
        self.send(code, json.dumps(obj), "application/json", headers)

    def echo(self, body):
        try:
            text = body.decode()
        except UnicodeDecodeError:
            text = None
        u = urlsplit(self.path)
        self.send_json(200, {
            "method": self.command,
            "path": u.path,
            "query": u.query,
            "args": parse_qs(u.query, keep_blank_values=True),
            "headers": [[k, v] for k, v in self.headers.items()],
            "body": text if len(body) <= 65536 else None,
            "body_size": len(body),
            "body_fnv": fnv(body) if len(body) < 8 << 20 else None,
        })

    def handle_any(self):
        body = self.read_body()
        u = urlsplit(self.path)
        q = {k: v[-1] for k, v in parse_qs(u.query,
                                           keep_blank_values=True).items()}
        parts = u.path.strip("/").split("/")
        route = parts[0]
        auth = self.headers.get("Authorization", "")
        if route == "echo":
            return self.echo(body)
        if route == "status":
            extra = [tuple(h.split(":", 1)) for h in
                     parse_qs(u.query).get("h", [])]
            text = q.get("body", "status " + parts[1]) * int(q.get("repeat",
                                                                   "1"))
            return self.send(int(parts[1]), text, q.get("type", "text/plain"),
                             extra)
        if route == "retry":
            n = hit("retry/" + parts[1])
            hit(parts[1])
            if n <= int(q.get("n", "1")):
                after = q.get("after", "0")
                if after.startswith("date+"):
                    after = email.utils.formatdate(
                        time.time() + int(after[5:]), usegmt=True)
                return self.send(int(q.get("code", "429")), "slow down",
                                 "text/plain", [("Retry-After", after)])
            return self.send_json(200, {"attempts": n})
        if route == "redirect":
            return self.send(int(parts[1]), "", "text/plain",
                             [("Location", q["to"])])
        if route == "chain":
            n = int(parts[1])
            if n == 0:
                return self.echo(body)
            return self.send(302, "", "text/plain",
                             [("Location", "/chain/%d" % (n - 1))])
        if route == "large":
            size = int(q["size"])
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(size))
            self.end_headers()
            block = bytes(i % 251 for i in range(251 * 261))
            sent = 0
            while sent < size:
                n = min(len(block), size - sent)
                self.wfile.write(block[:n])
                sent += n
            return
        if route == "auth":
            kind = parts[1]
            if kind == "basic":
                want = "Basic " + base64.b64encode(
                    ("%s:%s" % (q["user"], q["pass"])).encode()).decode()
                ok = auth == want
            elif kind == "bearer":
                ok = auth == "Bearer " + q["token"]
            elif kind == "header":
                ok = self.headers.get(q["name"]) == q["key"]
            else:
                got = parse_qs(u.query).get(q["name"], [])
                ok = got == [q["key"]]
            if ok:
                return self.send_json(200, {"ok": True})
            return self.send(401, "denied; you sent Authorization: " + auth,
                             "text/plain",
                             [("WWW-Authenticate", 'Basic realm="t"')])
        if route == "oauth":
            hit(parts[1])
            if auth == "Bearer " + q["good"]:
                return self.send_json(200, {"ok": True})
            return self.send_json(401, {"error": "invalid_token"})
        if route == "count":
            with LOCK:
                n = COUNTS.get(parts[1], 0)
            return self.send_json(200, {"count": n})
        if route == "delay":
            time.sleep(int(q["ms"]) / 1000)
            return self.send(200, "done")
        if route == "content":
            data = (base64.b64decode(q["b64"]) if "b64" in q
                    else q.get("body", "").encode())
            return self.send(200, data, q.get("type"))
        if route == "headers":
            return self.send(200, "h", "text/plain", [
                ("Set-Cookie", "a=1; Path=/"), ("Set-Cookie", "b=2"),
                ("X-Multi", "one"), ("X-Multi", "two"),
                ("X-Mixed-Case", "Value")])
        if route == "gzip":
            data = gzip.compress(json.dumps({"zipped": True}).encode())
            return self.send(200, data, "application/json",
                             [("Content-Encoding", "gzip")])
        return self.send(404, "no route " + u.path)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = handle_any
    do_HEAD = do_OPTIONS = handle_any


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def make_certs(d):
    def run(*args):
        subprocess.run(["openssl"] + list(args), check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
          "-nodes"]
    ca, key = os.path.join(d, "ca.pem"), os.path.join(d, "ca.key")
    run("req", "-x509", *ec, "-keyout", key, "-out", ca, "-days", "2",
        "-subj", "/CN=ferry test CA")
    skey, csr = os.path.join(d, "server.key"), os.path.join(d, "server.csr")
    cert, ext = os.path.join(d, "server.pem"), os.path.join(d, "ext.cnf")
    run("req", *ec, "-keyout", skey, "-out", csr, "-subj", "/CN=127.0.0.1")
    with open(ext, "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                "basicConstraints=CA:FALSE\n")
    run("x509", "-req", "-in", csr, "-CA", ca, "-CAkey", key,
        "-CAcreateserial", "-out", cert, "-days", "2", "-extfile", ext)
    return ca, cert, skey


def main():
    d = sys.argv[1]
    ca, cert, key = make_certs(d)
    servers = [Server(("127.0.0.1", 0), Handler) for _ in range(3)]
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    servers[2].socket = ctx.wrap_socket(servers[2].socket, server_side=True)
    for s in servers:
        threading.Thread(target=s.serve_forever, daemon=True).start()
    print(json.dumps({"http": servers[0].server_address[1],
                      "http2": servers[1].server_address[1],
                      "https": servers[2].server_address[1], "ca": ca}),
          flush=True)
    # Exit with the test that started us, even when it dies without
    # stopping us.
    parent = os.getppid()
    while os.getppid() == parent:
        time.sleep(0.5)


if __name__ == "__main__":
    main()
