"""The params form of a user's function, f(X, T, params) -> dict: its argument and result.

`params` maps every parameter's name to a fresh copy of its array in the problem's dtype
(state_dict names and torch layouts for a layered problem; W0.., B0.. for an MLP); the
function returns the gradients keyed the same way, or (loss, that dict). Names and shapes
are checked with every other backend's (verdict.judge.validate_gradients).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..errors import BackendError
from ..problem import AnyProblem

RETURNS = "a dict of gradients keyed by parameter name, or (loss, dict)"


def params_argument(problem: AnyProblem) -> dict[str, np.ndarray]:
    """Fresh copies of every parameter in the problem's dtype, keyed by name."""
    dtype = np.dtype(problem.dtype)
    return {n: p.astype(dtype) for n, p in zip(problem.parameter_names, problem.parameters)}


def _array(value: Any, name: str) -> np.ndarray:
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # a torch tensor: take its values
        value = value.detach().cpu().numpy()
    try:
        array = np.asarray(value)
    except Exception:  # e.g. a ragged nested list
        raise BackendError(f"the gradient of {name} is not an array of numbers") from None
    if array.dtype.kind not in "biuf":
        raise BackendError(f"the gradient of {name} is not numeric (dtype {array.dtype})")
    return array


def split_named(result: Any) -> tuple[Any, dict[str, np.ndarray]]:
    """(loss or None, gradients by name) from what a params-form function returned."""
    loss = None
    if isinstance(result, (tuple, list)):
        if len(result) != 2 or not isinstance(result[1], Mapping):
            raise BackendError(f"returned a {type(result).__name__}; expected {RETURNS}")
        loss, result = result
    if not isinstance(result, Mapping):
        raise BackendError(f"returned a {type(result).__name__}; expected {RETURNS}")
    return loss, {str(k): _array(v, str(k)) for k, v in result.items()}
