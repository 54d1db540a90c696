"""stdout for reports: never a traceback, never a forged CI command, never an encoding crash.

`ReportStream` wraps sys.stdout for the duration of one report. It
- replaces characters the console cannot encode (PYTHONIOENCODING=cp1252, a redirected Windows
  console) by ASCII stand-ins of the same width (tables stay aligned), then by '?';
- prefixes any line that a CI runner would obey as a workflow command (a user's exception text
  "...\\n::notice::..." in a traceback), except the annotations written on purpose;
- records a write error (stdout on /dev/full, closed) instead of raising, so that the caller
  says it in one line on stderr and exits non-zero.
"""

from __future__ import annotations

import contextlib
import errno
import sys
import warnings
from collections.abc import Iterator
from typing import TextIO

from rich.markup import escape

from ..safety.text import DEFUSED_PREFIX, encodable, is_command_line
from ..safety.values import one_line
from .application import stderr

# One character for one, so that rich's column widths still hold.
_ASCII = str.maketrans(
    {
        "✓": "v",
        "✗": "x",
        "≈": "~",
        "‖": "|",
        "∇": "g",
        "─": "-",
        "━": "-",
        "│": "|",
        "—": "-",
        "–": "-",
        "·": ".",
        "…": ".",
        "×": "x",
        "≥": ">",
        "≤": "<",
        "→": ">",
        "±": "+",
        "²": "2",
        "₂": "2",
        "θ": "t",
        "‑": "-",
        "⋯": ".",
        "•": "*",
    }
)
_BREAKS = ("\n", "\r", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029")


def to_encoding(text: str, encoding: str | None) -> str:
    """`text` as the console can show it: ASCII stand-ins, then '?' for what is left."""
    if not encoding or _encodes(text, encoding):
        return text
    stand_ins = "".join(c if _encodes(c, encoding) else c.translate(_ASCII) for c in text)
    return encodable(stand_ins, encoding)


def _encodes(text: str, encoding: str) -> bool:
    """Whether `encoding` represents `text` (an encoding Python does not know: as is)."""
    try:
        text.encode(encoding)
        return True
    except UnicodeEncodeError:
        return False
    except LookupError:
        return True


class ReportStream:
    """A text stream over stdout that defuses command lines and records write errors."""

    def __init__(self, target: TextIO | None) -> None:
        self.target = target
        self.error: OSError | None = None
        self._line = ""  # the current line, held until it is known not to be a command

    @property
    def encoding(self) -> str:
        """The console's encoding (rich reads it to choose ASCII boxes)."""
        return str(getattr(self.target, "encoding", None) or "utf-8")

    def isatty(self) -> bool:
        """Whether stdout is a terminal (rich reads it for colours and width)."""
        try:
            return bool(self.target is not None and self.target.isatty())
        except (OSError, ValueError):
            return False

    def fileno(self) -> int:
        """stdout's descriptor (rich asks for the terminal size)."""
        if self.target is None:
            raise OSError(errno.EBADF, "stdout is closed")
        return self.target.fileno()

    def _emit(self, text: str) -> None:
        if self.error is not None or not text:
            return
        if self.target is None:
            self.error = OSError(errno.EBADF, "stdout is closed")
            return
        try:
            self.target.write(to_encoding(text, self.encoding))
        except OSError as exc:
            self.error = exc
        except ValueError:  # an already closed file object
            self.error = OSError(errno.EBADF, "stdout is closed")

    def write(self, text: str) -> int:
        """Write report text: complete lines are checked for commands before they go out."""
        self._line += text
        pieces = self._line.splitlines(keepends=True)
        if pieces and not pieces[-1].endswith(_BREAKS):
            self._line = pieces.pop()
        else:
            self._line = ""
        self._emit("".join(DEFUSED_PREFIX + p if is_command_line(p) else p for p in pieces))
        return len(text)

    def write_raw(self, text: str) -> None:
        """Write text that is meant to hold workflow commands (the --format github annotations)."""
        self.finish()
        self._emit(text)

    def flush(self) -> None:
        """Flush stdout; a partial line waits until it cannot turn into a command."""
        stripped = self._line.lstrip()
        if stripped and not any(
            start.startswith(stripped[: len(start)]) for start in ("::", "##[")
        ):
            self._emit(self._line)
            self._line = ""
        self._flush_target()

    def _flush_target(self) -> None:
        if self.error is None and self.target is not None:
            try:
                self.target.flush()
            except OSError as exc:
                self.error = exc
            except ValueError:
                self.error = OSError(errno.EBADF, "stdout is closed")

    def finish(self) -> None:
        """Write out the last partial line (defused if need be) and flush."""
        if self._line:
            line, self._line = self._line, ""
            self._emit(DEFUSED_PREFIX + line if is_command_line(line) else line)
        self._flush_target()

    def failure(self) -> str | None:
        """The one-line reason the report could not be written, or None."""
        if self.error is None or isinstance(self.error, BrokenPipeError):
            return None
        return f"cannot write the report to stdout: {self.error.strerror or self.error}"

    @property
    def broken_pipe(self) -> bool:
        """Whether the reader of stdout went away (`gradcheck run | head`)."""
        return isinstance(self.error, BrokenPipeError)


@contextlib.contextmanager
def defused_stderr() -> Iterator[None]:
    """While a command runs, stderr lines (error messages that quote a path or a user's text)
    cannot become workflow commands either."""
    stream = ReportStream(sys.stderr)
    stderr.file = stream  # type: ignore[assignment]
    try:
        yield
    finally:
        stream.finish()
        stderr.file = None  # type: ignore[assignment]


@contextlib.contextmanager
def numeric_warnings_summarised() -> Iterator[None]:
    """NumPy's RuntimeWarnings (overflow, invalid value) as one line on stderr, not a dump."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    numeric = [w for w in caught if issubclass(w.category, RuntimeWarning)]
    for w in caught:
        if not issubclass(w.category, RuntimeWarning):
            text = escape(one_line(w.message))
            stderr.print(f"[yellow]warning:[/] {text}", highlight=False, soft_wrap=True)
    if numeric:
        kinds = sorted({one_line(w.message) for w in numeric})
        shown = "; ".join(kinds[:3]) + (f"; and {len(kinds) - 3} more" if len(kinds) > 3 else "")
        stderr.print(
            f"[yellow]warning:[/] {len(numeric)} numeric warning(s) while computing "
            f"({escape(shown)})",
            highlight=False,
            soft_wrap=True,
        )
