"""The input budget: how many bytes of arrays one input may declare before gradcheck reads it.

Readers check the sizes a file declares (an .npz member's .npy header, a .pt file's tensors, a
CSV's rows and columns, a TOML file's length) against the budget before allocating anything,
so a 4 MB archive that inflates to 4 GB is one line of bad input (exit 2), not an exhausted
machine. `max_input_mb` (`--max-input-mb`) raises it.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from ..errors import InputError

DEFAULT_MAX_INPUT_MB = 1024
MB = 1 << 20
DEFAULT_MAX_BYTES = DEFAULT_MAX_INPUT_MB * MB
BUDGET_ARGUMENT = "max_input_mb"
MAX_CONFIG_BYTES = 1 * MB  # a configuration file is a few lines


def budget_bytes(max_input_mb: float) -> int:
    """The budget in bytes; InputError when `max_input_mb` is not a positive number."""
    try:
        value = float(max_input_mb)
    except (TypeError, ValueError):
        value = float("nan")
    if not 0 < value < float("inf"):
        raise InputError(
            f"max_input_mb must be a positive number of megabytes, got {max_input_mb}",
            arguments=(BUDGET_ARGUMENT,),
        )
    return int(value * MB)


def size_text(nbytes: float) -> str:
    """A byte count for people: '3.7 GB', '512 kB' (powers of 1024, as the budget is)."""
    for unit, scale in (("TB", 1 << 40), ("GB", 1 << 30), ("MB", MB), ("kB", 1 << 10)):
        if nbytes >= scale:
            return f"{nbytes / scale:.3g} {unit}"
    return f"{int(nbytes)} bytes"


def over_budget(where: str, what: str, nbytes: float, max_bytes: int) -> InputError:
    """The one-line error for an input that declares more than the budget, e.g.
    'data file d.npz: its arrays declare 3.7 GB, more than the input budget of 1 GB ...'."""
    return InputError(
        f"{where}: {what} {size_text(nbytes)}, more than the input budget of "
        f"{size_text(max_bytes)} (raise it with max_input_mb if that is intended)",
        arguments=(BUDGET_ARGUMENT,),
    )


def check_budget(where: str, what: str, nbytes: float, max_bytes: int) -> None:
    """InputError (see `over_budget`) when `nbytes` exceeds the budget."""
    if nbytes > max_bytes:
        raise over_budget(where, what, nbytes, max_bytes)


def regular_file(path: str | Path, what: str) -> tuple[Path, int]:
    """`path` and its size, or an InputError when it is missing, a directory, or not a regular
    file (a device such as /dev/zero, a FIFO that would block, a socket)."""
    path = Path(path)
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise InputError(f"{what} {path}: no such file") from None
    except OSError as exc:
        raise InputError(f"{what} {path}: cannot be read ({exc.strerror or exc})") from None
    if stat.S_ISDIR(info.st_mode):
        raise InputError(f"{what} {path}: is a directory, expected a file")
    if not stat.S_ISREG(info.st_mode):
        raise InputError(
            f"{what} {path}: is not a regular file (a device, FIFO or socket); give a file on disk"
        )
    return path, info.st_size
