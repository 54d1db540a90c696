"""File readers: .npz, .csv, a PyTorch state_dict (.pt) and the course's utils.py, to plain arrays.

Readers only turn files into arrays and lists of arrays; `loading.make_problem` validates shapes
and values. Every failure is one InputError line naming the file and what was expected. Nothing
here ever unpickles: npz with allow_pickle=False, .pt with torch.load(weights_only=True).
"""

from __future__ import annotations

import csv
import math
import re
import warnings
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..safety.budget import (
    DEFAULT_MAX_BYTES,
    check_budget,
    over_budget,
    regular_file,
    size_text,
)
from ..safety.process import DEFAULT_TIMEOUT, ChildFailure, ChildProcess, check_timeout

TORCH_SUFFIXES = (".pt", ".pth")
CSV_SUFFIXES = (".csv",)
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")  # a zip with members / an empty zip
_NPY_MAGIC = b"\x93NUMPY"
_TARGET_COLUMN = re.compile(r"^[Tt]\d*$")  # CSV columns T, T0, T1, ... hold the targets
_MAX_MEMBERS = 65536  # arrays in one .npz (a network of 30,000 layers)
_MAX_HEADER_LINE = 1 << 20  # characters in a CSV header line
_MAX_MESSAGE = 300  # a user's exception text is clipped so the error stays one readable line


def one_line(text: object) -> str:
    """`text` on one line (whitespace collapsed), clipped to a readable length."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= _MAX_MESSAGE else flat[: _MAX_MESSAGE - 3] + "..."


def check_file(path: str | Path, what: str) -> Path:
    """`path` as a Path, or an InputError when it is missing, a directory or not a regular file."""
    return regular_file(path, what)[0]


def _head(path: Path, what: str, size: int = 8) -> bytes:
    try:
        with path.open("rb") as handle:
            return handle.read(size)
    except OSError as exc:
        raise InputError(f"{what} {path}: cannot be read ({exc.strerror or exc})") from None


def read_npz(
    path: str | Path, what: str = "file", *, max_bytes: int = DEFAULT_MAX_BYTES
) -> dict[str, np.ndarray]:
    """Read every array of an .npz, refusing pickled (object) arrays, after checking the sizes
    its members declare against the budget."""
    path = check_file(path, what)
    head = _head(path, what)
    if not head:
        raise InputError(f"{what} {path}: is empty, expected an .npz archive")
    if head.startswith(_NPY_MAGIC):
        raise InputError(
            f"{what} {path}: is a single .npy array; expected an .npz archive of named arrays "
            "(np.savez)"
        )
    if not head.startswith(_ZIP_MAGIC):
        # np.load would take such a file for a pickle; say what it is not instead.
        raise InputError(f"{what} {path}: not an .npz file (it is not a zip archive)")
    try:
        _check_npz_members(path, what, max_bytes)
        with np.load(path, allow_pickle=False) as archive:
            return {key: _npz_member(archive, key, path, what) for key in archive.files}
    except InputError:
        raise
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError) as exc:
        raise InputError(
            f"{what} {path}: corrupt or truncated .npz file ({one_line(exc)})"
        ) from None


def _not_an_array(key: str, path: Path, what: str) -> InputError:
    hint = " (a PyTorch file? give it as --params model.pt)" if "data.pkl" in key else ""
    return InputError(
        f"{what} {path}: member {key!r} is not a NumPy array{hint}; "
        "expected an .npz written by np.savez"
    )


def _npy_header(stream: Any) -> tuple[tuple[int, ...], np.dtype[Any]]:
    """(shape, dtype) from the header of a .npy stream (nothing of the data is read)."""
    version = np.lib.format.read_magic(stream)
    if version == (1, 0):
        shape, _, dtype = np.lib.format.read_array_header_1_0(stream)
    elif version == (2, 0):
        shape, _, dtype = np.lib.format.read_array_header_2_0(stream)
    else:
        shape, _, dtype = np.lib.format._read_array_header(stream, version)  # type: ignore[attr-defined]
    return tuple(int(n) for n in shape), dtype


def _check_npz_members(path: Path, what: str, max_bytes: int) -> None:
    """Refuse an .npz before np.load allocates: members that are not .npy, object arrays,
    headers that declare more data than the member holds, and more than the budget in all."""
    with zipfile.ZipFile(path) as archive:
        members = archive.infolist()
        if len(members) > _MAX_MEMBERS:
            raise InputError(
                f"{what} {path}: holds {len(members)} members; expected a few named arrays"
            )
        total = 0
        for member in members:
            name = member.filename
            key = name[:-4] if name.endswith(".npy") else name
            if not name.endswith(".npy"):
                raise _not_an_array(key, path, what)
            with archive.open(member) as stream:
                shape, dtype = _npy_header(stream)
                offset = stream.tell()
            if dtype.hasobject:
                raise InputError(
                    f"{what} {path}: {key} is an object array, which would need unpickling; "
                    "save plain numeric arrays instead"
                )
            nbytes = math.prod(shape) * dtype.itemsize
            if nbytes > member.file_size - offset:
                raise InputError(
                    f"{what} {path}: {key} declares shape {shape} ({size_text(nbytes)}) but "
                    f"holds {size_text(max(member.file_size - offset, 0))}: corrupt or truncated"
                )
            total += nbytes
        check_budget(f"{what} {path}", "its arrays declare", total, max_bytes)


def _npz_member(archive: Any, key: str, path: Path, what: str) -> np.ndarray:
    """One array of an open NpzFile; object arrays and non-.npy members are refused by name."""
    try:
        value = archive[key]
    except ValueError as exc:
        if "allow_pickle" in str(exc) or "Object arrays" in str(exc):
            raise InputError(
                f"{what} {path}: {key} is an object array, which would need unpickling; "
                "save plain numeric arrays instead"
            ) from None
        raise InputError(
            f"{what} {path}: {key} is not a readable array ({one_line(exc)})"
        ) from None
    if not isinstance(value, np.ndarray):  # NpzFile hands members that are not .npy as bytes
        raise _not_an_array(key, path, what)
    return value


def read_csv(
    path: str | Path, what: str = "data file", *, max_bytes: int = DEFAULT_MAX_BYTES
) -> dict[str, np.ndarray]:
    """X and T from a CSV with a header row: columns T, T0, T1.. are targets, the rest is X.

    The file's size, and its rows times the header's columns as float64, must fit the budget.
    """
    path, size = regular_file(path, what)
    check_budget(f"{what} {path}", "the file is", size, max_bytes)
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            first = handle.readline(_MAX_HEADER_LINE)
        if len(first) >= _MAX_HEADER_LINE and not first.endswith(("\n", "\r")):
            raise InputError(
                f"{what} {path}: the header line is longer than {_MAX_HEADER_LINE} characters"
            )
        header = next(csv.reader([first]), None)
    except UnicodeDecodeError:
        raise InputError(f"{what} {path}: not a text CSV file (not UTF-8)") from None
    except csv.Error as exc:
        raise InputError(f"{what} {path}: the header line is not CSV ({one_line(exc)})") from None
    if not header:
        raise InputError(f"{what} {path}: is empty; expected a header row, e.g. x0,x1,T")
    names = [name.strip() for name in header]
    targets = [i for i, name in enumerate(names) if _TARGET_COLUMN.match(name)]
    inputs = [i for i, name in enumerate(names) if not _TARGET_COLUMN.match(name)]
    if not targets or not inputs:
        raise InputError(
            f"{what} {path}: header {','.join(names)!r} needs target columns named T or "
            "T0, T1, ... and at least one other (input) column"
        )
    rows = max(_count_lines(path) - 1, 0)  # the header is not a row
    check_budget(
        f"{what} {path}",
        f"{rows} rows of {len(names)} columns as float64 come to",
        rows * len(names) * 8,
        max_bytes,
    )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # loadtxt warns on a header-only file; we raise below
            table = np.loadtxt(
                path, delimiter=",", skiprows=1, ndmin=2, dtype=np.float64, encoding="utf-8-sig"
            )
    except (ValueError, UnicodeDecodeError) as exc:
        # loadtxt is fast but counts rows its own way; find the bad cell again by file line.
        detail = _locate_csv_error(path, names) or one_line(str(exc).split(";")[0])
        raise InputError(f"{what} {path}: not a numeric CSV table ({detail})") from None
    if table.size == 0:
        raise InputError(f"{what} {path}: has a header but no data rows")
    if table.shape[1] != len(names):
        raise InputError(
            f"{what} {path}: the header has {len(names)} columns but the rows have {table.shape[1]}"
        )
    T = table[:, targets]
    return {"X": table[:, inputs], "T": T[:, 0] if len(targets) == 1 else T}


def _count_lines(path: Path) -> int:
    """Line breaks in the file, plus one for a last line without one (read in 1 MB chunks)."""
    count, last = 0, b"\n"
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            count += chunk.count(b"\n")
            last = chunk[-1:]
    return count + (last != b"\n")


def _locate_csv_error(path: Path, names: list[str]) -> str | None:
    """Where a CSV first stops being a numeric table, as 'line N, column NAME: ...'."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            for line, row in enumerate(csv.reader(handle), start=1):
                if line == 1 or not "".join(row).strip() or row[0].lstrip().startswith("#"):
                    continue  # the header, blank lines and comments, as loadtxt skips them
                if len(row) != len(names):
                    return f"line {line} has {len(row)} columns; the header has {len(names)}"
                for name, cell in zip(names, row):
                    try:
                        float(cell)
                    except ValueError:
                        return f"line {line}, column {name}: {cell.strip()!r} is not a number"
    except (UnicodeDecodeError, csv.Error):
        return None
    return None


def read_utils(
    path: str | Path, *, timeout: float = DEFAULT_TIMEOUT, max_bytes: int = DEFAULT_MAX_BYTES
) -> tuple[dict[str, np.ndarray], int]:
    """Run a utils.py in a child process; getdata() -> (X, T) and getparams() -> (W, B) come
    back as arrays {X, T, W0.., B0..} (values untouched) with the number of weight arrays.

    The file's prints go to stderr; its failures, exits, crashes and hangs (past `timeout`
    seconds) are bad input (InputError), and nothing it does reaches this process.
    """
    path = check_file(path, "utils file")
    header, arrays = run_file(
        {"task": "utils", "path": str(path), "source": str(path)},
        "utils file",
        path,
        timeout=timeout,
        max_bytes=max_bytes,
        returned="the arrays it returned come to",
        during="while being run (getdata() and getparams() had not returned)",
    )
    weights = int(header["weights"])
    return arrays, weights


def run_file(
    init: dict[str, Any],
    kind: str,
    path: Path,
    *,
    timeout: float,
    max_bytes: int,
    returned: str,
    during: str,
    arguments: tuple[str, ...] = (),
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Run a user's file in a child process (task `init`) and take its one answer: the
    header and arrays, whose kind is the task's. Its failures, exits, crashes, hangs (past
    `timeout` seconds) and answers over `max_bytes` are bad input (InputError) naming the
    file as `kind` (e.g. "utils file")."""
    what = f"{kind} {path}"
    try:
        seconds = check_timeout(timeout)
    except ValueError as exc:
        raise InputError(str(exc), arguments=("timeout",)) from None
    try:
        child = ChildProcess(init, label=f"{kind} {path.name}", max_bytes=max_bytes)
        try:
            header, arrays = child.receive(seconds)
        finally:
            child.close()
    except ChildFailure as exc:
        if exc.over_budget is not None:
            raise over_budget(what, returned, exc.over_budget, max_bytes) from None
        raise InputError(f"{what}: {exc} {during}") from None
    if header.get("kind") == "input_error":
        raise InputError(str(header["message"]), arguments=arguments)
    if header.get("kind") != init["task"]:
        raise InputError(f"{what}: the process running it answered {header!r}")
    return header, arrays
