"""The fake Dropbox (tests/fixtures/dropbox/fake_dropbox.py) as the tests
use it: started as a child whose stdin is a pipe (it exits when the pipe
closes, so it never outlives the test), and driven through its control
endpoints. Python 3 standard library only.
"""

import base64
import hashlib
import http.client
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
FAKE = os.environ.get("FERRY_DROPBOX_FAKE", os.path.join(
    HERE, "..", "fixtures", "dropbox", "fake_dropbox.py"))


def content_hash(data):
    """Dropbox's content_hash, computed here independently of the fake."""
    h = hashlib.sha256()
    for i in range(0, len(data), 4 * 1024 * 1024):
        h.update(hashlib.sha256(data[i:i + 4 * 1024 * 1024]).digest())
    return h.hexdigest()


class Fake:
    def __init__(self, directory):
        self.port_file = os.path.join(directory, "dropbox-ports.json")
        self.proc = subprocess.Popen(
            [sys.executable, FAKE, "--port-file", self.port_file],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
            stderr=open(os.path.join(directory, "fake-dropbox.log"), "wb"))
        deadline = time.monotonic() + 15
        while True:
            try:
                with open(self.port_file) as f:
                    ports = json.loads(f.read())
                break
            except (OSError, ValueError):
                if self.proc.poll() is not None or \
                        time.monotonic() > deadline:
                    raise RuntimeError("the fake Dropbox did not start")
                time.sleep(0.02)
        self.api_port = ports["api"]
        self.content_port = ports["content"]
        self.api_url = "http://127.0.0.1:%d" % self.api_port
        self.content_url = "http://127.0.0.1:%d" % self.content_port

    def stop(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def control(self, what, body=None, ok=(200,)):
        c = http.client.HTTPConnection("127.0.0.1", self.api_port, timeout=30)
        try:
            c.request("POST", "/_control/" + what,
                      body=json.dumps(body or {}).encode(),
                      headers={"Content-Type": "application/json"})
            r = c.getresponse()
            data = r.read()
            if r.status not in ok:
                raise RuntimeError("control %s: %d %s" % (what, r.status,
                                                          data[:200]))
            return json.loads(data) if data else None
        finally:
            c.close()

    def put(self, path, content, **kw):
        if isinstance(content, str):
            content = content.encode()
        body = {"path": path, "b64": base64.b64encode(content).decode()}
        body.update(kw)
        return self.control("put", body)

    def put_many(self, files):
        return self.control("put", {"files": [
            {"path": p, "text": t} for p, t in files]})

    def get(self, path):
        r = self.control("get", {"path": path}, ok=(200, 404))
        if not r or "metadata" not in r:
            return None, None
        return r["metadata"], base64.b64decode(r["b64"])

    def tree(self):
        return self.control("tree")

    def fault(self, route, **kw):
        body = {"route": route}
        body.update(kw)
        self.control("fault", body)

    def log(self, clear=False):
        return self.control("log", {"clear": clear})["requests"]

    def reset(self):
        self.control("reset")
