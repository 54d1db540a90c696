"""Files -> Problem. All input validation lives here; every failure is one InputError line."""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .. import nn
from ..errors import InputError
from ..nn import ACTIVATIONS, DEFAULT_NEGATIVE_SLOPE, LOSSES
from ..problem import BUNDLED_SOURCE, DTYPES, AnyProblem, Problem
from ..safety.budget import DEFAULT_MAX_INPUT_MB, budget_bytes
from ..safety.process import DEFAULT_TIMEOUT
from .arrays import (
    as_float64,
    bundled_problem_path,
    check_choice,
    check_forward_memory,
    check_targets,
    is_csv,
    numeric,
    read_data,
)
from .layered import load_layered_problem
from .readers import (
    TORCH_SUFFIXES,
    read_npz,
    read_utils,
)
from .torch_files import read_state_dict

BUNDLED_NAME = BUNDLED_SOURCE
_PARAM_KEY = re.compile(r"^([WB])(0|[1-9]\d*)$")  # no leading zeros: W01 would shadow W1


class InputWarning(UserWarning):
    """Something odd but usable in the input (e.g. extra keys in an npz)."""


def split_parameters(
    arrays: dict[str, np.ndarray], path: str | Path
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Pull W0..Wk and B0..Bk out of `arrays`, checking that none is missing."""
    found: dict[str, dict[int, np.ndarray]] = {"W": {}, "B": {}}
    for key, value in arrays.items():
        match = _PARAM_KEY.match(key)
        if match:
            found[match.group(1)][int(match.group(2))] = value
    if not found["W"]:
        raise InputError(f"{path}: no weights found (expected keys W0, W1, ... and B0, B1, ...)")
    # The highest index of either letter sets the depth, so a lost last W reads "W2 missing".
    depth = max(*found["W"], *found["B"]) + 1
    missing = [f"{k}{i}" for k in ("W", "B") for i in range(depth) if i not in found[k]]
    if missing:
        raise InputError(
            f"{path}: {', '.join(missing)} missing "
            f"(expected W0..W{depth - 1} and B0..B{depth - 1}; found {', '.join(_names(found))})"
        )
    return [found["W"][i] for i in range(depth)], [found["B"][i] for i in range(depth)]


def _names(found: dict[str, dict[int, np.ndarray]]) -> list[str]:
    return [f"{k}{i}" for k in ("W", "B") for i in sorted(found[k])]


def make_problem(
    X: object,
    T: object,
    weights: Sequence[object],
    biases: Sequence[object],
    *,
    activation: str = "relu",
    loss: str = "mse",
    dtype: str = "float64",
    negative_slope: float = DEFAULT_NEGATIVE_SLOPE,
    source: str = "arrays",
    max_input_mb: float = DEFAULT_MAX_INPUT_MB,
) -> Problem:
    """Validate arrays and options and build a Problem (values kept exactly, as float64); its
    forward pass may hold at most `max_input_mb` MB of values."""
    check_choice("activation", activation, ACTIVATIONS)
    check_choice("loss", loss, LOSSES)
    check_choice("dtype", dtype, DTYPES)
    if not np.isfinite(negative_slope):
        raise InputError(
            f"negative_slope must be a finite number, got {negative_slope}",
            arguments=("negative_slope",),
        )
    if len(weights) != len(biases):
        raise InputError(f"{source}: {len(weights)} weight arrays but {len(biases)} bias arrays")
    if not weights:
        raise InputError(f"{source}: the network has no layers")
    Xa = as_float64("X", X, source)
    if Xa.ndim != 2:
        raise InputError(f"{source}: X has shape {Xa.shape}; expected 2-D (samples, features)")
    Ws = [as_float64(f"W{i}", w, source) for i, w in enumerate(weights)]
    Bs = [as_float64(f"B{i}", b, source) for i, b in enumerate(biases)]
    features = Xa.shape[1]
    for i, (w, b) in enumerate(zip(Ws, Bs)):
        feeds = "X has" if i == 0 else f"W{i - 1} outputs"
        if w.ndim != 2:
            raise InputError(f"{source}: W{i} has shape {w.shape}; expected 2-D (in, out)")
        if w.shape[0] != features:
            # The usual cause: a PyTorch Linear.weight, which is (out, in), saved as is.
            transposed = (
                f" (W{i} looks transposed: nn.Linear.weight is (out, in); save its .T)"
                if w.shape[1] == features
                else ""
            )
            raise InputError(
                f"{source}: W{i} is {w.shape} but {feeds} {features} features; "
                f"expected ({features}, ...){transposed}"
            )
        if b.ndim != 1 or b.shape[0] != w.shape[1]:
            raise InputError(
                f"{source}: B{i} has shape {b.shape}; expected ({w.shape[1]},) to match W{i}"
            )
        features = w.shape[1]
    # Z and A of every layer (the last one's A is its Z).
    outputs = [(f"W{i}'s Z and A", 2 * w.shape[1]) for i, w in enumerate(Ws)]
    check_forward_memory(source, Xa.shape[0], outputs, budget_bytes(max_input_mb))
    Ta = check_targets(numeric("T", T, source), Xa.shape[0], features, loss, source)
    problem = Problem(
        X=Xa,
        T=Ta,
        weights=tuple(Ws),
        biases=tuple(Bs),
        activation=activation,
        loss=loss,
        dtype=dtype,
        negative_slope=float(negative_slope),
        source=source,
    )
    _check_computable(problem)
    return problem


def _check_computable(problem: Problem) -> None:
    """The loss and its gradient must be finite in the problem's dtype (and in float64, where
    finite differences run); an overflow is bad input, not a failure of every backend."""
    dtypes = ["float64"] if problem.dtype == "float64" else ["float64", problem.dtype]
    source = problem.source
    for dtype in dtypes:
        kind = np.dtype(dtype)
        largest = float(np.finfo(kind).max)
        for name, array in (("X", problem.X), *zip(problem.parameter_names, problem.parameters)):
            too_big = np.abs(array) > largest
            if too_big.any():
                at = tuple(int(i) for i in np.argwhere(too_big)[0])
                raise InputError(
                    f"{source}: {name}[{', '.join(map(str, at))}] = {array[at]:g} does not fit "
                    f"in {dtype} (largest {largest:.3g}); rescale it or use dtype float64",
                    arguments=("dtype",),
                )
        T = problem.T if problem.T.dtype.kind in "iu" else problem.T.astype(kind)
        with np.errstate(all="ignore"):
            loss, dW, dB = nn.gradients(
                problem.X.astype(kind),
                T,
                [w.astype(kind) for w in problem.weights],
                [b.astype(kind) for b in problem.biases],
                problem.activation,
                problem.loss,
                problem.negative_slope,
            )
        if not np.isfinite(loss):
            what = f"the loss at these parameters is {float(loss)} in {dtype} (the forward pass"
        else:
            named = zip(problem.parameter_names, [*dW, *dB])
            bad = next((n for n, g in named if not np.isfinite(g).all()), None)
            if bad is None:
                continue
            what = f"the gradient of the loss by {bad} is not finite in {dtype} (the backward pass"
        advice = "rescale X or the parameters" + (
            "" if dtype == "float64" else ", or use dtype float64"
        )
        raise InputError(f"{source}: {what} overflows); {advice}", arguments=("dtype",))


def load_problem(
    data: str | Path | None = None,
    params: str | Path | None = None,
    *,
    utils: str | Path | None = None,
    activation: str = "relu",
    loss: str = "mse",
    dtype: str = "float64",
    negative_slope: float = DEFAULT_NEGATIVE_SLOPE,
    layers: Any = None,
    model: Any = None,
    timeout: float = DEFAULT_TIMEOUT,
    max_input_mb: float = DEFAULT_MAX_INPUT_MB,
) -> AnyProblem:
    """Load a Problem from --data / --params files or a --utils file (default: the bundled one).

    --data: .npz with X, T (and maybe W0.., B0..) or .csv with X and T columns;
    --params: .npz with W0.., B0.. or a .pt/.pth state_dict of an nn.Sequential;
    --utils: a Python file with getdata() -> (X, T) and getparams() -> (W, B), run in a child
    process that may take `timeout` seconds. Each file may declare at most `max_input_mb` MB of
    arrays; that is checked before they are read.
    With `layers` (an architecture's text) or `model` (an nn.Sequential, or "FILE:FUNC" that
    returns one: it is executed), a LayeredProblem (see inputs.layered).
    """
    if layers is not None or model is not None:
        if utils is not None:
            raise InputError(
                "give either utils or layers/model, not both", arguments=("utils", "layers")
            )
        return load_layered_problem(
            data,
            params,
            layers=layers,
            model=model,
            loss=loss,
            dtype=dtype,
            timeout=timeout,
            max_input_mb=max_input_mb,
        )
    options: dict[str, Any] = dict(
        activation=activation, loss=loss, dtype=dtype, negative_slope=negative_slope
    )
    budget = budget_bytes(max_input_mb)
    if utils is not None:
        if data is not None or params is not None:
            raise InputError(
                "give either utils or data/params, not both", arguments=("utils", "data", "params")
            )
        arrays, depth = read_utils(utils, timeout=timeout, max_bytes=budget)
        W = [arrays[f"W{i}"] for i in range(depth)]
        B = [arrays[k] for k in sorted(arrays, key=_layer_index) if k.startswith("B")]
        return make_problem(
            arrays["X"], arrays["T"], W, B, source=str(utils), max_input_mb=max_input_mb, **options
        )
    data_path = Path(data) if data is not None else bundled_problem_path()
    arrays = read_data(data_path, budget)
    source = BUNDLED_NAME if data is None else str(data_path)
    if params is not None:
        weights, biases = _read_params(Path(params), budget)
        source = f"{source} + {params}"
    else:
        if not any(_PARAM_KEY.match(k) for k in arrays):
            kind = "a CSV holds only X and T" if is_csv(data_path) else "holds no W0.., B0.."
            raise InputError(
                f"data file {data_path}: {kind}; give the parameters with params",
                arguments=("params",),
            )
        weights, biases = split_parameters(arrays, data_path)
    _warn_extra(arrays, {"X", "T"}, data_path)
    return make_problem(
        arrays["X"],
        arrays["T"],
        weights,
        biases,
        source=source,
        max_input_mb=max_input_mb,
        **options,
    )


def _layer_index(key: str) -> int:
    return int(key[1:]) if key[1:].isdigit() else -1


def _read_params(path: Path, budget: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """W0.., B0.. of a --params file: a torch state_dict (.pt/.pth) or an .npz."""
    if path.suffix.lower() in TORCH_SUFFIXES:
        try:
            return read_state_dict(path, max_bytes=budget)
        except InputError as exc:
            if "Linear" not in str(exc):
                raise
            # A state_dict does not record its layers: the MLP reading is only a guess.
            raise InputError(
                f"{exc} (layers gives the architecture of a network of other kinds of layer)",
                arguments=("layers",),
            ) from None
    if is_csv(path):
        raise InputError(f"params file {path}: a CSV cannot hold parameters; use .npz or .pt")
    arrays = read_npz(path, "params file", max_bytes=budget)
    weights, biases = split_parameters(arrays, path)
    _warn_extra(arrays, set(), path)
    return weights, biases


def _warn_extra(arrays: dict[str, np.ndarray], allowed: set[str], path: str | Path) -> None:
    extra = sorted(k for k in arrays if k not in allowed and not _PARAM_KEY.match(k))
    if extra:
        warnings.warn(f"{path}: ignoring extra keys {', '.join(extra)}", InputWarning, stacklevel=3)
