"""Checks every kind of problem shares: arrays numeric, finite and rectangular, choices among
known names, targets in the shape and type the loss needs, and the --data file read."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..safety.budget import check_budget
from .readers import CSV_SUFFIXES, one_line, read_csv, read_npz


def bundled_problem_path() -> Path:
    """Path of the bundled 4-6-6-6-1 exercise problem."""
    return Path(str(resources.files("gradcheck_cli") / "data" / "exercise.npz"))


def _to_array(name: str, value: object, where: str) -> np.ndarray:
    """`value` as an ndarray; torch tensors (even with requires_grad) widen exactly to float64."""
    if hasattr(value, "detach") and hasattr(value, "is_floating_point"):  # a torch.Tensor
        tensor: Any = value.detach().cpu()
        value = (tensor.double() if tensor.is_floating_point() else tensor).numpy()
    try:
        return np.asarray(value)
    except (ValueError, TypeError, RuntimeError) as exc:  # ragged nested lists and the like
        detail = "its rows have different lengths" if "inhomogeneous" in str(exc) else exc
        raise InputError(
            f"{where}: {name} is not a rectangular numeric array ({one_line(detail)})"
        ) from None


def numeric(name: str, value: object, where: str) -> np.ndarray:
    array = _to_array(name, value, where)
    if array.dtype.kind not in "biuf":
        raise InputError(f"{where}: {name} has dtype {array.dtype}; expected a numeric array")
    if array.size == 0:
        raise InputError(f"{where}: {name} is empty (shape {array.shape})")
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        index = tuple(int(i) for i in np.argwhere(~np.isfinite(array))[0])
        bad = array[index]
        at = f"{name}[{', '.join(map(str, index))}]" if index else name
        raise InputError(f"{where}: {at} is {bad}; all values must be finite")
    return array


def as_float64(name: str, value: object, where: str) -> np.ndarray:
    return numeric(name, value, where).astype(np.float64)


def check_choice(kind: str, value: str, choices: Iterable[str]) -> None:
    if value not in choices:
        raise InputError(f"unknown {kind} {value!r}; choose from: {', '.join(choices)}")


def check_targets(T: np.ndarray, samples: int, outputs: int, loss: str, source: str) -> np.ndarray:
    """T in the shape and type the loss needs."""
    if T.ndim == 0 or T.ndim > 2:
        raise InputError(
            f"{source}: T has shape {T.shape}; expected ({samples}, {outputs}) or ({samples},)"
        )
    if T.shape[0] != samples:
        raise InputError(f"{source}: X has {samples} rows but T has {T.shape[0]}")
    if loss == "cross-entropy":
        if T.ndim == 1:
            if T.dtype.kind == "f" and not np.all(np.round(T) == T):
                i = int(np.flatnonzero(np.round(T) != T)[0])
                raise InputError(
                    f"{source}: T[{i}] = {T[i]:g}; cross-entropy labels T must be whole numbers"
                )
            # Checked before the cast: 1e20 as int64 would read -9223372036854775808.
            bad = np.flatnonzero((T < 0) | (outputs <= T))
            if bad.size:
                shown = T[bad[0]].item()
                raise InputError(
                    f"{source}: T[{bad[0]}] = {shown:g} is not a class label in "
                    f"0..{outputs - 1} (the network has {outputs} outputs)"
                )
            return T.astype(np.int64)
        if T.shape != (samples, outputs):
            raise InputError(
                f"{source}: T has shape {T.shape}; cross-entropy expects labels ({samples},) "
                f"or class probabilities ({samples}, {outputs})"
            )
        Tf = T.astype(np.float64)
        negative = np.asarray((Tf < 0).any(axis=1))
        rows = np.flatnonzero(negative | ~np.isclose(Tf.sum(axis=1), 1.0, atol=1e-6))
        if rows.size:
            r = int(rows[0])
            what = "has a negative entry" if negative[r] else f"sums to {Tf[r].sum():g}"
            raise InputError(
                f"{source}: row T[{r}] {what}; "
                "class probabilities T must be >= 0 with rows summing to 1"
            )
        return Tf
    Tf = T.astype(np.float64)
    if Tf.ndim == 1 and outputs == 1:
        Tf = Tf.reshape(-1, 1)  # (N,) against (N, 1) would broadcast to (N, N): reshape instead
    if Tf.shape != (samples, outputs):
        raise InputError(
            f"{source}: T has shape {T.shape} but the network outputs ({samples}, {outputs})"
        )
    outside = np.argwhere((Tf < 0) | (Tf > 1))
    if loss == "bce" and outside.size:
        i, j = outside[0]
        raise InputError(f"{source}: T[{i}, {j}] = {Tf[i, j]:g}; bce targets T must lie in [0, 1]")
    return Tf


def is_csv(path: Path) -> bool:
    return path.suffix.lower() in CSV_SUFFIXES


def read_data(path: Path, budget: int) -> dict[str, np.ndarray]:
    """The arrays of a --data file (.csv or .npz), checked to hold X and T."""
    if is_csv(path):
        arrays = read_csv(path, max_bytes=budget)
    else:
        arrays = read_npz(path, "data file", max_bytes=budget)
    for key in ("X", "T"):
        if key not in arrays:
            raise InputError(f"data file {path}: key {key} missing (keys: {sorted(arrays)})")
    return arrays


def check_forward_memory(
    source: str, samples: int, outputs: Sequence[tuple[str, int]], max_bytes: int
) -> None:
    """A forward pass keeps every layer's output (`outputs`: what each is, and how many values
    it and its work space hold per sample) for all samples as float64; more than the input
    budget is bad input before anything is computed. Small files can describe huge
    activations (a wide hidden layer over many samples, a convolution's padding), and every
    backend and finite differences hold a few such passes."""
    nbytes = 8 * samples * sum(values for _, values in outputs)
    if nbytes > max_bytes:
        what, values = max(outputs, key=lambda item: item[1])
        check_budget(
            source,
            f"a forward pass over its {samples:,} samples (the largest output: {what}, "
            f"{values:,} values per sample) holds",
            nbytes,
            max_bytes,
        )
