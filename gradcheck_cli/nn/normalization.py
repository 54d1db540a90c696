"""BatchNorm1d/2d (training mode: batch statistics) and LayerNorm in NumPy, forward and
hand-written backward side by side.

Both normalise x to xhat = (x - mean) / sqrt(var + eps) (biased variance) and scale and
shift it per feature. Batch norm takes its statistics over the batch (and the positions),
so every sample's output depends on every other sample: the backward has the terms of the
mean and the variance, and finite differences must keep perturbed copies of the batch
apart (`batch` rows per copy). Layer norm takes them over each sample's trailing shape.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import InputError
from .layer_spec import (
    Arg,
    Cache,
    Layer,
    LayerKind,
    Params,
    as_bool,
    as_positive,
    as_positive_float,
    as_shape,
    broadcast_channels,
    copy_index,
)


def _normalise(x: np.ndarray, axes: tuple[int, ...], eps: float) -> tuple[np.ndarray, np.ndarray]:
    """(xhat, 1 / sqrt(var + eps)) with the statistics over `axes`."""
    mean = x.mean(axis=axes, keepdims=True)
    centered = x - mean
    var = (centered * centered).mean(axis=axes, keepdims=True)
    invstd = 1.0 / np.sqrt(var + eps)
    return centered * invstd, invstd


def _normalise_backward(
    dxhat: np.ndarray, xhat: np.ndarray, invstd: np.ndarray, axes: tuple[int, ...]
) -> np.ndarray:
    """dLoss/dx from dLoss/dxhat: the direct term minus those of the mean and the variance."""
    mean_term = dxhat.mean(axis=axes, keepdims=True)
    var_term = xhat * (dxhat * xhat).mean(axis=axes, keepdims=True)
    return np.asarray(invstd * (dxhat - mean_term - var_term))


def _normalise_magnitude_backward(
    dxhat: np.ndarray, xhat: np.ndarray, invstd: np.ndarray, axes: tuple[int, ...]
) -> np.ndarray:
    """The size of the terms of `_normalise_backward`, from non-negative dxhat and |xhat|."""
    mean_term = dxhat.mean(axis=axes, keepdims=True)
    var_term = xhat * (dxhat * xhat).mean(axis=axes, keepdims=True)
    return np.asarray(invstd * (dxhat + mean_term + var_term))


# --------------------------------------------------------------------------------------------
# BatchNorm1d / BatchNorm2d


def _bn_parameters(o: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    if not o["affine"]:
        return {}
    shapes: dict[str, tuple[int, ...]] = {"weight": (o["num_features"],)}
    if o["bias"]:
        shapes["bias"] = (o["num_features"],)
    return shapes


def _bn_shape(dims: tuple[int, ...]) -> Any:
    def shape(o: dict[str, Any], s: tuple[int, ...]) -> tuple[int, ...]:
        if len(s) not in dims or s[0] != o["num_features"]:
            c = o["num_features"]
            wanted = f"({c},) or ({c}, L)" if 1 in dims else f"({c}, H, W)"
            raise InputError(f"takes input of shape {wanted} but gets shape {s}")
        return s

    return shape


def _grouped(x: np.ndarray, batch: int) -> np.ndarray:
    """(copies * batch, C, ...) as (copies, batch, C, ...)."""
    return x.reshape(x.shape[0] // batch, batch, *x.shape[1:])


def _bn_axes(ndim: int) -> tuple[int, ...]:
    """The statistics axes of a grouped (copies, batch, C, ...) array: batch and positions."""
    return (1, *range(3, ndim))


def _bn_forward(
    layer: Layer, p: Params, x: np.ndarray, batch: int, pattern: np.ndarray | None
) -> tuple[np.ndarray, Cache]:
    xg = _grouped(x, batch)
    xhat, invstd = _normalise(xg, _bn_axes(xg.ndim), layer.opts["eps"])
    y = xhat
    if "weight" in p:
        y = y * broadcast_channels(p["weight"], x.ndim)
    if "bias" in p:
        y = y + broadcast_channels(p["bias"], x.ndim)
    return y.reshape(x.shape), {"xhat": xhat, "invstd": invstd}


def _bn_backward(
    layer: Layer, p: Params, cache: Cache, dy: np.ndarray
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    xhat, invstd = cache["xhat"], cache["invstd"]
    dyg = dy.reshape(xhat.shape)
    summed = (0, *_bn_axes(xhat.ndim))
    grads = {}
    dxhat = dyg
    if "weight" in p:
        grads["weight"] = (dyg * xhat).sum(axis=summed)
        dxhat = dyg * broadcast_channels(p["weight"], dy.ndim)
    if "bias" in p:
        grads["bias"] = dyg.sum(axis=summed)
    return _normalise_backward(dxhat, xhat, invstd, _bn_axes(xhat.ndim)).reshape(dy.shape), grads


def _bn_perturb(
    layer: Layer,
    p: Params,
    cache: Cache,
    name: str,
    flat: np.ndarray,
    deltas: np.ndarray,
    y: np.ndarray,
) -> None:
    # Batch norm is affine in its weight and bias given its input: moving weight[c] moves
    # channel c of every sample by delta x xhat, moving bias[c] by delta.
    copies = copy_index(flat.size)
    step = deltas.reshape(-1, *([1] * (y.ndim - 2)))
    if name == "bias":
        y[copies, :, flat] += step
    else:
        xhat = cache["xhat"][0]  # the unperturbed batch: one group
        y[copies, :, flat] += step * np.moveaxis(xhat[:, flat], 1, 0)


def _bn_magnitude(layer: Layer, p: Params, cache: Cache, m: np.ndarray) -> np.ndarray:
    xhat, invstd = cache["xhat"], cache["invstd"]
    mg = m.reshape(xhat.shape)
    axes = _bn_axes(xhat.ndim)
    # x - mean carries the rounding of x and of the mean; the normalised value its own.
    size = invstd * (mg + mg.mean(axis=axes, keepdims=True)) + np.abs(xhat)
    if "weight" in p:
        size = size * np.abs(broadcast_channels(p["weight"], m.ndim))
    if "bias" in p:
        size = size + np.abs(broadcast_channels(p["bias"], m.ndim))
    return np.asarray(size.reshape(m.shape))


def _bn_magnitude_backward(
    layer: Layer, p: Params, cache: Cache, dy: np.ndarray
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    xhat, invstd = np.abs(cache["xhat"]), cache["invstd"]
    dyg = dy.reshape(xhat.shape)
    axes = _bn_axes(xhat.ndim)
    summed = (0, *axes)
    grads = {}
    dxhat = dyg
    if "weight" in p:
        grads["weight"] = (dyg * xhat).sum(axis=summed)
        dxhat = dyg * np.abs(broadcast_channels(p["weight"], dy.ndim))
    if "bias" in p:
        grads["bias"] = dyg.sum(axis=summed)
    size = _normalise_magnitude_backward(dxhat, xhat, invstd, axes)
    return size.reshape(dy.shape), grads


# --------------------------------------------------------------------------------------------
# LayerNorm


def _ln_parameters(o: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    shapes: dict[str, tuple[int, ...]] = {}
    if o["elementwise_affine"]:
        shapes["weight"] = o["normalized_shape"]
        if o["bias"]:
            shapes["bias"] = o["normalized_shape"]
    return shapes


def _ln_shape(o: dict[str, Any], s: tuple[int, ...]) -> tuple[int, ...]:
    shape = o["normalized_shape"]
    if tuple(s[len(s) - len(shape) :]) != shape or len(s) < len(shape):
        raise InputError(f"normalises trailing shape {shape} but gets shape {s}")
    return s


def _ln_axes(o: dict[str, Any], ndim: int) -> tuple[int, ...]:
    return tuple(range(ndim - len(o["normalized_shape"]), ndim))


def _ln_forward(
    layer: Layer, p: Params, x: np.ndarray, batch: int, pattern: np.ndarray | None
) -> tuple[np.ndarray, Cache]:
    o = layer.opts
    xhat, invstd = _normalise(x, _ln_axes(o, x.ndim), o["eps"])
    y = xhat
    if "weight" in p:
        y = xhat * p["weight"]
    if "bias" in p:
        y = y + p["bias"]
    return y, {"xhat": xhat, "invstd": invstd}


def _ln_backward(
    layer: Layer, p: Params, cache: Cache, dy: np.ndarray
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    o = layer.opts
    xhat, invstd = cache["xhat"], cache["invstd"]
    leading = tuple(range(dy.ndim - len(o["normalized_shape"])))
    grads = {}
    dxhat = dy
    if "weight" in p:
        grads["weight"] = (dy * xhat).sum(axis=leading)
        dxhat = dy * p["weight"]
    if "bias" in p:
        grads["bias"] = dy.sum(axis=leading)
    return _normalise_backward(dxhat, xhat, invstd, _ln_axes(o, dy.ndim)), grads


def _ln_perturb(
    layer: Layer,
    p: Params,
    cache: Cache,
    name: str,
    flat: np.ndarray,
    deltas: np.ndarray,
    y: np.ndarray,
) -> None:
    index = np.unravel_index(flat, layer.opts["normalized_shape"])
    copies = copy_index(flat.size)
    where: Any = (copies, Ellipsis, *index)
    step = deltas.reshape(-1, *([1] * (y.ndim - 1 - len(index))))
    if name == "bias":
        y[where] += step
    else:
        at: Any = (Ellipsis, *index)
        y[where] += step * np.moveaxis(cache["xhat"][at], -1, 0)


def _ln_magnitude(layer: Layer, p: Params, cache: Cache, m: np.ndarray) -> np.ndarray:
    xhat, invstd = cache["xhat"], cache["invstd"]
    axes = _ln_axes(layer.opts, m.ndim)
    size = invstd * (m + m.mean(axis=axes, keepdims=True)) + np.abs(xhat)
    if "weight" in p:
        size = size * np.abs(p["weight"])
    if "bias" in p:
        size = size + np.abs(p["bias"])
    return np.asarray(size)


def _ln_magnitude_backward(
    layer: Layer, p: Params, cache: Cache, dy: np.ndarray
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    o = layer.opts
    xhat, invstd = np.abs(cache["xhat"]), cache["invstd"]
    leading = tuple(range(dy.ndim - len(o["normalized_shape"])))
    axes = _ln_axes(o, dy.ndim)
    grads = {}
    dxhat = dy
    if "weight" in p:
        grads["weight"] = (dy * xhat).sum(axis=leading)
        dxhat = dy * np.abs(p["weight"])
    if "bias" in p:
        grads["bias"] = dy.sum(axis=leading)
    size = _normalise_magnitude_backward(dxhat, xhat, invstd, axes)
    return size, grads


def _bn_kind(name: str, dims: tuple[int, ...]) -> LayerKind:
    return LayerKind(
        name,
        (
            Arg("num_features", convert=as_positive),
            Arg("eps", 1e-5, as_positive_float),
            Arg("momentum", 0.1, ignored=True),
            Arg("affine", True, as_bool),
            Arg("track_running_stats", True, ignored=True),
            Arg("bias", True, as_bool),  # keyword-only in torch (2.13 on)
        ),
        _bn_forward,
        _bn_backward,
        parameters=_bn_parameters,
        output_shape=_bn_shape(dims),
        magnitude=_bn_magnitude,
        magnitude_backward=_bn_magnitude_backward,
        perturb=_bn_perturb,
    )


KINDS = (
    _bn_kind("BatchNorm1d", (1, 2)),
    _bn_kind("BatchNorm2d", (3,)),
    LayerKind(
        "LayerNorm",
        (
            Arg("normalized_shape", convert=as_shape),
            Arg("eps", 1e-5, as_positive_float),
            Arg("elementwise_affine", True, as_bool),
            Arg("bias", True, as_bool),
        ),
        _ln_forward,
        _ln_backward,
        parameters=_ln_parameters,
        output_shape=_ln_shape,
        magnitude=_ln_magnitude,
        magnitude_backward=_ln_magnitude_backward,
        perturb=_ln_perturb,
    ),
)
