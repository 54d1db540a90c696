"""File readers: .npz, .csv, a PyTorch state_dict (.pt) and the course's utils.py, to plain arrays.

Readers only turn files into arrays and lists of arrays; `loading.make_problem` validates shapes
and values. Every failure is one InputError line naming the file and what was expected. Nothing
here ever unpickles: npz with allow_pickle=False, .pt with torch.load(weights_only=True).
"""

from __future__ import annotations

import csv
import importlib.machinery
import importlib.util
import re
import sys
import traceback
import warnings
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager, redirect_stdout
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from ..errors import InputError

TORCH_SUFFIXES = (".pt", ".pth")
CSV_SUFFIXES = (".csv",)
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")  # a zip with members / an empty zip
_NPY_MAGIC = b"\x93NUMPY"
_TARGET_COLUMN = re.compile(r"^[Tt]\d*$")  # CSV columns T, T0, T1, ... hold the targets
_STATE_KEY = re.compile(r"^(?:(?P<prefix>.+)\.)?(?P<index>\d+)\.(?P<kind>weight|bias)$")
_MAX_MESSAGE = 300  # a user's exception text is clipped so the error stays one readable line


def one_line(text: object) -> str:
    """`text` on one line (whitespace collapsed), clipped to a readable length."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= _MAX_MESSAGE else flat[: _MAX_MESSAGE - 3] + "..."


def check_file(path: str | Path, what: str) -> Path:
    """`path` as a Path, or an InputError when it is missing or a directory."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{what} {path}: no such file")
    if path.is_dir():
        raise InputError(f"{what} {path}: is a directory, expected a file")
    return path


def _head(path: Path, what: str, size: int = 8) -> bytes:
    try:
        with path.open("rb") as handle:
            return handle.read(size)
    except OSError as exc:
        raise InputError(f"{what} {path}: cannot be read ({exc.strerror or exc})") from None


def read_npz(path: str | Path, what: str = "file") -> dict[str, np.ndarray]:
    """Read every array of an .npz, refusing pickled (object) arrays."""
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
        with np.load(path, allow_pickle=False) as archive:
            return {key: _npz_member(archive, key, path, what) for key in archive.files}
    except InputError:
        raise
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError) as exc:
        raise InputError(
            f"{what} {path}: corrupt or truncated .npz file ({one_line(exc)})"
        ) from None


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
        hint = " (a PyTorch file? give it as --params model.pt)" if "data.pkl" in key else ""
        raise InputError(
            f"{what} {path}: member {key!r} is not a NumPy array{hint}; "
            "expected an .npz written by np.savez"
        )
    return value


def read_csv(path: str | Path, what: str = "data file") -> dict[str, np.ndarray]:
    """X and T from a CSV with a header row: columns T, T0, T1.. are targets, the rest is X."""
    path = check_file(path, what)
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            header = next(csv.reader(handle), None)
    except UnicodeDecodeError:
        raise InputError(f"{what} {path}: not a text CSV file (not UTF-8)") from None
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


def read_state_dict(
    path: str | Path, what: str = "params file"
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """W0.., B0.. from the state_dict of an nn.Sequential of Linear (+ activation) modules.

    Linear.weight (out, in) becomes W (in, out); layers follow the module indices.
    """
    path = check_file(path, what)
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency, but say so if it is gone
        raise InputError(
            f"{what} {path}: reading .pt files needs PyTorch (pip install torch)"
        ) from None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # any failure to read a user's file is bad input, not a bug
        raise InputError(_torch_load_message(path, what, exc)) from None
    if not isinstance(state, dict):
        raise InputError(
            f"{what} {path}: holds a {type(state).__name__}, expected a state_dict "
            "(save model.state_dict())"
        )
    nested = [key for key, value in state.items() if isinstance(value, dict)]
    if nested:
        raise InputError(
            f"{what} {path}: looks like a training checkpoint ({nested[0]!r} holds a dict); "
            f"save the model's state_dict() alone, e.g. torch.save(checkpoint[{nested[0]!r}], ...)"
        )
    layers: dict[int, dict[str, Any]] = {}
    prefixes: set[str] = set()
    for key, value in state.items():
        match = _STATE_KEY.match(key) if isinstance(key, str) else None
        if match is None:
            raise InputError(
                f"{what} {path}: key {key!r} is not '<index>.weight' or '<index>.bias' of an "
                "nn.Sequential of Linear layers"
            )
        if not isinstance(value, torch.Tensor):
            raise InputError(
                f"{what} {path}: {key} is a {type(value).__name__}, expected a tensor "
                "(a training checkpoint? save model.state_dict() alone)"
            )
        prefixes.add(match["prefix"] or "")
        layers.setdefault(int(match["index"]), {})[match["kind"]] = value
    if not layers:
        raise InputError(f"{what} {path}: the state_dict is empty; expected Linear weights")
    if len(prefixes) > 1:
        raise InputError(
            f"{what} {path}: keys of several modules ({', '.join(sorted(prefixes))}); "
            "expected one nn.Sequential"
        )
    prefix = prefixes.pop()
    dot = f"{prefix}." if prefix else ""
    weights: list[np.ndarray] = []
    biases: list[np.ndarray] = []
    previous = ""
    for index in sorted(layers):  # numeric order: module 10 comes after module 2
        module = layers[index]
        for kind in ("weight", "bias"):
            if kind not in module:
                raise InputError(
                    f"{what} {path}: {dot}{index}.{kind} missing; expected every Linear to have "
                    "a weight and a bias"
                )
        weight, bias = module["weight"], module["bias"]
        name = f"{dot}{index}.weight"
        if weight.ndim != 2 or bias.ndim != 1 or bias.shape[0] != weight.shape[0]:
            raise InputError(
                f"{what} {path}: {name} {tuple(weight.shape)} and {dot}{index}.bias "
                f"{tuple(bias.shape)} are not a Linear layer's (out, in) and (out,)"
            )
        if weights and weight.shape[1] != weights[-1].shape[1]:
            raise InputError(
                f"{what} {path}: {name} is {tuple(weight.shape)}, so its Linear takes "
                f"{weight.shape[1]} inputs, but {previous} outputs {weights[-1].shape[1]}"
            )
        weights.append(_tensor_to_numpy(weight, name, path, what).T.copy())
        biases.append(_tensor_to_numpy(bias, f"{dot}{index}.bias", path, what))
        previous = name
    return weights, biases


def _torch_load_message(path: Path, what: str, exc: Exception) -> str:
    """One line for a torch.load failure: the weights_only refusal explained, or corruption."""
    text = str(exc)
    refused = re.search(r"Unsupported global: GLOBAL ([\w.]+)", text)
    if refused:
        return (
            f"{what} {path}: refused by torch.load(weights_only=True): it holds a pickled "
            f"Python object ({refused[1]}), not only tensors, and gradcheck never runs code "
            "from a data file; save model.state_dict() instead"
        )
    return (
        f"{what} {path}: not a readable PyTorch file (corrupt, truncated, or not written by "
        f"torch.save; {type(exc).__name__})"
    )


def _tensor_to_numpy(tensor: Any, name: str, path: Path, what: str) -> np.ndarray:
    """A tensor as float64 NumPy; float16/bfloat16/float32 widen exactly."""
    import torch

    if tensor.is_complex():
        raise InputError(
            f"{what} {path}: {name} is complex ({tensor.dtype}); expected real numbers"
        )
    array: np.ndarray = tensor.detach().to(device="cpu", dtype=torch.float64).numpy().copy()
    return array


def read_utils(path: str | Path) -> tuple[object, object, list[object], list[object]]:
    """Run a utils.py and return getdata() -> (X, T) and getparams() -> (W, B), values untouched."""
    path = check_file(path, "utils file")
    # The user's prints go to stderr: stdout belongs to the report (`--json` must stay parseable).
    with _importable_from(path.parent), redirect_stdout(sys.stderr):
        module = _run_file(path)
        X, T = _call_pair(module, "getdata", ("X", "T"), path)
        W, B = _call_pair(module, "getparams", ("W", "B"), path)
    return X, T, _as_list(W, "W", path), _as_list(B, "B", path)


@contextmanager
def _importable_from(folder: Path) -> Iterator[None]:
    """Let the user's file import its sibling modules, as it would when run from its folder."""
    entry = str(folder.resolve())
    sys.path.insert(0, entry)
    try:
        yield
    finally:
        if entry in sys.path:
            sys.path.remove(entry)


def _run_file(path: Path) -> ModuleType:
    name = f"gradcheck_utils_{abs(hash(str(path.resolve())))}"
    loader = importlib.machinery.SourceFileLoader(name, str(path))  # any suffix, not only .py
    spec = importlib.util.spec_from_file_location(name, path, loader=loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and pickling inside the file look themselves up here
    try:
        loader.exec_module(module)
    except SyntaxError as exc:
        # A binary file (e.g. an .npz given as --utils) is a SyntaxError without a line.
        where = f"line {exc.lineno}: " if exc.lineno is not None else ""
        raise InputError(
            f"utils file {path}: {where}{one_line(exc.msg)} (not valid Python)"
        ) from None
    except UnicodeDecodeError:
        raise InputError(f"utils file {path}: not a Python source file (not UTF-8 text)") from None
    except (Exception, SystemExit) as exc:  # the user's code failed while being run
        raise InputError(
            f"utils file {path}: raised {_describe(exc, path)} while being run"
        ) from None
    finally:
        sys.modules.pop(name, None)
    return module


def _call_pair(
    module: ModuleType, function: str, names: tuple[str, str], path: Path
) -> tuple[object, object]:
    expected = f"{function}() -> ({', '.join(names)})"
    func: Callable[[], object] | None = getattr(module, function, None)
    if not callable(func):
        raise InputError(
            f"utils file {path}: defines no function {function}(); expected {expected}"
        )
    try:
        result = func()
    except (Exception, SystemExit) as exc:
        raise InputError(f"utils file {path}: {function}() raised {_describe(exc, path)}") from None
    if not isinstance(result, (tuple, list)):
        raise InputError(
            f"utils file {path}: {function}() returned one {type(result).__name__}; "
            f"expected a pair ({', '.join(names)})"
        )
    if len(result) != 2:
        raise InputError(
            f"utils file {path}: {function}() returned {len(result)} values; "
            f"expected 2: ({', '.join(names)})"
        )
    return result[0], result[1]


def _as_list(value: object, name: str, path: Path) -> list[object]:
    """W or B as a list of per-layer arrays (a 1-D object array of arrays is accepted too)."""
    if isinstance(value, np.ndarray) and value.dtype == object and value.ndim == 1:
        return list(value)
    if not isinstance(value, (list, tuple)):
        raise InputError(
            f"utils file {path}: getparams() returned {name} as a {type(value).__name__}; "
            f"expected a list of arrays [{name}0, {name}1, ...]"
        )
    return list(value)


def _describe(exc: BaseException, path: Path) -> str:
    """'ValueError: message (utils.py, line 7)', pointing at the user's own line."""
    line = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if Path(frame.filename).resolve() == path.resolve():
            line = frame.lineno
    where = f" ({path.name}, line {line})" if line is not None else ""
    return f"{type(exc).__name__}: {one_line(exc)}{where}"
