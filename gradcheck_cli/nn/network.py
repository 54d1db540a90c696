"""A layered network in NumPy: shapes, forward, loss, backprop, kink patterns, rounding bounds.

The network is a sequence of `Layer`s (nn/layers.py); its parameters are a mapping from
state_dict names (`0.weight`, `4.bias`) to arrays in torch's layouts. Arrays keep the
dtype they come in (a float32 backprop stays float32).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np

from ..errors import InputError
from .layer_spec import Backward, Cache, Layer
from .layers import layer_kind, parameter_shapes
from .losses import loss as loss_named

# Rounding of one evaluated loss, in units of eps x the magnitudes involved (as for the MLP).
ROUNDING_ULPS = 4.0
# backward_of(index, layer) -> a replacement backward for that layer, or None (diagnosis).
BackwardOverride = Callable[[int, Layer], Backward | None]


def qualified(layer: Layer, local: str) -> str:
    """A parameter's state_dict name: `0.weight`."""
    return f"{layer.name}.{local}"


def parameter_names(layers: Sequence[Layer]) -> list[str]:
    """Every parameter's state_dict name, in module order (weight before bias)."""
    return [qualified(layer, local) for layer in layers for local in parameter_shapes(layer)]


def layer_params(layer: Layer, params: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The layer's parameters by their local names (weight, bias)."""
    return {local: params[qualified(layer, local)] for local in parameter_shapes(layer)}


def output_shapes(layers: Sequence[Layer], input_shape: tuple[int, ...]) -> list[tuple[int, ...]]:
    """Each layer's per-sample output shape; an InputError names the layer that cannot take
    its input."""
    shapes = []
    shape = tuple(input_shape)
    for layer in layers:
        try:
            shape = tuple(layer_kind(layer.kind).output_shape(layer.opts, shape))
        except InputError as exc:
            raise InputError(f"layer {layer.name} {layer.text()}: {exc}") from None
        shapes.append(shape)
    return shapes


def forward(
    layers: Sequence[Layer],
    params: Mapping[str, np.ndarray],
    X: np.ndarray,
    batch: int | None = None,
    patterns: Sequence[np.ndarray | None] | None = None,
) -> tuple[list[np.ndarray], list[Cache]]:
    """Every layer's output and cache. `batch`: rows per batch (default all of X; finite
    differences stack copies); `patterns`: kink patterns to impose (e.g. the unperturbed
    ReLU sides), None per layer to compute them."""
    rows = batch if batch is not None else X.shape[0]
    outputs, caches = [], []
    x = X
    for i, layer in enumerate(layers):
        pattern = patterns[i] if patterns is not None else None
        x, cache = layer_kind(layer.kind).forward(
            layer, layer_params(layer, params), x, rows, pattern
        )
        outputs.append(x)
        caches.append(cache)
    return outputs, caches


def kink_patterns(caches: Sequence[Cache]) -> list[np.ndarray | None]:
    """Per layer, its kink pattern (ReLU sides, max-pool argmaxes), None where it has none."""
    return [cache.get("pattern") for cache in caches]


def backward(
    layers: Sequence[Layer],
    params: Mapping[str, np.ndarray],
    caches: Sequence[Cache],
    dY: np.ndarray,
    backward_of: BackwardOverride | None = None,
) -> dict[str, np.ndarray]:
    """The chain rule from dLoss/dY back: every parameter's gradient, in module order."""
    found: dict[str, np.ndarray] = {}
    dy = dY
    for i in reversed(range(len(layers))):
        layer = layers[i]
        step = backward_of(i, layer) if backward_of is not None else None
        step = step or layer_kind(layer.kind).backward
        dy, grads = step(layer, layer_params(layer, params), caches[i], dy)
        found.update({qualified(layer, k): g for k, g in grads.items()})
    return {name: found[name] for name in parameter_names(layers)}


def _targets(T: np.ndarray, dtype: np.dtype) -> np.ndarray:
    return T if T.dtype.kind in "iu" else T.astype(dtype, copy=False)


def gradients(
    layers: Sequence[Layer],
    params: Mapping[str, np.ndarray],
    X: np.ndarray,
    T: np.ndarray,
    loss_name: str,
    patterns: Sequence[np.ndarray | None] | None = None,
    backward_of: BackwardOverride | None = None,
) -> tuple[float, dict[str, np.ndarray]]:
    """Loss and exact gradients by backpropagation, in the dtype of the arrays."""
    outputs, caches = forward(layers, params, X, patterns=patterns)
    Y = outputs[-1]
    loss = loss_named(loss_name)
    dY = loss.gradient(Y, _targets(T, Y.dtype)).astype(Y.dtype)
    grads = backward(layers, params, caches, dY, backward_of)
    return loss.value(Y, _targets(T, Y.dtype)), grads


def network_loss(
    layers: Sequence[Layer],
    params: Mapping[str, np.ndarray],
    X: np.ndarray,
    T: np.ndarray,
    loss_name: str,
) -> float:
    """The loss of the whole network at the given parameters."""
    outputs, _ = forward(layers, params, X)
    return loss_named(loss_name).value(outputs[-1], _targets(T, outputs[-1].dtype))


def magnitudes(
    layers: Sequence[Layer],
    params: Mapping[str, np.ndarray],
    X: np.ndarray,
    caches: Sequence[Cache],
) -> list[np.ndarray]:
    """The size of the terms summed into every layer's input (and, last, into the output):
    eps times it bounds, to first order and up to the depth, the rounding carried there."""
    sizes = [np.abs(X)]
    for layer, cache in zip(layers, caches):
        kind = layer_kind(layer.kind)
        sizes.append(kind.magnitude(layer, layer_params(layer, params), cache, sizes[-1]))
    return sizes


def _depth(layers: Sequence[Layer]) -> int:
    return max(1, sum(1 for layer in layers if parameter_shapes(layer)))


def loss_rounding(
    layers: Sequence[Layer],
    params: Mapping[str, np.ndarray],
    X: np.ndarray,
    T: np.ndarray,
    loss_name: str,
    eps: float,
) -> float:
    """A bound on the rounding error of evaluating the loss (or a change of it) with unit
    roundoff eps/2, from the magnitudes summed (see nn.mlp.loss_rounding)."""
    loss = loss_named(loss_name)
    outputs, caches = forward(layers, params, X)
    Y = outputs[-1]
    size = magnitudes(layers, params, X, caches)[-1]
    carried = _depth(layers) * float((np.abs(loss.gradient(Y, T)) * size).sum())
    return ROUNDING_ULPS * eps * (abs(loss.magnitude(Y, T)) + carried)


def gradient_rounding(
    layers: Sequence[Layer],
    params: Mapping[str, np.ndarray],
    X: np.ndarray,
    T: np.ndarray,
    loss_name: str,
    eps: float,
) -> dict[str, float]:
    """Per parameter, a bound on how far rounding dLoss/dY (eps x the size of its terms)
    moves its largest gradient entry: that rounding carried back through the sizes of every
    layer's terms (see nn.mlp.gradient_rounding)."""
    outputs, caches = forward(layers, params, X)
    delta = ROUNDING_ULPS * eps * loss_named(loss_name).gradient_magnitude(outputs[-1], T)
    found: dict[str, float] = {}
    for i in reversed(range(len(layers))):
        layer = layers[i]
        kind = layer_kind(layer.kind)
        delta, grads = kind.magnitude_backward(layer, layer_params(layer, params), caches[i], delta)
        found.update({qualified(layer, k): float(np.max(g)) for k, g in grads.items()})
    return {name: found[name] for name in parameter_names(layers)}
