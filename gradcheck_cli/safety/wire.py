"""The messages between gradcheck and the child process that runs a user's code.

A message is a JSON header (its length first, 4 bytes) naming the arrays that follow, then
each array's raw bytes. Only numeric arrays travel, never pickle: nothing a user's code
returns can run in gradcheck's process, and array sizes are checked before they are read.
Standard library and NumPy only (the child loads this file without the package).
"""

from __future__ import annotations

import json
import struct
from typing import IO, Any

import numpy as np

_HEADER = struct.Struct(">I")  # length of a message's JSON header
_MAX_HEADER = 16 << 20
NUMERIC_KINDS = "biuf"

Arrays = dict[str, np.ndarray]


class ProtocolError(Exception):
    """A message that does not follow the format (or would exceed the reader's byte budget)."""


class OverBudget(ProtocolError):
    """A message whose arrays declare more bytes than the reader accepts."""

    def __init__(self, nbytes: int) -> None:
        super().__init__(f"arrays of {nbytes} bytes")
        self.nbytes = nbytes


def write_message(stream: IO[bytes], header: dict[str, Any], arrays: Arrays | None = None) -> None:
    """Write one message: the header (with the arrays' dtypes and shapes), then their bytes."""
    arrays = arrays or {}
    specs = []
    contiguous = []
    for name, array in arrays.items():
        array = np.asarray(array)
        array = array if array.flags.c_contiguous else array.copy(order="C")  # 0-d stays 0-d
        if array.dtype.kind not in NUMERIC_KINDS:
            raise ProtocolError(f"{name} has dtype {array.dtype}, which is not sent")
        specs.append([name, array.dtype.str, list(array.shape)])
        contiguous.append(array)
    text = json.dumps({**header, "arrays": specs}).encode()
    _write_all(stream, _HEADER.pack(len(text)) + text)
    for array in contiguous:
        _write_all(stream, array.reshape(-1).view(np.uint8).data)
    stream.flush()


def _write_all(stream: IO[bytes], data: bytes | memoryview) -> None:
    """Write every byte (an unbuffered stream may take part of them per call)."""
    view = memoryview(data).cast("B")
    while view:
        written = stream.write(view)
        if not written:
            raise BrokenPipeError("the other side does not read")
        view = view[written:]


def _read_exactly(stream: IO[bytes], size: int) -> bytearray:
    buffer = bytearray(size)
    view = memoryview(buffer)
    done = 0
    while done < size:
        got = stream.readinto(view[done:])  # type: ignore[attr-defined]
        if not got:
            raise EOFError
        done += got
    return buffer


def read_message(stream: IO[bytes], max_bytes: int | None = None) -> tuple[dict[str, Any], Arrays]:
    """Read one message; EOFError at the end of the stream. Array sizes are checked against
    `max_bytes` before anything is allocated for them."""
    (length,) = _HEADER.unpack(bytes(_read_exactly(stream, _HEADER.size)))
    if length > _MAX_HEADER:
        raise ProtocolError(f"a message header of {length} bytes")
    header = json.loads(bytes(_read_exactly(stream, length)))
    if not isinstance(header, dict):
        raise ProtocolError("a message header that is not an object")
    specs = header.pop("arrays", [])
    plan = []
    total = 0
    for spec in specs:
        name, code, shape = spec
        dtype = np.dtype(str(code))
        if dtype.kind not in NUMERIC_KINDS or dtype.hasobject:
            raise ProtocolError(f"array {name} of dtype {dtype}")
        dims = tuple(int(n) for n in shape)
        if any(n < 0 for n in dims):
            raise ProtocolError(f"array {name} of shape {dims}")
        size = int(np.prod(dims, dtype=object)) * dtype.itemsize
        total += size
        plan.append((str(name), dtype, dims, size))
    if max_bytes is not None and total > max_bytes:
        raise OverBudget(total)
    arrays: Arrays = {}
    for name, dtype, dims, size in plan:
        arrays[name] = np.frombuffer(_read_exactly(stream, size), dtype=dtype).reshape(dims)
    return header, arrays
