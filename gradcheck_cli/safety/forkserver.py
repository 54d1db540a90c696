"""A fork server for the children that run users' code: they start in milliseconds.

Starting a fresh Python and importing NumPy takes 0.1-0.4 s; a check of a class's worth of
--user files starts dozens of children. The fork server is that fresh Python, started once (it
imports NumPy and nothing of any user's), and forks one child per request; a child is as clean
as a new process (it never ran user code before) and gets gradcheck's current directory and
environment. The server reports each child's pid and, when it ends, its exit code, as
`subprocess.Popen` would. POSIX only; elsewhere, or if the server is gone, children are
started with Popen.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

CHILD_SCRIPT = str(Path(__file__).with_name("child.py"))
AVAILABLE = hasattr(os, "fork") and hasattr(socket, "send_fds") and sys.platform != "darwin"
_SPAWN_TIMEOUT_S = 60.0  # the server's own start (a Python importing NumPy) on a busy machine


class ForkServer:
    """The running fork server of this process (one per gradcheck process)."""

    _current: ForkServer | None = None
    _lock = threading.Lock()

    def __init__(self) -> None:
        ours, theirs = socket.socketpair()
        try:
            self.process = subprocess.Popen(
                [sys.executable, CHILD_SCRIPT, "--zygote"],
                stdin=theirs.fileno(),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
        finally:
            theirs.close()
        self.owner = os.getpid()
        self.sock = ours
        self.pending: collections.deque[ForkedChild] = collections.deque()
        self.exits: dict[int, int] = {}
        self.ended = False
        self.changed = threading.Condition()
        self.requests = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()
        atexit.register(self.close)

    @classmethod
    def get(cls) -> ForkServer:
        """This process's fork server, started on first use (again if it has ended)."""
        with cls._lock:
            server = cls._current
            if server is None or server.ended or server.owner != os.getpid():
                server = cls._current = ForkServer()
            return server

    def _read(self) -> None:
        with contextlib.suppress(OSError, ValueError), self.sock.makefile("rb") as lines:
            for line in lines:
                kind, pid, *rest = line.split()
                if kind == b"P":
                    with self.requests:
                        child = self.pending.popleft()
                    child.started(int(pid))
                elif kind == b"E":
                    with self.changed:
                        self.exits[int(pid)] = int(rest[0])
                        self.changed.notify_all()
        with self.changed:
            self.ended = True
            self.changed.notify_all()
        with self.requests:
            while self.pending:
                self.pending.popleft().started(-1)

    def spawn(self, stdin: int, stdout: int, stderr: int) -> ForkedChild:
        """A new child with these descriptors as its 0, 1 and 2. It does not wait for the
        server (which may still be starting): the child's pid is known when it is needed."""
        child = ForkedChild(self)
        with self.requests:
            if self.ended:
                raise OSError("the fork server has ended")
            self.pending.append(child)
            socket.send_fds(self.sock, [b"S"], [stdin, stdout, stderr])
        return child

    def wait(self, pid: int, timeout: float | None) -> int | None:
        """The exit code of child `pid` (negative: the signal), None on timeout."""
        with self.changed:
            self.changed.wait_for(lambda: pid in self.exits or self.ended, timeout)
            if pid in self.exits:
                return self.exits.pop(pid)
            if self.ended:  # its children were not reported: say it was killed
                return -signal.SIGKILL
            return None

    def close(self) -> None:
        """End the server as gradcheck ends: it sees the socket close and exits; reap it."""
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)  # now, whatever still reads from it
            self.sock.close()
        with contextlib.suppress(subprocess.TimeoutExpired, OSError):
            self.process.wait(timeout=2)

    def stop(self) -> None:
        """End the server (its children end with it: they watch their parent)."""
        with contextlib.suppress(OSError):
            os.killpg(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(OSError):
            self.sock.close()


class ForkedChild:
    """A child of the fork server, with the part of Popen's interface that gradcheck uses."""

    def __init__(self, server: ForkServer) -> None:
        self.server = server
        self.returncode: int | None = None
        self._pid = 0
        self._known = threading.Event()

    def started(self, pid: int) -> None:
        """The server's answer: the child's pid (-1: it could not fork)."""
        self._pid = pid
        self._known.set()

    @property
    def pid(self) -> int:
        """The child's pid; OSError if the server never forked it."""
        if not self._known.wait(_SPAWN_TIMEOUT_S) or self._pid <= 0:
            raise OSError("the fork server did not start the child")
        return self._pid

    def poll(self) -> int | None:
        """The exit code if the child has ended, else None."""
        return self.wait(0) if self.returncode is None else self.returncode

    def wait(self, timeout: float | None = None) -> int | None:
        """Wait up to `timeout` seconds for the child to end; its exit code, or None."""
        if self.returncode is None:
            if timeout == 0 and not self._known.is_set():
                return None  # not forked yet: certainly not ended
            try:
                pid = self.pid
            except OSError:
                self.returncode = -signal.SIGKILL
                return self.returncode
            self.returncode = self.server.wait(pid, timeout)
        return self.returncode

    def kill(self) -> None:
        """SIGKILL the child."""
        with contextlib.suppress(OSError):
            os.kill(self.pid, signal.SIGKILL)
