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
    output_error: np.ndarray | None = None,
) -> dict[str, float]:
    """Per parameter, a bound on how far rounding dLoss/dY moves its largest gradient entry:
    the rounding of dLoss/dY (eps x the size of its terms, as nn.mlp.gradient_rounding) and,
    given `output_error` (per element of Y), that of Y carried into it, carried back through
    the sizes of every layer's terms."""
    outputs, caches = forward(layers, params, X)
    loss = loss_named(loss_name)
    Y = outputs[-1]
    delta = ROUNDING_ULPS * eps * loss.gradient_magnitude(Y, T)
    if output_error is not None:
        # How far Y's own error moves dLoss/dY, per element: carried back with absolute
        # values, it cannot cancel over the batch as one run's signed errors may.
        delta = (
            delta
            + np.abs(loss.gradient(Y + output_error, T) - loss.gradient(Y - output_error, T)) / 2
        )
    found: dict[str, float] = {}
    for i in reversed(range(len(layers))):
        layer = layers[i]
        kind = layer_kind(layer.kind)
        delta, grads = kind.magnitude_backward(layer, layer_params(layer, params), caches[i], delta)
        found.update({qualified(layer, k): float(np.max(g)) for k, g in grads.items()})
    return {name: found[name] for name in parameter_names(layers)}


# A piecewise-linear unit this close to its kink (relative to its layer's largest input)
# counts as on neither piece: rounding could put it on either.
KINK_MARGIN = 1e-9


def _one_piece(layer: Layer, cache: Cache | None) -> bool:
    """Whether every channel of a ReLU/LeakyReLU/ELU sits on one linear piece at this data
    (all its units on one side, none near the kink): a shift the same for every sample
    then passes it as a shift (times the piece's slope)."""
    if cache is None or layer.kind not in ("ReLU", "LeakyReLU", "ELU"):
        return False
    x, side = cache["x"], cache["pattern"]
    if np.any(np.abs(x) <= KINK_MARGIN * float(np.abs(x).max(initial=0.0))):
        return False
    if layer.kind == "ELU":  # its negative piece is not linear
        return bool(side.all())
    axes = tuple(a for a in range(side.ndim) if a != 1)
    return bool(np.all(side.all(axis=axes) | (~side).all(axis=axes)))


def _shift_cancelled(
    layers: Sequence[Layer], ndim: int, caches: Sequence[Cache] | None = None
) -> bool:
    """Whether a batch norm ahead cancels a shift added to every sample alike (a bias): it
    passes affine layers unchanged in kind (the same for every sample), and piecewise-linear
    activations whose channels each sit on one piece at this data (with `caches`), and a
    batch norm subtracts it with the batch mean, exactly when it is also the same at every
    position of a channel (or there are no positions). Any other nonlinearity keeps it."""
    uniform = True  # the same at every position of a channel
    for k, layer in enumerate(layers):
        o = layer.opts
        if layer.kind.startswith("BatchNorm"):
            return ndim == 2 or uniform
        if layer.kind == "Flatten":
            ndim = 2 if o["end_dim"] in (-1, ndim - 1) and o["start_dim"] == 1 else ndim
        elif layer.kind in ("Conv2d", "AvgPool2d"):
            uniform = uniform and o["padding"] == (0, 0)  # borders see part of it
        elif layer.kind == "MaxPool2d":
            if not uniform:  # max(x + c) = max(x) + c only for c the same over the window
                return False
        elif layer.kind not in ("Identity", "Linear") and not _one_piece(
            layer, caches[k] if caches is not None else None
        ):
            return False
    return False


def zero_gradients(
    layers: Sequence[Layer],
    input_shape: tuple[int, ...],
    caches: Sequence[Cache] | None = None,
) -> list[str]:
    """Parameters whose gradient is exactly zero because a batch norm ahead cancels what they
    do: a bias (a shift the same for every sample) that reaches the batch norm through affine
    layers only, whatever the data; with the forward's `caches`, also through ReLU-like
    layers each of whose channels sits on one linear piece at this data. (A batch norm also
    nearly cancels the scale of each channel, but only nearly: its eps keeps a gradient of
    about eps / variance of the terms, which is checked like any other.)"""
    shapes = output_shapes(layers, input_shape)
    zero = []
    for i, layer in enumerate(layers):
        ahead = caches[i + 1 :] if caches is not None else None
        if "bias" in parameter_shapes(layer) and _shift_cancelled(
            layers[i + 1 :], len(shapes[i]) + 1, ahead
        ):
            zero.append(qualified(layer, "bias"))
    return zero
