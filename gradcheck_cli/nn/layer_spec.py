"""What a layer kind is made of: `Layer` (one layer of an architecture), `Arg` (one of its
options, as torch names it), `LayerKind` (a table entry: options, shapes, the NumPy forward
and backward side by side, and what finite differences need), and the option converters.

Arrays have the batch first. A forward takes `batch`, the number of rows that form one
batch: finite differences stack many perturbed copies of the batch, and batch norm takes
its statistics per copy.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import InputError

Params = Mapping[str, np.ndarray]
Cache = dict[str, Any]
Forward = Callable[
    ["Layer", Params, np.ndarray, int, "np.ndarray | None"], tuple[np.ndarray, Cache]
]
Backward = Callable[["Layer", Params, Cache, np.ndarray], tuple[np.ndarray, dict[str, np.ndarray]]]
# perturb(layer, params, cache, parameter, flat indices, deltas, y): add to y (copies, batch,
# ...) the output change of moving each copy's entry by its delta. Every layer with
# parameters is affine in each single parameter entry, so this is exact.
Perturb = Callable[["Layer", Params, Cache, str, np.ndarray, np.ndarray, np.ndarray], None]
# magnitude(layer, params, cache, m): the size of the terms summed into each output, given
# that of the input's terms (eps x it bounds the rounding carried so far, to first order).
# For the backward pass the same kind of function maps |dLoss/dy| to |dLoss/dx| and the
# sizes of the parameter gradients' terms.
Magnitude = Callable[["Layer", Params, Cache, np.ndarray], np.ndarray]
REQUIRED: Any = object()
# Whole-number options (sizes, strides, dimensions) must be below this: beyond it a number is
# no size at all, and one of thousands of digits could not even be written in a message.
MAX_WHOLE = 2**63
_SHOWN = 80  # characters of a value quoted in a message


@dataclass(frozen=True)
class Layer:
    """One layer: its kind, its options (normalised, e.g. pairs for 2-D sizes), its name
    (the module's name in its nn.Sequential: parameters are `<name>.weight`, `<name>.bias`)."""

    kind: str
    options: tuple[tuple[str, Any], ...] = ()
    name: str = ""
    # As one writes it: required options positional, others only where not default.
    written: str = field(default="", compare=False)

    @property
    def opts(self) -> dict[str, Any]:
        """The options as a dict."""
        return dict(self.options)

    def text(self) -> str:
        """As one writes it (make_layer wrote it: only the table knows which options are
        required and which are defaults)."""
        return self.written or f"{self.kind}()"


@dataclass(frozen=True)
class Arg:
    """One option of a layer kind, as torch names it. `only_default`: options torch prints
    that gradcheck supports only at their default (dilation=1); `ignored`: options that do
    not change the gradient (inplace, momentum)."""

    name: str
    default: Any = REQUIRED
    convert: Callable[[Any, str], Any] = lambda value, name: value
    only_default: bool = False
    ignored: bool = False


def _no_work(opts: dict[str, Any], shape: tuple[int, ...]) -> int:
    return 0


@dataclass(frozen=True)
class LayerKind:
    """One layer kind: options, shapes, NumPy forward and backward, and what FD needs."""

    name: str
    arguments: tuple[Arg, ...]
    forward: Forward
    backward: Backward
    # {"weight": shape, "bias": shape} from the options (empty: no parameters).
    parameters: Callable[[dict[str, Any]], dict[str, tuple[int, ...]]]
    # The per-sample output shape from the per-sample input shape; InputError if it cannot.
    output_shape: Callable[[dict[str, Any], tuple[int, ...]], tuple[int, ...]]
    magnitude: Magnitude
    # |dLoss/dy| -> (|dLoss/dx|, sizes of the parameter gradients' terms).
    magnitude_backward: Backward
    perturb: Perturb | None = None
    # Piecewise: the forward's cache holds a "pattern" (ReLU sides, max-pool argmaxes) whose
    # change under a perturbation means a kink was crossed; forward(..., pattern) imposes one.
    kinked: bool = False
    # Extra work space per sample of a forward beyond its input and output (im2col columns).
    work: Callable[[dict[str, Any], tuple[int, ...]], int] = _no_work


# --------------------------------------------------------------------------------------------
# Option converters: each takes the value and the option's name (for the message).


def shown(value: Any) -> str:
    """`value` as Python writes it, clipped for a message (a value may be huge: a tuple of a
    million entries, an int of more digits than Python will write)."""
    try:
        text = repr(value)
    except (ValueError, RecursionError):
        return "a value too large to write"
    return text if len(text) <= _SHOWN else text[: _SHOWN - 3] + "..."


def as_int(value: Any, name: str) -> int:
    """A whole number >= 0 (below MAX_WHOLE)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise InputError(f"{name} must be a whole number >= 0, got {shown(value)}")
    if value >= MAX_WHOLE:
        raise InputError(f"{name} must be below 2**63, got {shown(value)}")
    return int(value)


def as_positive(value: Any, name: str) -> int:
    """A whole number >= 1."""
    number = as_int(value, name)
    if number < 1:
        raise InputError(f"{name} must be at least 1, got {shown(value)}")
    return number


def as_index(value: Any, name: str) -> int:
    """A whole number, maybe negative (a dimension counted from the end)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise InputError(f"{name} must be a whole number, got {shown(value)}")
    if not -MAX_WHOLE < int(value) < MAX_WHOLE:
        raise InputError(f"{name} must be between -2**63 and 2**63, got {shown(value)}")
    return int(value)


def pair(value: Any, name: str) -> tuple[int, int]:
    """An int or a pair of ints, as torch's 2-D sizes."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise InputError(f"{name} must be a number or a pair, got {shown(value)}")
        return as_int(value[0], name), as_int(value[1], name)
    number = as_int(value, name)
    return number, number


def positive_pair(value: Any, name: str) -> tuple[int, int]:
    """A pair of whole numbers >= 1."""
    a, b = pair(value, name)
    if min(a, b) < 1:
        raise InputError(f"{name} must be at least 1, got {shown(value)}")
    return a, b


def optional_pair(value: Any, name: str) -> tuple[int, int] | None:
    """None (e.g. a pooling stride that defaults to the kernel size), or a positive pair."""
    return None if value is None else positive_pair(value, name)


def as_float(value: Any, name: str) -> float:
    """A finite number."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise InputError(f"{name} must be a number, got {shown(value)}")
    try:
        number = float(value)
    except OverflowError:  # an int beyond the largest float
        number = math.inf
    if not math.isfinite(number):
        raise InputError(f"{name} must be finite, got {shown(value)}")
    return number


def as_positive_float(value: Any, name: str) -> float:
    """A finite number > 0."""
    number = as_float(value, name)
    if number <= 0:
        raise InputError(f"{name} must be > 0, got {shown(value)}")
    return number


def as_bool(value: Any, name: str) -> bool:
    """True or False."""
    if not isinstance(value, (bool, np.bool_)):
        raise InputError(f"{name} must be True or False, got {shown(value)}")
    return bool(value)


def as_shape(value: Any, name: str) -> tuple[int, ...]:
    """A shape: one int or a tuple of ints >= 1."""
    values = value if isinstance(value, (tuple, list)) else (value,)
    if not values:
        raise InputError(f"{name} must not be empty")
    return tuple(as_positive(v, name) for v in values)


def choice(*choices: str) -> Callable[[Any, str], str]:
    """One of the given strings."""

    def convert(value: Any, name: str) -> str:
        if value not in choices:
            allowed = ", ".join(map(repr, choices))
            raise InputError(f"{name} must be one of {allowed}, got {shown(value)}")
        return str(value)

    return convert


def broadcast_channels(vector: np.ndarray, ndim: int) -> np.ndarray:
    """A per-channel vector shaped to broadcast along axis 1 of an `ndim`-D batch."""
    return vector.reshape(-1, *([1] * (ndim - 2)))


def copy_index(count: int) -> np.ndarray:
    """0..count-1: the copy axis of a perturbed batch, for advanced indexing."""
    return np.arange(count)
