"""PyTorch files (.pt/.pth): a state_dict's Linear layers as W0.., B0.., sized before loading.

A .pt file is a pickle (in a zip archive since torch 1.6). torch.load(weights_only=True) never
runs its code, but it does allocate what the file declares: a 1.9 KB file can hold a tensor
expanded to 80 GB, which only becomes 80 GB when converted. So the pickle is first read by
`scan`, an unpickler whose every global is an inert stand-in (nothing of the file's is ever
called), which records the storages and tensors the file declares and the globals it names.
Their sizes are checked against the input budget before torch.load, and a file that torch
refuses is explained by the globals it named (code, not only tensors).
"""

from __future__ import annotations

import io
import math
import pickle
import re
import zipfile
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..safety.budget import DEFAULT_MAX_BYTES, check_budget
from .readers import check_file, one_line

_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
_STATE_KEY = re.compile(r"^(?:(?P<prefix>.+)\.)?(?P<index>\d+)\.(?P<kind>weight|bias)$")
_MAX_PICKLE = 16 << 20  # bytes of pickle read for the scan (a state_dict's is a few kB)
# Globals of a plain state_dict (torch.save(model.state_dict())) and their kin.
_TENSOR_GLOBALS = {
    "collections.OrderedDict",
    "torch._utils._rebuild_tensor",
    "torch._utils._rebuild_tensor_v2",
    "torch._utils._rebuild_tensor_v3",
    "torch._utils._rebuild_parameter",
    "torch._utils._rebuild_parameter_with_state",
    "torch._tensor._rebuild_from_type_v2",
    "torch.nn.parameter.Parameter",
    "torch.Size",
    "torch.Tensor",
    "torch.device",
    "torch.storage.UntypedStorage",
    "torch.storage.TypedStorage",
    "torch.serialization._get_layout",
}
_ITEMSIZE = {
    "Double": 8, "Float": 4, "Half": 2, "BFloat16": 2, "Long": 8, "Int": 4, "Short": 2,
    "Char": 1, "Byte": 1, "Bool": 1, "ComplexFloat": 8, "ComplexDouble": 16, "Untyped": 1,
    "QInt8": 1, "QUInt8": 1, "QInt32": 4, "QUInt4x2": 1, "QUInt2x4": 1,
}  # fmt: skip


@dataclass
class _StorageType:
    itemsize: int


@dataclass
class _Storage:
    key: str
    nbytes: int


@dataclass
class _Tensor:
    numel: int
    shape: tuple[int, ...]


class _Opaque:
    """Stands in for any other global: accepts every call and state, does nothing."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __call__(self, *args: Any, **kwargs: Any) -> _Opaque:
        return _Opaque()

    def __setstate__(self, state: Any) -> None:
        pass


def _shape(size: Any) -> tuple[int, ...]:
    return tuple(int(n) for n in size) if isinstance(size, (tuple, list)) else ()


def _rebuild_tensor(storage: Any, offset: Any, size: Any, *args: Any, **kwargs: Any) -> _Tensor:
    shape = _shape(size)
    return _Tensor(math.prod(shape), shape)


def _first(data: Any, *args: Any, **kwargs: Any) -> Any:
    return data


def _from_type(func: Any, new_type: Any, args: Any, state: Any) -> Any:
    return func(*args) if callable(func) and isinstance(args, tuple) else _Opaque()


_STUBS: dict[str, Any] = {
    "collections.OrderedDict": OrderedDict,
    "collections.Counter": Counter,
    "builtins.set": set,
    "torch.Size": tuple,
    "torch._utils._rebuild_tensor": _rebuild_tensor,
    "torch._utils._rebuild_tensor_v2": _rebuild_tensor,
    "torch._utils._rebuild_tensor_v3": _rebuild_tensor,
    "torch._utils._rebuild_parameter": _first,
    "torch._utils._rebuild_parameter_with_state": _first,
    "torch._tensor._rebuild_from_type_v2": _from_type,
}


@dataclass
class Scan:
    """What a .pt file's pickle declares: its storages, tensors, and the globals it names."""

    globals: list[str] = field(default_factory=list)
    storages: dict[str, int] = field(default_factory=dict)
    tensors: list[_Tensor] = field(default_factory=list)
    complete: bool = False

    @property
    def foreign(self) -> list[str]:
        """Globals that a state_dict of tensors has no use for (code, other objects)."""
        return [
            g
            for g in self.globals
            if g not in _TENSOR_GLOBALS
            and not (g.startswith("torch.") and g.endswith("Storage"))
            and not re.fullmatch(r"torch\.[a-z]+\d*(_\w+)?", g)  # dtypes: torch.float32 ..
        ]


class _Scanner(pickle.Unpickler):
    def __init__(self, stream: io.BytesIO, scan: Scan) -> None:
        super().__init__(stream)
        self.scan = scan

    def find_class(self, module: str, name: str) -> Any:
        """An inert stand-in for every global, recorded by name."""
        full = f"{module}.{name}"
        self.scan.globals.append(full)
        if full in _STUBS:
            return _STUBS[full]
        if module.startswith("torch") and name.endswith("Storage"):
            kind = name[: -len("Storage")]
            return _StorageType(_ITEMSIZE.get(kind, 8))
        return _Opaque

    def persistent_load(self, pid: Any) -> Any:
        """A storage reference: its declared size, recorded."""
        if isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage":
            kind, key, numel = pid[1], str(pid[2]), int(pid[4])
            itemsize = kind.itemsize if isinstance(kind, _StorageType) else 8
            self.scan.storages[key] = numel * itemsize
            return _Storage(key, numel * itemsize)
        return _Opaque()


def _collect(value: Any, scan: Scan, depth: int = 0) -> None:
    if depth > 50:
        return
    if isinstance(value, _Tensor):
        scan.tensors.append(value)
    elif isinstance(value, dict):
        for item in value.values():
            _collect(item, scan, depth + 1)
    elif isinstance(value, (list, tuple)):
        for item in value:
            _collect(item, scan, depth + 1)


def scan_pickles(data: bytes, count: int) -> Scan:
    """Read up to `count` consecutive pickles of `data` with inert stand-ins for every global."""
    scan = Scan()
    stream = io.BytesIO(data)
    try:
        for _ in range(count):
            _collect(_Scanner(stream, scan).load(), scan)
        scan.complete = True
    except Exception:  # a truncated or odd pickle: torch.load says what is wrong with it
        pass
    return scan


def scan_file(path: Path, what: str, max_bytes: int) -> Scan:
    """Scan a .pt file (zip or legacy) after checking its archive's declared sizes."""
    with path.open("rb") as handle:
        head = handle.read(4)
    if head.startswith(_ZIP_MAGIC):
        try:
            with zipfile.ZipFile(path) as archive:
                members = archive.infolist()
                total = sum(m.file_size for m in members)
                check_budget(f"{what} {path}", "its archive inflates to", total, max_bytes)
                pickles = [m for m in members if m.filename.endswith("data.pkl")]
                if not pickles or pickles[0].file_size > _MAX_PICKLE:
                    return Scan()
                data = archive.read(pickles[0])
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, RuntimeError):
            return Scan()  # torch.load reports the damage
        scan = scan_pickles(data, 1)
    else:
        with path.open("rb") as handle:
            data = handle.read(_MAX_PICKLE)
        # The legacy format: magic number, protocol version, system info, then the object.
        scan = scan_pickles(data, 4)
    storages = sum(scan.storages.values())
    check_budget(f"{what} {path}", "the storages it declares come to", storages, max_bytes)
    _check_tensors(scan.tensors, path, what, max_bytes)
    return scan


def _check_tensors(tensors: list[Any], path: Path, what: str, max_bytes: int) -> None:
    """The tensors' size as float64 (what they become) must fit the budget."""
    if not tensors:
        return
    total = sum(t.numel for t in tensors) * 8
    if total > max_bytes:
        largest = max(tensors, key=lambda t: t.numel)
        shape = "x".join(str(n) for n in largest.shape) or "a scalar"
        check_budget(
            f"{what} {path}",
            f"its tensors as float64 (the largest {shape}) come to",
            total,
            max_bytes,
        )


def read_state_dict(
    path: str | Path, what: str = "params file", *, max_bytes: int = DEFAULT_MAX_BYTES
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """W0.., B0.. from the state_dict of an nn.Sequential of Linear (+ activation) modules.

    Linear.weight (out, in) becomes W (in, out); layers follow the module indices.
    """
    path = check_file(path, what)
    check_budget(f"{what} {path}", "the file is", path.stat().st_size, max_bytes)
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency, but say so if it is gone
        raise InputError(
            f"{what} {path}: reading .pt files needs PyTorch (pip install torch)"
        ) from None
    scan = scan_file(path, what, max_bytes)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # any failure to read a user's file is bad input, not a bug
        raise InputError(_torch_load_message(path, what, exc, scan)) from None
    return _layers(state, path, what, max_bytes)


def read_named_state_dict(
    path: str | Path, what: str = "params file", *, max_bytes: int = DEFAULT_MAX_BYTES
) -> dict[str, np.ndarray]:
    """Every tensor of a saved state_dict as float64 NumPy, keyed as saved (a layered
    network's parameters and buffers), sized before it is loaded."""
    path = check_file(path, what)
    check_budget(f"{what} {path}", "the file is", path.stat().st_size, max_bytes)
    import torch

    scan = scan_file(path, what, max_bytes)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # any failure to read a user's file is bad input, not a bug
        raise InputError(_torch_load_message(path, what, exc, scan)) from None
    if not isinstance(state, dict):
        raise InputError(
            f"{what} {path}: holds a {type(state).__name__}, expected a state_dict "
            "(save model.state_dict())"
        )
    arrays = {}
    for key, value in state.items():
        if not isinstance(value, torch.Tensor):
            raise InputError(
                f"{what} {path}: {key} is a {type(value).__name__}, expected a tensor "
                "(a training checkpoint? save model.state_dict() alone)"
            )
        arrays[str(key)] = _tensor_to_numpy(value, str(key), path, what)
    return arrays


def _layers(
    state: Any, path: Path, what: str, max_bytes: int
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    import torch

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
    # The scan's figures are the file's word; these are the tensors themselves.
    tensors = [_Tensor(int(v.numel()), tuple(v.shape)) for m in layers.values() for v in m.values()]
    _check_tensors(tensors, path, what, max_bytes)
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


def _torch_load_message(path: Path, what: str, exc: Exception, scan: Scan) -> str:
    """One line for a torch.load failure: a refused object named, or corruption."""
    text = str(exc)
    refused = re.search(r"(?:Unsupported global: GLOBAL|unsupported GLOBAL) ([\w.]+)", text)
    foreign = scan.foreign
    name = refused[1] if refused else (foreign[0] if foreign else None)
    if name is not None:
        return (
            f"{what} {path}: refused by torch.load(weights_only=True): it holds a pickled "
            f"Python object ({name}), not only tensors, and gradcheck never runs code from a "
            "data file; save model.state_dict() instead"
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
    if tensor.is_meta:
        raise InputError(f"{what} {path}: {name} is a meta tensor, which holds no values")
    if tensor.is_quantized:
        raise InputError(
            f"{what} {path}: {name} is quantized ({tensor.dtype}); save it dequantized "
            "(.dequantize())"
        )
    if tensor.layout != torch.strided:
        raise InputError(
            f"{what} {path}: {name} is a {tensor.layout} tensor; save it dense (.to_dense())"
        )
    try:
        converted = tensor.detach().to(device="cpu", dtype=torch.float64)
        array: np.ndarray = converted.numpy().copy()
    except (RuntimeError, TypeError, NotImplementedError) as exc:  # kinds torch cannot convert
        raise InputError(
            f"{what} {path}: {name} ({tensor.dtype}) is not a plain tensor of numbers "
            f"({one_line(exc)})"
        ) from None
    return array
