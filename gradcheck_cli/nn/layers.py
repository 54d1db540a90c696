"""The layer table: every supported layer kind, its NumPy forward and backward side by side.

Linear, Flatten and the activations are here; Conv2d and the pools in convolution.py, the
normalisations in normalization.py. Adding a layer kind is one entry in this table (or in
one of those modules' KINDS) plus one entry in each torch backend's table; an unknown kind
is an error listing the supported ones, never a fallback.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from ..errors import InputError
from . import convolution, normalization
from .activations import sigmoid
from .layer_spec import (
    REQUIRED,
    Arg,
    Cache,
    Layer,
    LayerKind,
    Params,
    as_bool,
    as_float,
    as_index,
    as_positive,
    choice,
    copy_index,
    pair,
    positive_pair,
    shown,
)

# --------------------------------------------------------------------------------------------
# Activations: elementwise, each one's value and derivative side by side


def _erf(x: np.ndarray) -> np.ndarray:
    # NumPy has no erf; the C library's (math.erf) is accurate to an ulp or so.
    return np.asarray(np.vectorize(math.erf, otypes=[np.float64])(x), dtype=x.dtype)


_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)


def _gelu(x: np.ndarray, approximate: str) -> tuple[np.ndarray, np.ndarray]:
    """GELU and its derivative: x Phi(x) (exact, with erf) or the tanh approximation."""
    if approximate == "tanh":
        t = np.tanh(_SQRT_2_OVER_PI * (x + 0.044715 * x**3))
        slope = 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * _SQRT_2_OVER_PI * (
            1.0 + 3 * 0.044715 * x * x
        )
        return 0.5 * x * (1.0 + t), slope
    cdf = 0.5 * (1.0 + _erf(x / math.sqrt(2.0)))
    pdf = np.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)
    return x * cdf, cdf + x * pdf


def _elu(x: np.ndarray, alpha: float, side: np.ndarray) -> np.ndarray:
    # expm1 only where it is used: no overflow warnings from large positive inputs.
    return np.where(side, x, alpha * np.expm1(np.where(side, 0.0, x)))


# kind -> (f(x, options, side), f'(x, f(x), options, side)). `side` is the kink pattern
# (x > 0) of the piecewise ones (None for the smooth ones); finite differences impose it.
Elementwise = tuple[
    Callable[[np.ndarray, dict[str, Any], Any], np.ndarray],
    Callable[[np.ndarray, np.ndarray, dict[str, Any], Any], np.ndarray],
]
ELEMENTWISE: dict[str, Elementwise] = {
    "ReLU": (lambda x, o, side: np.where(side, x, 0.0), lambda x, y, o, side: side),
    "LeakyReLU": (
        lambda x, o, side: np.where(side, x, o["negative_slope"] * x),
        lambda x, y, o, side: np.where(side, 1.0, o["negative_slope"]),
    ),
    "ELU": (
        lambda x, o, side: _elu(x, o["alpha"], side),
        lambda x, y, o, side: np.where(side, 1.0, o["alpha"] * np.exp(np.where(side, 0.0, x))),
    ),
    "Tanh": (lambda x, o, side: np.tanh(x), lambda x, y, o, side: 1.0 - y * y),
    "Sigmoid": (lambda x, o, side: sigmoid(x), lambda x, y, o, side: y * (1.0 - y)),
    "Identity": (lambda x, o, side: x, lambda x, y, o, side: np.ones_like(x)),
    "GELU": (
        lambda x, o, side: _gelu(x, o["approximate"])[0],
        lambda x, y, o, side: _gelu(x, o["approximate"])[1],
    ),
}
# Piecewise activations: a kink at 0, where finite differences must not straddle.
PIECEWISE = ("ReLU", "LeakyReLU", "ELU")


def _act_forward(
    layer: Layer, p: Params, x: np.ndarray, batch: int, pattern: np.ndarray | None
) -> tuple[np.ndarray, Cache]:
    f, _ = ELEMENTWISE[layer.kind]
    side = None
    if layer.kind in PIECEWISE:
        side = (x > 0) if pattern is None else pattern
    y = np.asarray(f(x, layer.opts, side), dtype=x.dtype)
    return y, {"x": x, "y": y, "pattern": side}


def activation_derivative(layer: Layer, cache: Cache) -> np.ndarray:
    """f'(x) of an activation layer at its cached input, on the cached side of its kink."""
    _, derivative = ELEMENTWISE[layer.kind]
    x = cache["x"]
    return np.asarray(derivative(x, cache["y"], layer.opts, cache["pattern"]), dtype=x.dtype)


def _act_backward(
    layer: Layer, p: Params, cache: Cache, dy: np.ndarray
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    return dy * activation_derivative(layer, cache), {}


def _act_magnitude(layer: Layer, p: Params, cache: Cache, m: np.ndarray) -> np.ndarray:
    return np.abs(activation_derivative(layer, cache)) * m


def _act_magnitude_backward(
    layer: Layer, p: Params, cache: Cache, dy: np.ndarray
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    return _act_magnitude(layer, p, cache, dy), {}


def _no_parameters(o: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    return {}


def _activation(name: str, *arguments: Arg) -> LayerKind:
    if name in PIECEWISE:
        arguments = (*arguments, Arg("inplace", False, ignored=True))
    return LayerKind(
        name,
        arguments,
        _act_forward,
        _act_backward,
        parameters=_no_parameters,
        output_shape=lambda o, s: s,
        magnitude=_act_magnitude,
        magnitude_backward=_act_magnitude_backward,
        kinked=name in PIECEWISE,
    )


# --------------------------------------------------------------------------------------------
# Linear (on the last axis, as torch's) and Flatten


def _linear_parameters(o: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    shapes: dict[str, tuple[int, ...]] = {"weight": (o["out_features"], o["in_features"])}
    if o["bias"]:
        shapes["bias"] = (o["out_features"],)
    return shapes


def _linear_shape(o: dict[str, Any], s: tuple[int, ...]) -> tuple[int, ...]:
    if not s or s[-1] != o["in_features"]:
        raise InputError(f"takes {o['in_features']} input features but gets shape {s}")
    return (*s[:-1], o["out_features"])


def _linear_forward(
    layer: Layer, p: Params, x: np.ndarray, batch: int, pattern: np.ndarray | None
) -> tuple[np.ndarray, Cache]:
    y = x @ p["weight"].T
    if "bias" in p:
        y += p["bias"]
    return y, {"x": x}


def _linear_backward(
    layer: Layer, p: Params, cache: Cache, dy: np.ndarray
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    x = cache["x"]
    dy2 = dy.reshape(-1, dy.shape[-1])
    grads = {"weight": dy2.T @ x.reshape(-1, x.shape[-1])}
    if "bias" in p:
        grads["bias"] = dy2.sum(axis=0)
    return dy @ p["weight"], grads


def _linear_perturb(
    layer: Layer,
    p: Params,
    cache: Cache,
    name: str,
    flat: np.ndarray,
    deltas: np.ndarray,
    y: np.ndarray,
) -> None:
    copies = copy_index(flat.size)
    if name == "bias":
        y[copies, ..., flat] += deltas.reshape(-1, *([1] * (y.ndim - 2)))
        return
    # Moving weight[o, i] moves output feature o by delta x input feature i.
    o, i = np.unravel_index(flat, p["weight"].shape)
    x = cache["x"]
    y[copies, ..., o] += deltas.reshape(-1, *([1] * (x.ndim - 1))) * np.moveaxis(x[..., i], -1, 0)


def _linear_magnitude(layer: Layer, p: Params, cache: Cache, m: np.ndarray) -> np.ndarray:
    out = m @ np.abs(p["weight"]).T
    return out + np.abs(p["bias"]) if "bias" in p else out


def _linear_magnitude_backward(
    layer: Layer, p: Params, cache: Cache, dy: np.ndarray
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    absolute = {k: np.abs(v) for k, v in p.items()}
    return _linear_backward(layer, absolute, {"x": np.abs(cache["x"])}, dy)


def _flatten_dims(o: dict[str, Any], ndim: int) -> tuple[int, int]:
    """Flatten's start and end as axes of a batch-first array of `ndim` dimensions."""
    start, end = o["start_dim"], o["end_dim"]
    start = start if start >= 0 else start + ndim
    end = end if end >= 0 else end + ndim
    if not 1 <= start <= end < ndim:
        raise InputError(
            f"start_dim={o['start_dim']}, end_dim={o['end_dim']} do not select dimensions "
            f"after the batch of a {ndim}-D input (the batch cannot be flattened)"
        )
    return start, end


def _flatten_shape(o: dict[str, Any], s: tuple[int, ...]) -> tuple[int, ...]:
    start, end = _flatten_dims(o, len(s) + 1)
    full = (1, *s)
    return (*full[1:start], int(np.prod(full[start : end + 1])), *full[end + 1 :])


def _flatten_forward(
    layer: Layer, p: Params, x: np.ndarray, batch: int, pattern: np.ndarray | None
) -> tuple[np.ndarray, Cache]:
    return x.reshape(x.shape[0], *_flatten_shape(layer.opts, x.shape[1:])), {"shape": x.shape}


def _flatten_backward(
    layer: Layer, p: Params, cache: Cache, dy: np.ndarray
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    return dy.reshape(cache["shape"]), {}


def _flatten_magnitude(layer: Layer, p: Params, cache: Cache, m: np.ndarray) -> np.ndarray:
    return m.reshape(m.shape[0], *_flatten_shape(layer.opts, m.shape[1:]))


_TABLE: tuple[LayerKind, ...] = (
    LayerKind(
        "Linear",
        (
            Arg("in_features", convert=as_positive),
            Arg("out_features", convert=as_positive),
            Arg("bias", True, as_bool),
        ),
        _linear_forward,
        _linear_backward,
        parameters=_linear_parameters,
        output_shape=_linear_shape,
        magnitude=_linear_magnitude,
        magnitude_backward=_linear_magnitude_backward,
        perturb=_linear_perturb,
    ),
    *convolution.KINDS,
    LayerKind(
        "Flatten",
        (Arg("start_dim", 1, as_index), Arg("end_dim", -1, as_index)),
        _flatten_forward,
        _flatten_backward,
        parameters=_no_parameters,
        output_shape=_flatten_shape,
        magnitude=_flatten_magnitude,
        magnitude_backward=_flatten_backward,
    ),
    *normalization.KINDS,
    _activation("ReLU"),
    _activation("LeakyReLU", Arg("negative_slope", 0.01, as_float)),
    _activation("Tanh"),
    _activation("Sigmoid"),
    _activation("Identity"),
    _activation("GELU", Arg("approximate", "none", choice("none", "tanh"))),
    _activation("ELU", Arg("alpha", 1.0, as_float)),
)
LAYER_KINDS: dict[str, LayerKind] = {kind.name: kind for kind in _TABLE}


def layer_kind(name: str) -> LayerKind:
    """The table entry of layer kind `name`; an unknown kind is an InputError listing the
    supported ones, never a fallback."""
    try:
        return LAYER_KINDS[name]
    except KeyError:
        raise InputError(
            f"unsupported layer {name!r}; supported: {', '.join(LAYER_KINDS)}"
        ) from None


def make_layer(kind: str, *args: Any, name: str = "", **kwargs: Any) -> Layer:
    """A Layer from torch-style arguments (`make_layer("Conv2d", 1, 4, 3, padding=1)`),
    validated against the table: unknown options, unsupported values and missing ones are
    InputErrors naming the layer."""
    spec = layer_kind(kind)
    label = kind
    if len(args) > len(spec.arguments):
        raise InputError(
            f"{label}: takes at most {len(spec.arguments)} arguments "
            f"({', '.join(a.name for a in spec.arguments)}), got {len(args)}"
        )
    given = {arg.name: value for arg, value in zip(spec.arguments, args)}
    known = {arg.name for arg in spec.arguments}
    for key, value in kwargs.items():
        if key not in known:
            choices = ", ".join(sorted(known)) or "none"
            raise InputError(f"{label}: unknown option {key!r} (options: {choices})")
        if key in given:
            raise InputError(f"{label}: {key} given twice")
        given[key] = value
    options = []
    for arg in spec.arguments:
        if arg.name not in given:
            if arg.default is REQUIRED:
                raise InputError(f"{label}: {arg.name} missing")
            value = arg.default
        else:
            value = given[arg.name]
        if arg.ignored:
            continue
        try:
            converted = arg.convert(value, arg.name)
        except InputError as exc:
            raise InputError(f"{label}: {exc}") from None
        if arg.only_default:
            if converted != arg.convert(arg.default, arg.name):
                raise InputError(
                    f"{label}: {arg.name}={shown(value)} is not supported (only {arg.default!r})"
                )
            continue
        options.append((arg.name, converted))
    found = dict(options)
    if (
        "stride" in found
        and found["stride"] == found.get("kernel_size")
        and spec.name.endswith("Pool2d")
    ):
        # A pool's stride defaults to its kernel size: one layer, one spelling.
        options = [(k, None if k == "stride" else v) for k, v in options]
    return Layer(kind, tuple(options), name, written=_written(spec, dict(options)))


def _written(spec: LayerKind, opts: dict[str, Any]) -> str:
    """As one writes it: required options positional, others only where not default."""
    shown = []
    for arg in spec.arguments:
        if arg.name not in opts or arg.ignored:
            continue
        value = opts[arg.name]
        default = arg.default
        if arg.convert in (pair, positive_pair) and default not in (REQUIRED, None):
            default = pair(default, arg.name)
        if arg.default is REQUIRED:
            shown.append(_short(value))
        elif value != default:
            shown.append(f"{arg.name}={_short(value)}")
    return f"{spec.name}({', '.join(shown)})"


def _short(value: Any) -> str:
    """(3, 3) as 3; everything else as Python writes it."""
    if isinstance(value, tuple) and len(value) == 2 and value[0] == value[1]:
        return repr(value[0])
    return repr(value)


def parameter_shapes(layer: Layer) -> dict[str, tuple[int, ...]]:
    """The layer's parameters by their local names (weight, bias) and shapes."""
    return layer_kind(layer.kind).parameters(layer.opts)
