#!/usr/bin/env python3
"""Runs a program as a child subreaper, for sftp_bench.py's CPU figures.

usage: reaper.py PROGRAM ARGS...

OpenSSH's sshd lets each connection's session process outlive its parent:
the process is reparented and its CPU time never reaches sshd's own
children times (/proc/PID/stat cutime, cstime). Run under this process
(prctl PR_SET_CHILD_SUBREAPER), such orphans are reparented here and
reaped here instead, so this process's children times hold all the CPU
the server used. SIGTERM and SIGINT are passed on to the program; this
exits with the program's status as soon as the program itself has ended.
"""

import ctypes
import os
import signal
import sys

PR_SET_CHILD_SUBREAPER = 36


def main(argv):
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        print("reaper.py: prctl: %s" % os.strerror(ctypes.get_errno()),
              file=sys.stderr)
        return 1
    pid = os.fork()
    if pid == 0:
        try:
            os.execv(argv[0], argv)
        finally:
            os._exit(127)

    def forward(sig, _frame):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    while True:
        try:
            done, status = os.wait()
        except ChildProcessError:
            return 1
        if done == pid:
            code = os.waitstatus_to_exitcode(status)
            return code if code >= 0 else 128 - code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
