"""Text that gradcheck prints but did not write itself (a user's output, exception texts).

A CI runner reads every line of a step's stdout and stderr and obeys those that start (after
leading whitespace) with `::` (GitHub Actions workflow commands such as `::error::` or
`::add-mask::`) or `##[` (the older form). A user's text must never become such a command, so
a line that would is prefixed. Console encodings that cannot show a character get a
replacement instead of a UnicodeEncodeError.
"""

from __future__ import annotations

import re
from typing import TextIO

_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
_COMMAND_STARTS = ("::", "##[")
DEFUSED_PREFIX = "> "


def is_command_line(line: str) -> bool:
    """Whether a CI runner would read `line` as a workflow command."""
    return _ANSI.sub("", line).lstrip().startswith(_COMMAND_STARTS)


def defuse_commands(text: str) -> str:
    """`text` with every line that a runner would take for a command prefixed by '> '.

    Lines are split wherever Python sees a line break (CR, LF, and the Unicode ones), which
    covers every break a runner splits on.
    """
    if "::" not in text and "##[" not in text:
        return text
    return "".join(
        DEFUSED_PREFIX + line if is_command_line(line) else line
        for line in text.splitlines(keepends=True)
    )


def encodable(text: str, encoding: str | None) -> str:
    """`text` with the characters `encoding` cannot represent replaced by '?'."""
    if not encoding:
        return text
    try:
        text.encode(encoding)
        return text
    except UnicodeEncodeError:
        return text.encode(encoding, errors="replace").decode(encoding, errors="replace")
    except LookupError:
        return text


def write_safely(stream: TextIO | None, text: str) -> None:
    """Write `text` to a diagnostic stream (stderr): unencodable characters replaced, a
    closed or broken stream ignored (there is nowhere left to say so)."""
    if stream is None or not text:
        return
    try:
        stream.write(encodable(text, getattr(stream, "encoding", None)))
        stream.flush()
    except (OSError, ValueError):
        pass
