"""The parent's side of the child process that runs a user's code (see `child.py`).

The user's code runs in a process of its own (forked by the fork server, `forkserver.py`,
from a Python that never ran user code; or a new Python), so nothing it does reaches
gradcheck's own process: not an exit (os._exit, any code), a crash or signal, a hang (a
timeout stops it), a change of global state (torch.set_grad_enabled(False) at import), nor a
print to stdout (its stdout and stderr, and its subprocesses', go to a capture file that is
shown on stderr after each exchange, so `--json` stdout stays one JSON document). It is
isolation, not a security sandbox: the code runs with the user's own rights, as it would with
`python file.py`.
"""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from typing import IO, Any

from . import forkserver
from .text import defuse_commands, write_safely
from .wire import Arrays, OverBudget, ProtocolError, read_message, write_message

CHILD_SCRIPT = forkserver.CHILD_SCRIPT
USE_FORK_SERVER = True  # False: every child is a new Python (slower; the path off POSIX)
DEFAULT_TIMEOUT = 60.0  # seconds for one step of the user's code: importing it, or one call
OUTPUT_SHOWN = 1 << 20  # bytes of a child's output shown on stderr; the rest is counted
OUTPUT_LIMIT = 64 << 20  # a child that prints more than this is stopped
_POLL_S = 0.05


Process = subprocess.Popen[bytes] | forkserver.ForkedChild


class ChildFailure(Exception):
    """The child ended or was stopped without answering; the message says how, e.g.
    'exited with code 0' or 'did not finish within the 60 s timeout'. `over_budget` is the
    byte count of an answer refused for its size."""

    def __init__(self, message: str, over_budget: int | None = None) -> None:
        super().__init__(message)
        self.over_budget = over_budget


def check_timeout(timeout: float) -> float:
    """`timeout` as a positive finite number of seconds, or ValueError."""
    value = float(timeout)
    if not 0 < value < float("inf"):
        raise ValueError(f"timeout must be a positive number of seconds, got {timeout}")
    return value


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _kill_group(process: Process) -> None:
    """Kill the child and anything it started (its own session, so its own process group; a
    group id is not reused while any process of the group is alive)."""
    try:
        if hasattr(os, "killpg"):
            os.killpg(process.pid, signal.SIGKILL)
        else:  # pragma: no cover - Windows has no process groups of this kind
            process.kill()
    except (ProcessLookupError, PermissionError, OSError):
        with contextlib.suppress(OSError):
            process.kill()


def _finalize(process: Process, streams: tuple[IO[bytes], ...]) -> None:
    _kill_group(process)
    with contextlib.suppress(Exception):
        process.wait(timeout=5)
    for stream in streams:
        with contextlib.suppress(Exception):
            stream.close()


def _capture_file() -> tuple[int, IO[bytes]]:
    """A file for the child's output: its descriptor (append-only, for the child) and a reader
    of our own (so reading never moves the child's writing position)."""
    fd, path = tempfile.mkstemp(prefix="gradcheck-output-")
    os.close(fd)
    try:
        writer = os.open(path, os.O_WRONLY | os.O_APPEND)
        reader = open(path, "rb")  # noqa: SIM115
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)  # POSIX: the open descriptors keep it until they close
    return writer, reader


def _start(capture: int) -> tuple[Process, IO[bytes], IO[bytes]]:
    """A child process and its request and reply streams: forked by the fork server when it
    can be, else a new Python."""
    if USE_FORK_SERVER and forkserver.AVAILABLE:
        request_r, request_w = os.pipe()
        reply_r, reply_w = os.pipe()
        try:
            child = forkserver.ForkServer.get().spawn(request_r, reply_w, capture)
        except OSError:
            for fd in (request_r, request_w, reply_r, reply_w):
                os.close(fd)
        else:
            os.close(request_r)
            os.close(reply_w)
            # Unbuffered: closing them never waits for a thread blocked on them.
            return child, open(request_w, "wb", 0), open(reply_r, "rb", 0)
    process = subprocess.Popen(
        [sys.executable, CHILD_SCRIPT],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=capture,
        start_new_session=hasattr(os, "killpg"),
        bufsize=0,
    )
    assert process.stdin is not None and process.stdout is not None
    return process, process.stdin, process.stdout


class ChildProcess:
    """One child running one task ("function" or "utils") of one user file."""

    def __init__(self, init: dict[str, Any], *, label: str, max_bytes: int) -> None:
        self.label = label
        self.max_bytes = max_bytes
        capture, self._output = _capture_file()
        self._shown = 0  # bytes of output already shown
        self._read = 0  # bytes of output already read
        self._replies: queue.Queue[tuple[dict[str, Any], Arrays] | BaseException] = queue.Queue()
        try:
            self._process, self._stdin, self._stdout = _start(capture)
        except OSError as exc:
            self._output.close()
            raise ChildFailure(f"could not start a Python process for it ({exc})") from None
        finally:
            os.close(capture)
        self._finalizer = weakref.finalize(
            self, _finalize, self._process, (self._stdin, self._stdout, self._output)
        )
        threading.Thread(target=self._read_replies, daemon=True).start()
        self._send({**init, "cwd": os.getcwd(), "env": dict(os.environ)}, {})

    def _read_replies(self) -> None:
        try:
            while True:
                self._replies.put(read_message(self._stdout, self.max_bytes))
        except BaseException as exc:  # EOF, a protocol error: the waiting side says which
            self._replies.put(exc)

    def _send(self, header: dict[str, Any], arrays: Arrays) -> None:
        # A child that is gone cannot be written to; receive() reports how it ended.
        with contextlib.suppress(OSError, ValueError):
            write_message(self._stdin, header, arrays)

    def request(
        self, header: dict[str, Any], arrays: Arrays, timeout: float
    ) -> tuple[dict[str, Any], Arrays]:
        """Send one request and wait for its reply (see `receive`)."""
        sender = threading.Thread(target=self._send, args=(header, arrays), daemon=True)
        sender.start()
        return self.receive(timeout)

    def receive(self, timeout: float) -> tuple[dict[str, Any], Arrays]:
        """The child's next reply; ChildFailure when it ends, hangs past `timeout` seconds,
        prints more than OUTPUT_LIMIT, or answers outside the format or the byte budget."""
        deadline = time.monotonic() + timeout
        try:
            while True:
                try:
                    reply = self._replies.get(timeout=_POLL_S)
                    break
                except queue.Empty:
                    pass
                if time.monotonic() > deadline:
                    self.close()
                    raise ChildFailure(f"did not finish within the {timeout:g} s timeout")
                if self._output_size() > OUTPUT_LIMIT:
                    self.close()
                    raise ChildFailure(f"printed more than {OUTPUT_LIMIT >> 20} MB of output")
            if isinstance(reply, OverBudget):
                self.close()
                raise ChildFailure(f"answered with {reply}", over_budget=reply.nbytes)
            if isinstance(reply, ProtocolError):
                self.close()
                raise ChildFailure(f"answered with {reply}")
            if isinstance(reply, BaseException):
                raise ChildFailure(self._how_it_ended())
            return reply
        finally:
            self.show_output()

    def _how_it_ended(self) -> str:
        try:
            code = self._process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            code = None
        if code is None:
            self.close()
            return "closed its connection to gradcheck without answering"
        if code < 0:
            return f"was killed by {_signal_name(-code)}"
        return f"exited with code {code} (os._exit or a crash) without answering"

    def _output_size(self) -> int:
        try:
            return os.fstat(self._output.fileno()).st_size
        except (OSError, ValueError):
            return 0

    def show_output(self) -> None:
        """Write what the child printed since the last call to stderr (clipped, and with any
        line that a CI runner would take for a workflow command defused)."""
        size = self._output_size()
        if size <= self._read:
            return
        self._output.seek(self._read)
        shown = max(0, min(size, OUTPUT_SHOWN) - self._shown) if self._shown < OUTPUT_SHOWN else 0
        data = self._output.read(shown) if shown else b""
        hidden = size - self._read - len(data)
        self._read, self._shown = size, self._shown + len(data)
        text = defuse_commands(data.decode("utf-8", errors="replace"))
        if text and not text.endswith("\n"):
            text += "\n"
        if hidden > 0:
            text += f"[{hidden} more bytes of output from {self.label} not shown]\n"
        write_safely(sys.stderr, text)

    @property
    def alive(self) -> bool:
        """Whether the child is still running."""
        return self._process.poll() is None

    def close(self) -> None:
        """Stop the child and everything it started; show what is left of its output."""
        if self._finalizer.alive:
            _kill_group(self._process)
            with contextlib.suppress(Exception):
                self._process.wait(timeout=5)
            with contextlib.suppress(Exception):
                self.show_output()
            self._finalizer()
