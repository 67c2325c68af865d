#!/usr/bin/env python3
"""A real OpenSSH sshd on loopback for the sftp component's tests.

Used as a module (Sshd) by the Python tests, and as a command that wraps
another test program:

    python3 sshd.py [--password] -- PROGRAM ARGS...

starts sshd, runs PROGRAM with the server described in its environment
(SFTP_TEST_HOST, _PORT, _USER, _FP, _DATA, _KEY_ED25519, _KEY_ECDSA,
_PASSWORD when there is one, _SSHD_PID), stops sshd and exits with
PROGRAM's status.

The server: /usr/sbin/sshd -D -e -f CONFIG on 127.0.0.1 and a port picked
free at run time (retried on a clash), an ed25519 host key generated for
the run, internal-sftp, everything in a temporary directory. As root it
serves a system user, ferrysftp (created with useradd -m when missing),
with key and password login; the password is set at random for the run
(with --password, under a lock file so that two runs do not change it
under each other). Not as root it serves the current user with key login
only (sshd cannot check passwords without root): password cases are
skipped, and the user's account must not be locked ("!" or "*" in
/etc/shadow), which sshd without PAM refuses even for keys. The server
and every process it started are stopped by pid at the end, whatever
happens.

Exit status 77 (ctest's skip) when sshd or ssh-keygen is missing.
"""

import fcntl
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

SSHD = "/usr/sbin/sshd"
USER = "ferrysftp"
LOCK = os.path.join(tempfile.gettempdir(), "ferry-sftp-user.lock")
SKIP = 77


class Unavailable(Exception):
    """sshd cannot run here (a reason to skip, not a failure)."""


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def run(argv, **kw):
    return subprocess.run(argv, check=True, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, **kw)


def fingerprint(pub):
    """SHA256:... as ssh-keygen -lf prints it."""
    out = run(["ssh-keygen", "-lf", pub]).stdout.decode()
    return out.split()[1]


def children_of(pid):
    """Every descendant of pid (from /proc), deepest last."""
    parents = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name) as f:
                stat = f.read()
            ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        parents.setdefault(ppid, []).append(int(name))
    out, todo = [], [pid]
    while todo:
        for c in parents.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


class Sshd:
    def __init__(self, password=False):
        if not os.access(SSHD, os.X_OK) or not shutil.which("ssh-keygen"):
            raise Unavailable("no %s or ssh-keygen" % SSHD)
        self.is_root = os.geteuid() == 0
        self.want_password = password
        self.password = None
        self.proc = None
        self.lock = None
        self.dir = tempfile.mkdtemp(prefix="ferry-sftp-")
        # sshd reads authorized_keys as the user: the directory must let
        # it through (the host key stays 0600).
        os.chmod(self.dir, 0o755)
        try:
            self._setup()
        except BaseException:
            self.stop()
            raise

    # ---- setup ----

    def _setup(self):
        d = self.dir
        if self.is_root:
            self.user = USER
            self._ensure_user()
            if self.want_password:
                self.lock = open(LOCK, "w")
                fcntl.flock(self.lock, fcntl.LOCK_EX)
                self.password = "p-" + os.urandom(12).hex()
                run(["chpasswd"], input=("%s:%s\n" % (USER, self.password))
                    .encode())
            os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
        else:
            self.user = pwd.getpwuid(os.getuid()).pw_name
        pw = pwd.getpwnam(self.user)
        self.uid, self.gid = pw.pw_uid, pw.pw_gid

        self.host_key = os.path.join(d, "host_ed25519")
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C",
             "ferry-test-host", "-f", self.host_key])
        self.fp = fingerprint(self.host_key + ".pub")
        self.passphrase = "pp-" + os.urandom(6).hex()
        keys = {
            "ed25519": ["-t", "ed25519", "-N", ""],
            "ecdsa": ["-t", "ecdsa", "-b", "256", "-N", ""],
            "ecdsa_pem": ["-t", "ecdsa", "-b", "384", "-m", "PEM", "-N", ""],
            "ed25519_enc": ["-t", "ed25519", "-N", self.passphrase],
            "rsa": ["-t", "rsa", "-b", "2048", "-N", ""],
        }
        self.keys = {}
        pubs = []
        for name, args in keys.items():
            path = os.path.join(d, "client_" + name)
            run(["ssh-keygen", "-q", "-C", "ferry-test-" + name, "-f", path]
                + args)
            self.keys[name] = path
            with open(path + ".pub") as f:
                pubs.append(f.read())
        self.authorized_keys = os.path.join(d, "authorized_keys")
        with open(self.authorized_keys, "w") as f:
            f.write("".join(pubs))
        os.chmod(self.authorized_keys, 0o644)
        # A key the server does not know.
        self.keys["stranger"] = os.path.join(d, "client_stranger")
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f",
             self.keys["stranger"]])

        self.data = os.path.join(d, "data")
        os.makedirs(self.data)
        os.chown(self.data, self.uid, self.gid)
        os.chmod(self.data, 0o755)

    def _ensure_user(self):
        try:
            pwd.getpwnam(USER)
            created = False
        except KeyError:
            with open(LOCK, "w") as lk:
                fcntl.flock(lk, fcntl.LOCK_EX)
                try:
                    pwd.getpwnam(USER)
                    created = False
                except KeyError:
                    run(["useradd", "-m", "-s", "/bin/sh", USER])
                    created = True
        if created or self._locked():
            # With UsePAM no, sshd refuses a locked account ("!" in
            # /etc/shadow) even for key login.
            with open(LOCK, "w") as lk:
                fcntl.flock(lk, fcntl.LOCK_EX)
                if self._locked():
                    run(["chpasswd"], input=("%s:%s\n" % (
                        USER, "p-" + os.urandom(12).hex())).encode())

    @staticmethod
    def _locked():
        try:
            with open("/etc/shadow") as f:
                for line in f:
                    parts = line.split(":")
                    if parts[0] == USER:
                        return parts[1][:1] in ("!", "*", "")
        except OSError:
            pass
        return False

    def _config(self, port):
        path = os.path.join(self.dir, "sshd_config")
        lines = [
            "ListenAddress 127.0.0.1:%d" % port,
            "HostKey " + self.host_key,
            "PidFile " + os.path.join(self.dir, "sshd.pid"),
            "AuthorizedKeysFile " + self.authorized_keys,
            # The files live under the temporary directory, whose parent
            # is world-writable.
            "StrictModes no",
            "PubkeyAuthentication yes",
            "PasswordAuthentication %s" % ("yes" if self.is_root else "no"),
            "PermitEmptyPasswords no",
            "KbdInteractiveAuthentication no",
            "UsePAM no",
            "PermitRootLogin no",
            "AllowUsers " + self.user,
            "AllowTcpForwarding no",
            "X11Forwarding no",
            "PrintMotd no",
            # Many workers connect at once in the polling tests.
            "MaxStartups 200",
            "MaxSessions 50",
            "Subsystem sftp internal-sftp",
            "LogLevel VERBOSE",
        ]
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        return path

    # ---- running ----

    def start(self):
        last = ""
        for _ in range(8):
            self.port = free_port()
            cfg = self._config(self.port)
            self.log_path = os.path.join(self.dir, "sshd-%d.log" % self.port)
            log = open(self.log_path, "wb")
            self.proc = subprocess.Popen([SSHD, "-D", "-e", "-f", cfg],
                                         stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=subprocess.STDOUT)
            log.close()
            if self._ready():
                return self
            self._kill()
            last = self.log_tail()
            if "Address already in use" not in last and \
                    "Cannot bind" not in last:
                break
        raise RuntimeError("sshd did not start: " + last)

    def _ready(self, timeout=10):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                with socket.create_connection(("127.0.0.1", self.port),
                                              timeout=1) as s:
                    if s.recv(7) == b"SSH-2.0":
                        return True
            except OSError:
                pass
            time.sleep(0.02)
        return False

    def log_tail(self, n=20):
        try:
            with open(self.log_path, errors="replace") as f:
                return "\n".join(f.read().splitlines()[-n:])
        except (OSError, AttributeError):
            return ""

    def sessions(self):
        """Pids of the per-connection sshd processes."""
        if not self.proc or self.proc.poll() is not None:
            return []
        return children_of(self.proc.pid)

    def _kill(self):
        if not self.proc:
            return
        kids = children_of(self.proc.pid) if self.proc.poll() is None else []
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        for pid in kids:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        self.proc = None

    def stop(self):
        try:
            self._kill()
        finally:
            if self.lock:
                self.lock.close()
                self.lock = None
            if os.environ.get("FERRY_TEST_KEEP") == "1":
                print("# kept " + self.dir, file=sys.stderr)
            else:
                shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # ---- for tests ----

    def key_text(self, name):
        with open(self.keys[name]) as f:
            return f.read()

    def own(self, path):
        """Gives path (made by the test) to the served user."""
        os.chown(path, self.uid, self.gid)

    def env(self):
        e = {
            "SFTP_TEST_HOST": "127.0.0.1",
            "SFTP_TEST_PORT": str(self.port),
            "SFTP_TEST_USER": self.user,
            "SFTP_TEST_FP": self.fp,
            "SFTP_TEST_DATA": self.data,
            "SFTP_TEST_KEY_ED25519": self.keys["ed25519"],
            "SFTP_TEST_KEY_ECDSA": self.keys["ecdsa"],
            "SFTP_TEST_SSHD_PID": str(self.proc.pid),
            "SFTP_TEST_UID": str(self.uid),
            "SFTP_TEST_GID": str(self.gid),
        }
        if self.password:
            e["SFTP_TEST_PASSWORD"] = self.password
        return e


def main(argv):
    password = False
    if argv and argv[0] == "--password":
        password = True
        argv = argv[1:]
    if not argv or argv[0] != "--" or len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        server = Sshd(password=password)
    except Unavailable as e:
        print("SKIP: " + str(e))
        return SKIP
    rc = 1
    try:
        server.start()
        env = dict(os.environ)
        env.update(server.env())
        # The program gets its own process group, so that whatever it
        # leaves behind can be stopped with it.
        p = subprocess.Popen(argv[1:], env=env, start_new_session=True)
        try:
            rc = p.wait()
        except BaseException:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
            raise
        if rc != 0:
            sys.stderr.write("--- sshd log (tail)\n" + server.log_tail(40)
                             + "\n")
    finally:
        server.stop()
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
