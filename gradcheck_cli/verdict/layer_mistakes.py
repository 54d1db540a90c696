"""Models of the classic mistakes in the backprop of a layered network.

Each model is the float64 gradient a backprop with one wrong layer backward would return on
this problem: a convolution whose kernel gradient is flipped (convolution instead of
cross-correlation) or whose input gradient uses the kernel unflipped, a max-pool that routes
its gradient to every position of its window (or to its first one, or spreads it evenly),
an average pool without its 1/k, a batch norm (or layer norm) without the terms of its
batch statistics, an activation without its derivative. The Diagnoser (diagnose.py) fits
them, alone or times a named factor, to a gradient that disagrees with the reference.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..nn import network
from ..nn.convolution import _pool_stride, fold, route
from ..nn.layer_spec import Backward, Cache, Layer, Params
from ..nn.layers import ELEMENTWISE, layer_kind
from ..problem import Gradients, LayeredProblem

Grads = tuple[np.ndarray, dict[str, np.ndarray]]


def _every_position(layer: Layer, p: Params, cache: Cache, dy: np.ndarray) -> Grads:
    o = layer.opts
    kh, kw = o["kernel_size"]
    dwin = np.broadcast_to(dy[..., None, None], (*dy.shape, kh, kw))
    return fold(dwin, cache["padded"], _pool_stride(o), o["padding"]), {}


def _spread_evenly(layer: Layer, p: Params, cache: Cache, dy: np.ndarray) -> Grads:
    kh, kw = layer.opts["kernel_size"]
    return _every_position(layer, p, cache, dy / (kh * kw))


def _first_position(layer: Layer, p: Params, cache: Cache, dy: np.ndarray) -> Grads:
    o = layer.opts
    dwin = route(np.zeros(dy.shape, dtype=np.int64), dy, o["kernel_size"])
    return fold(dwin, cache["padded"], _pool_stride(o), o["padding"]), {}


def _flipped_kernel_gradient(layer: Layer, p: Params, cache: Cache, dy: np.ndarray) -> Grads:
    dx, grads = layer_kind("Conv2d").backward(layer, p, cache, dy)
    grads["weight"] = grads["weight"][:, :, ::-1, ::-1].copy()
    return dx, grads


def _unflipped_input_gradient(layer: Layer, p: Params, cache: Cache, dy: np.ndarray) -> Grads:
    # The input's gradient through the kernel turned by 180 degrees: the flip a transposed
    # convolution needs, done once too often (or left out).
    _, grads = layer_kind("Conv2d").backward(layer, p, cache, dy)
    turned = {**p, "weight": p["weight"][:, :, ::-1, ::-1]}
    dx, _ = layer_kind("Conv2d").backward(layer, turned, cache, dy)
    return dx, grads


def _normalisation(keep_mean: bool, keep_var: bool) -> Backward:
    """A batch or layer norm backward keeping only some of its statistics' terms."""

    def backward(layer: Layer, p: Params, cache: Cache, dy: np.ndarray) -> Grads:
        _, grads = layer_kind(layer.kind).backward(layer, p, cache, dy)
        xhat, invstd = cache["xhat"], cache["invstd"]
        dxhat = dy.reshape(xhat.shape)
        if layer.kind.startswith("BatchNorm"):  # grouped (copies, batch, C, ...)
            axes: tuple[int, ...] = (1, *range(3, xhat.ndim))
            if "weight" in p:
                dxhat = dxhat * p["weight"].reshape(-1, *([1] * (xhat.ndim - 3)))
        else:
            axes = tuple(range(xhat.ndim - len(layer.opts["normalized_shape"]), xhat.ndim))
            if "weight" in p:
                dxhat = dxhat * p["weight"]
        dx = dxhat
        if keep_mean:
            dx = dx - dxhat.mean(axis=axes, keepdims=True)
        if keep_var:
            dx = dx - xhat * (dxhat * xhat).mean(axis=axes, keepdims=True)
        return (invstd * dx).reshape(dy.shape), grads

    return backward


def _no_derivative(layer: Layer, p: Params, cache: Cache, dy: np.ndarray) -> Grads:
    return dy, {}


# kind -> [(what the mistake is, given the layer's label; the wrong backward)].
MISTAKES: dict[str, list[tuple[Callable[[str], str], Backward]]] = {
    "Conv2d": [
        (
            lambda at: (
                f"the kernel gradient of {at} is flipped in both spatial axes "
                "(a convolution where the forward is a cross-correlation)"
            ),
            _flipped_kernel_gradient,
        ),
        (
            lambda at: (
                f"the input gradient through {at} uses the kernel unflipped (the "
                "transposed convolution needs the kernel turned by 180 degrees)"
            ),
            _unflipped_input_gradient,
        ),
    ],
    "MaxPool2d": [
        (
            lambda at: (
                f"{at} routes the gradient to every position of its window, not only to the largest"
            ),
            _every_position,
        ),
        (
            lambda at: (
                f"{at} routes the gradient to the first position of each window, not to the largest"
            ),
            _first_position,
        ),
        (
            lambda at: (
                f"{at} spreads the gradient evenly over its window (an average "
                "pool's backward), not only to the largest"
            ),
            _spread_evenly,
        ),
    ],
    "AvgPool2d": [
        (
            lambda at: (
                f"{at} passes the whole gradient to every position of its window "
                "(the 1/k of the average is missing)"
            ),
            _every_position,
        ),
    ],
}


def _statistics(which: str) -> list[tuple[Callable[[str], str], Backward]]:
    """The three ways of dropping a normalisation's statistics terms; `which` names them."""
    return [
        (
            lambda at: (
                f"{at} is differentiated without the terms of its {which} (as if their "
                "mean and variance were constants)"
            ),
            _normalisation(keep_mean=False, keep_var=False),
        ),
        (
            lambda at: f"{at} is differentiated without the term of its {which}' variance",
            _normalisation(keep_mean=True, keep_var=False),
        ),
        (
            lambda at: f"{at} is differentiated without the term of its {which}' mean",
            _normalisation(keep_mean=False, keep_var=True),
        ),
    ]


MISTAKES["BatchNorm1d"] = MISTAKES["BatchNorm2d"] = _statistics("batch statistics")
MISTAKES["LayerNorm"] = _statistics("statistics")


def _label(layer: Layer) -> str:
    return f"layer {layer.name} {layer.text()}"


def _variant(problem: LayeredProblem, index: int, backward: Backward) -> Gradients:
    """The float64 gradient with layer `index`'s backward replaced."""

    def override(i: int, layer: Layer) -> Backward | None:
        return backward if i == index else None

    T = problem.T if problem.T.dtype.kind in "iu" else problem.T.astype(np.float64)
    _, grads = network.gradients(
        problem.layers, problem.params, problem.X, T, problem.loss, backward_of=override
    )
    return Gradients(loss=None, named=grads)


def layered_variants(problem: LayeredProblem) -> dict[str, Gradients]:
    """Gradients a backprop with one classic layer mistake would return, keyed by the hint."""
    variants: dict[str, Gradients] = {}
    for index, layer in enumerate(problem.layers):
        for text, backward in MISTAKES.get(layer.kind, []):
            variants[text(_label(layer))] = _variant(problem, index, backward)
    # An activation derivative left out, in every layer of that kind at once.
    for kind in dict.fromkeys(layer.kind for layer in problem.layers):
        if kind not in ELEMENTWISE or kind == "Identity":
            continue
        indices = {i for i, layer in enumerate(problem.layers) if layer.kind == kind}

        def override(i: int, layer: Layer, indices: set[int] = indices) -> Backward | None:
            return _no_derivative if i in indices else None

        T = problem.T if problem.T.dtype.kind in "iu" else problem.T.astype(np.float64)
        _, grads = network.gradients(
            problem.layers, problem.params, problem.X, T, problem.loss, backward_of=override
        )
        hint = f"the {kind} derivative is missing: it matches backprop without {kind}'(x)"
        variants[hint] = Gradients(loss=None, named=grads)
    return variants
