"""The child process that runs a user's code: a --user function or a --utils file.

Started by `safety.process` as a script (`python child.py`), so it imports only the standard
library and NumPy, never gradcheck itself. It talks to its parent over its original stdin and
stdout, which it keeps as private descriptors; file descriptors 1 and 2 (and anything the user's
code or its subprocesses print) go to the capture file the parent gave as stderr. Messages are a
JSON header plus raw numeric arrays (never pickle), so nothing the user's code returns can run in
the parent. What the user's code returns is turned into plain arrays here, in the child.

The parent also imports this module, for the message format and for the helpers that turn a
user's values into arrays (the in-process path of `check(f)` uses them too).
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import inspect
import json
import os
import struct
import sys
import threading
import time
import traceback as tb
import types
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

import numpy as np

_HEADER = struct.Struct(">I")  # length of a message's JSON header
_MAX_HEADER = 16 << 20
_MAX_MESSAGE_TEXT = 300  # a user's exception text is clipped so the error stays one readable line
NUMERIC_KINDS = "biuf"

Arrays = dict[str, np.ndarray]


class ProtocolError(Exception):
    """A message that does not follow the format (or would exceed the reader's byte budget)."""


class OverBudget(ProtocolError):
    """A message whose arrays declare more bytes than the reader accepts."""

    def __init__(self, nbytes: int) -> None:
        super().__init__(f"arrays of {nbytes} bytes")
        self.nbytes = nbytes


class Unusable(Exception):
    """What the user's code returned cannot be used; the message says precisely why."""


# --- messages: a JSON header with the arrays' specs, then each array's raw bytes


def write_message(stream: IO[bytes], header: dict[str, Any], arrays: Arrays | None = None) -> None:
    """Write one message: the header (with the arrays' dtypes and shapes), then their bytes."""
    arrays = arrays or {}
    specs = []
    contiguous = []
    for name, array in arrays.items():
        array = np.ascontiguousarray(array)
        if array.dtype.kind not in NUMERIC_KINDS:
            raise ProtocolError(f"{name} has dtype {array.dtype}, which is not sent")
        specs.append([name, array.dtype.str, list(array.shape)])
        contiguous.append(array)
    text = json.dumps({**header, "arrays": specs}).encode()
    stream.write(_HEADER.pack(len(text)) + text)
    for array in contiguous:
        stream.write(array.reshape(-1).view(np.uint8).data)
    stream.flush()


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


# --- text about the user's exceptions


def one_line(text: object) -> str:
    """`text` on one line (whitespace collapsed), clipped to a readable length."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= _MAX_MESSAGE_TEXT else flat[: _MAX_MESSAGE_TEXT - 3] + "..."


def exception_line(exc: BaseException) -> str:
    """'ValueError: first line of the message'."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {one_line(text[0])}" if text else type(exc).__name__


def _same_file(frame_file: str, target: str) -> bool:
    try:
        return str(Path(frame_file).resolve()) == target
    except (OSError, ValueError):
        return False


def user_frames_only(exc: BaseException, user_file: Path) -> str:
    """The traceback of `exc` from the first frame in the user's file on (tool frames dropped)."""
    frames = tb.extract_tb(exc.__traceback__)
    target = str(user_file.resolve())
    start = next((i for i, f in enumerate(frames) if _same_file(f.filename, target)), None)
    kept = tb.StackSummary.from_list(frames[start:] if start is not None else [])
    lines = ["Traceback (most recent call last):\n", *kept.format()]
    lines.extend(tb.format_exception_only(type(exc), exc))
    return "".join(lines)


def describe_at(exc: BaseException, path: Path) -> str:
    """'ValueError: message (utils.py, line 7)', pointing at the user's own line."""
    target = str(path.resolve())
    line = None
    for frame in tb.extract_tb(exc.__traceback__):
        if _same_file(frame.filename, target):
            line = frame.lineno
    where = f" ({path.name}, line {line})" if line is not None else ""
    return f"{type(exc).__name__}: {one_line(exc)}{where}"


# --- a user function's signature and result


def signature_of(fn: Callable[..., Any]) -> list[list[Any]] | None:
    """The positional parameters of `fn` as [name, has_default] pairs; None if unreadable."""
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return None
    return [
        [p.name, p.default is not p.empty, p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        for p in signature.parameters.values()
    ]


def as_array(value: Any, what: str) -> np.ndarray:
    """A user's returned value as a numeric array, or Unusable naming it."""
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # a torch tensor: take its values
        value = value.detach().cpu().numpy()
    try:
        array = np.asarray(value)
    except Exception as exc:  # e.g. a ragged nested list
        raise Unusable(f"{what} is not an array of numbers ({exception_line(exc)})") from None
    if array.dtype.kind not in NUMERIC_KINDS:
        got = type(value).__name__ if array.dtype.kind == "O" else f"dtype {array.dtype}"
        raise Unusable(f"{what} is not numeric (got {got})")
    return array


def array_list(value: Any, label: str, expected: int) -> tuple[np.ndarray, ...]:
    """DW or DB as a tuple of arrays; lists and tuples of arrays are accepted."""
    if isinstance(value, np.ndarray) or not isinstance(value, Sequence):
        raise Unusable(
            f"{label} is a {type(value).__name__}; expected a list of {expected} arrays "
            f"({label}[i] for layer i)"
        )
    if len(value) != expected:
        raise Unusable(f"returned {len(value)} arrays for {label}; expected {expected}")
    return tuple(as_array(v, f"{label}[{i}]") for i, v in enumerate(value))


def _is_array_list(value: Any) -> bool:
    return isinstance(value, (list, tuple)) and not isinstance(value, np.ndarray)


def returns_of(form: str) -> str:
    """What a function of this call form returns, as the messages say it."""
    return "DW or (DW, DB)" if form == "exercise" else "(DW, DB) or (loss, DW, DB)"


def split_result(result: Any, form: str, depth: int) -> tuple[Any, Any, Any]:
    """(loss, DW, DB) from what the function returned; loss and DB may be None."""
    if not isinstance(result, (list, tuple)):
        raise Unusable(f"returned a {type(result).__name__} value; expected {returns_of(form)}")
    if form == "exercise":
        # (DW, DB) is a pair of lists; DW alone is a list of arrays (even when depth is 2).
        if len(result) == 2 and all(_is_array_list(r) for r in result):
            return None, result[0], result[1]
        if len(result) != depth and any(_is_array_list(r) for r in result):
            # e.g. (DW, DB, loss): not DW alone, so "returned 3 arrays for DW" would mislead.
            raise Unusable(f"returned {len(result)} values; expected {returns_of(form)}")
        return None, result, None
    if len(result) == 2:
        return None, result[0], result[1]
    if len(result) == 3:
        return result[0], result[1], result[2]
    raise Unusable(f"returned {len(result)} values; expected {returns_of(form)}")


def loss_value(value: Any) -> float:
    """The returned loss as a finite float, or Unusable."""
    array = as_array(value, "the returned loss")
    if array.size != 1:
        raise Unusable(f"the returned loss has shape {array.shape}; expected a scalar")
    loss = float(array.reshape(-1)[0])
    if not np.isfinite(loss):
        raise Unusable(f"the returned loss is {loss}; expected finite")
    return loss


def gradients_of(
    result: Any, form: str, depth: int
) -> tuple[float | None, tuple[np.ndarray, ...], tuple[np.ndarray, ...] | None]:
    """(loss, DW, DB) as plain values from a user function's result, or Unusable."""
    loss, dw, db = split_result(result, form, depth)
    DW = array_list(dw, "DW", depth)
    DB = array_list(db, "DB", depth) if db is not None else None
    return (loss_value(loss) if loss is not None else None), DW, DB


# --- the data of a --utils file


def plain_array(name: str, value: object, where: str) -> np.ndarray:
    """`value` as a numeric ndarray; torch tensors (even with requires_grad) widen exactly to
    float64; Unusable with make_problem's wording otherwise."""
    if hasattr(value, "detach") and hasattr(value, "is_floating_point"):  # a torch.Tensor
        tensor: Any = value.detach().cpu()
        value = (tensor.double() if tensor.is_floating_point() else tensor).numpy()
    try:
        array = np.asarray(value)
    except (ValueError, TypeError, RuntimeError) as exc:  # ragged nested lists and the like
        detail = "its rows have different lengths" if "inhomogeneous" in str(exc) else exc
        raise Unusable(
            f"{where}: {name} is not a rectangular numeric array ({one_line(detail)})"
        ) from None
    if array.dtype.kind not in NUMERIC_KINDS:
        raise Unusable(f"{where}: {name} has dtype {array.dtype}; expected a numeric array")
    return array


# --- running the user's file


def _load(path: Path, name: str) -> types.ModuleType:
    """Execute the user's file as a module; what it raises propagates."""
    loader = importlib.machinery.SourceFileLoader(name, str(path))  # any suffix, not only .py
    spec = importlib.util.spec_from_file_location(name, path, loader=loader)
    if spec is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and pickling inside the file look themselves up here
    loader.exec_module(module)
    return module


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except Exception:  # the user replaced or closed it: nothing left to flush
            pass


def serve_function(init: dict[str, Any], reply: Callable[..., None], requests: IO[bytes]) -> None:
    """Import the user's file, say whether the function is there, then answer calls."""
    path, name = Path(init["path"]), str(init["function"])
    try:
        module = _load(path, f"_gradcheck_user_{path.stem}")
    except BaseException as exc:  # the user's code raising is a finding, whatever it raises
        _flush()
        reply(
            {
                "kind": "import_error",
                "message": f"importing {path.name} raised {exception_line(exc)}",
                "traceback": user_frames_only(exc, path),
            }
        )
        return
    _flush()
    fn = getattr(module, name, None)
    if fn is None:
        reply({"kind": "no_function"})
        return
    if not callable(fn):
        reply({"kind": "not_callable"})
        return
    reply({"kind": "ready", "parameters": signature_of(fn)})
    while True:
        try:
            header, arrays = read_message(requests)
        except EOFError:
            return
        args = [
            [arrays[n] for n in item] if isinstance(item, list) else arrays[item]
            for item in header["args"]
        ]
        try:
            result = fn(*args)
            loss, DW, DB = gradients_of(result, header["form"], int(header["depth"]))
        except Unusable as exc:
            _flush()
            reply({"kind": "invalid", "message": str(exc)})
            continue
        except BaseException as exc:  # SystemExit, KeyboardInterrupt and their kin included
            _flush()
            reply(
                {
                    "kind": "raised",
                    "message": exception_line(exc),
                    "traceback": user_frames_only(exc, path),
                }
            )
            continue
        _flush()
        out = {f"DW{i}": a for i, a in enumerate(DW)}
        out.update({f"DB{i}": a for i, a in enumerate(DB or ())})
        reply({"kind": "gradients", "loss": loss, "has_db": DB is not None}, out)


def _call_pair(module: types.ModuleType, function: str, names: tuple[str, str], path: Path) -> Any:
    expected = f"{function}() -> ({', '.join(names)})"
    func = getattr(module, function, None)
    if not callable(func):
        raise Unusable(f"utils file {path}: defines no function {function}(); expected {expected}")
    try:
        result = func()
    except BaseException as exc:
        raise Unusable(f"utils file {path}: {function}() raised {describe_at(exc, path)}") from None
    if not isinstance(result, (tuple, list)):
        raise Unusable(
            f"utils file {path}: {function}() returned one {type(result).__name__}; "
            f"expected a pair ({', '.join(names)})"
        )
    if len(result) != 2:
        raise Unusable(
            f"utils file {path}: {function}() returned {len(result)} values; "
            f"expected 2: ({', '.join(names)})"
        )
    return result[0], result[1]


def _as_list(value: object, name: str, path: Path) -> list[object]:
    """W or B as a list of per-layer arrays (a 1-D object array of arrays is accepted too)."""
    if isinstance(value, np.ndarray) and value.dtype == object and value.ndim == 1:
        return list(value)
    if not isinstance(value, (list, tuple)):
        raise Unusable(
            f"utils file {path}: getparams() returned {name} as a {type(value).__name__}; "
            f"expected a list of arrays [{name}0, {name}1, ...]"
        )
    return list(value)


def _utils_arrays(path: Path, source: str) -> tuple[dict[str, Any], Arrays]:
    try:
        module = _load(path, f"gradcheck_utils_{path.stem}")
    except SyntaxError as exc:
        # A binary file (e.g. an .npz given as --utils) is a SyntaxError without a line.
        where = f"line {exc.lineno}: " if exc.lineno is not None else ""
        message = f"{where}{one_line(exc.msg)} (not valid Python)"
        raise Unusable(f"utils file {path}: {message}") from None
    except UnicodeDecodeError:
        raise Unusable(f"utils file {path}: not a Python source file (not UTF-8 text)") from None
    except BaseException as exc:  # the user's code failed while being run
        raise Unusable(
            f"utils file {path}: raised {describe_at(exc, path)} while being run"
        ) from None
    X, T = _call_pair(module, "getdata", ("X", "T"), path)
    W, B = _call_pair(module, "getparams", ("W", "B"), path)
    weights, biases = _as_list(W, "W", path), _as_list(B, "B", path)
    arrays = {"X": plain_array("X", X, source), "T": plain_array("T", T, source)}
    arrays.update({f"W{i}": plain_array(f"W{i}", w, source) for i, w in enumerate(weights)})
    arrays.update({f"B{i}": plain_array(f"B{i}", b, source) for i, b in enumerate(biases)})
    return {"kind": "utils", "weights": len(weights), "biases": len(biases)}, arrays


def serve_utils(init: dict[str, Any], reply: Callable[..., None]) -> None:
    """Run a utils file and send back getdata()'s (X, T) and getparams()'s (W, B) as arrays."""
    try:
        header, arrays = _utils_arrays(Path(init["path"]), str(init["source"]))
    except Unusable as exc:
        _flush()
        reply({"kind": "input_error", "message": str(exc)})
        return
    except BaseException as exc:  # e.g. a user object whose __len__ raises
        _flush()
        message = f"utils file {init['path']}: {exception_line(exc)}"
        reply({"kind": "input_error", "message": message})
        return
    _flush()
    reply(header, arrays)


def _watch_parent(parent: int) -> None:
    """Exit when the parent is gone (killed): a hung user function must not outlive it."""
    while True:
        time.sleep(0.5)
        if os.getppid() != parent:
            os._exit(70)


def main() -> None:
    """Keep the protocol's pipes private, point fds 0/1 away from them, then serve one task."""
    requests = os.fdopen(os.dup(0), "rb")
    replies = os.fdopen(os.dup(1), "wb")
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    os.dup2(2, 1)  # the user's prints, and their subprocesses', go to the capture file
    for stream in (sys.stdout, sys.stderr):
        if stream is not None and hasattr(stream, "reconfigure"):
            stream.reconfigure(encoding="utf-8", errors="backslashreplace", line_buffering=True)
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]
    threading.Thread(target=_watch_parent, args=(os.getppid(),), daemon=True).start()
    lock = threading.Lock()

    def reply(header: dict[str, Any], arrays: Arrays | None = None) -> None:
        with lock:
            write_message(replies, header, arrays)

    try:
        init, _ = read_message(requests)
    except EOFError:
        os._exit(0)
    # The user's folder first on sys.path, as when the file is run from there.
    sys.path.insert(0, str(Path(init["path"]).resolve().parent))
    try:
        if init["task"] == "function":
            serve_function(init, reply, requests)
        else:
            serve_utils(init, reply)
    except (BrokenPipeError, EOFError):
        pass
    _flush()
    # Without waiting for the user's threads or atexit handlers: the parent has its answer.
    os._exit(0)


if __name__ == "__main__":
    main()
