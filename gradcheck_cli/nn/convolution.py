"""Conv2d, MaxPool2d and AvgPool2d in NumPy: forward and hand-written backward side by side.

Convolution is vectorised with stride tricks: a (N, C, Ho, Wo, kh, kw) view of the padded
input holds every window, im2col copies it into one matrix, and the forward is one matrix
product (cross-correlation, as torch computes it). The backward of the input folds the
column gradients back, one kernel offset at a time (kh x kw vectorised additions).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.lib.stride_tricks import as_strided

from ..errors import InputError
from .layer_spec import (
    Arg,
    Cache,
    Layer,
    LayerKind,
    Params,
    as_bool,
    as_positive,
    choice,
    copy_index,
    optional_pair,
    pair,
    positive_pair,
)


def _pad(x: np.ndarray, padding: tuple[int, int], value: float) -> np.ndarray:
    ph, pw = padding
    if ph == 0 and pw == 0:
        return x
    return np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=value)


def windows(xp: np.ndarray, kernel: tuple[int, int], stride: tuple[int, int]) -> np.ndarray:
    """A read-only (N, C, Ho, Wo, kh, kw) view of every window of a padded (N, C, H, W) batch."""
    n, c, h, w = xp.shape
    kh, kw = kernel
    sh, sw = stride
    ho, wo = (h - kh) // sh + 1, (w - kw) // sw + 1
    s = xp.strides
    return as_strided(
        xp, (n, c, ho, wo, kh, kw), (s[0], s[1], s[2] * sh, s[3] * sw, s[2], s[3]), writeable=False
    )


def fold(
    dwin: np.ndarray, padded: tuple[int, ...], stride: tuple[int, int], crop: tuple[int, int]
) -> np.ndarray:
    """The adjoint of `windows`: add each window's gradient (N, C, Ho, Wo, kh, kw) back at its
    place in the padded input, then crop the padding off."""
    _, _, ho, wo, kh, kw = dwin.shape
    sh, sw = stride
    dxp = np.zeros(padded, dtype=dwin.dtype)
    for i in range(kh):
        for j in range(kw):
            dxp[:, :, i : i + sh * (ho - 1) + 1 : sh, j : j + sw * (wo - 1) + 1 : sw] += dwin[
                :, :, :, :, i, j
            ]
    ph, pw = crop
    return dxp[:, :, ph : padded[2] - ph, pw : padded[3] - pw]


def _spatial_out(
    s: tuple[int, ...], kernel: tuple[int, int], stride: tuple[int, int], padding: tuple[int, int]
) -> tuple[int, int]:
    if len(s) != 3:
        raise InputError(f"takes input of shape (channels, height, width) but gets shape {s}")
    sizes = []
    for size, k, st, p in zip(s[1:], kernel, stride, padding):
        if size + 2 * p < k:
            raise InputError(f"kernel {kernel} is larger than the padded input {s[1:]}")
        sizes.append((size + 2 * p - k) // st + 1)
    return sizes[0], sizes[1]


def _pool_stride(o: dict[str, Any]) -> tuple[int, int]:
    stride = o["stride"]
    return o["kernel_size"] if stride is None else stride


# --------------------------------------------------------------------------------------------
# Conv2d


def _conv_parameters(o: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    shapes: dict[str, tuple[int, ...]] = {
        "weight": (o["out_channels"], o["in_channels"], *o["kernel_size"])
    }
    if o["bias"]:
        shapes["bias"] = (o["out_channels"],)
    return shapes


def _conv_shape(o: dict[str, Any], s: tuple[int, ...]) -> tuple[int, ...]:
    ho, wo = _spatial_out(s, o["kernel_size"], o["stride"], o["padding"])
    if s[0] != o["in_channels"]:
        raise InputError(f"takes {o['in_channels']} input channels but gets shape {s}")
    return o["out_channels"], ho, wo


def _conv_work(o: dict[str, Any], s: tuple[int, ...]) -> int:
    ho, wo = _spatial_out(s, o["kernel_size"], o["stride"], o["padding"])
    return ho * wo * s[0] * o["kernel_size"][0] * o["kernel_size"][1]


def _conv_forward(
    layer: Layer, p: Params, x: np.ndarray, batch: int, pattern: np.ndarray | None
) -> tuple[np.ndarray, Cache]:
    o = layer.opts
    weight = p["weight"]
    out, channels, kh, kw = weight.shape
    xp = _pad(x, o["padding"], 0.0)
    win = windows(xp, (kh, kw), o["stride"])
    n, _, ho, wo = win.shape[:4]
    cols = win.transpose(0, 2, 3, 1, 4, 5).reshape(n * ho * wo, channels * kh * kw)
    y = cols @ weight.reshape(out, -1).T
    if "bias" in p:
        y += p["bias"]
    y = np.ascontiguousarray(y.reshape(n, ho, wo, out).transpose(0, 3, 1, 2))
    return y, {"x": x, "cols": cols, "win": win, "padded": xp.shape}


def _conv_backward(
    layer: Layer, p: Params, cache: Cache, dy: np.ndarray
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    o = layer.opts
    weight = p["weight"]
    out, channels, kh, kw = weight.shape
    n, _, ho, wo = dy.shape
    dym = dy.transpose(0, 2, 3, 1).reshape(-1, out)
    grads = {"weight": (dym.T @ cache["cols"]).reshape(weight.shape)}
    if "bias" in p:
        grads["bias"] = dym.sum(axis=0)
    dcols = (dym @ weight.reshape(out, -1)).reshape(n, ho, wo, channels, kh, kw)
    dx = fold(dcols.transpose(0, 3, 1, 2, 4, 5), cache["padded"], o["stride"], o["padding"])
    return dx, grads


def _conv_perturb(
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
        y[copies, :, flat] += deltas[:, None, None, None]
        return
    o, c, i, j = np.unravel_index(flat, p["weight"].shape)
    # Moving weight[o, c, i, j] moves output channel o by delta x the (i, j) tap of channel c.
    y[copies, :, o] += deltas[:, None, None, None] * cache["win"][:, c, :, :, i, j]


def _absolute(p: Params) -> dict[str, np.ndarray]:
    return {k: np.abs(v) for k, v in p.items()}


def _conv_magnitude(layer: Layer, p: Params, cache: Cache, m: np.ndarray) -> np.ndarray:
    return _conv_forward(layer, _absolute(p), m, m.shape[0], None)[0]


def _conv_magnitude_backward(
    layer: Layer, p: Params, cache: Cache, dy: np.ndarray
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    absolute = _absolute(p)
    _, at_abs = _conv_forward(layer, absolute, np.abs(cache["x"]), dy.shape[0], None)
    return _conv_backward(layer, absolute, at_abs, dy)


# --------------------------------------------------------------------------------------------
# MaxPool2d and AvgPool2d


def _pool_shape(o: dict[str, Any], s: tuple[int, ...]) -> tuple[int, ...]:
    kernel, padding = o["kernel_size"], o["padding"]
    if any(2 * p > k for p, k in zip(padding, kernel)):
        raise InputError(f"padding {padding} is more than half the kernel {kernel}")
    ho, wo = _spatial_out(s, kernel, _pool_stride(o), padding)
    return s[0], ho, wo


def _pool_work(o: dict[str, Any], s: tuple[int, ...]) -> int:
    c, ho, wo = _pool_shape(o, s)
    return c * ho * wo * o["kernel_size"][0] * o["kernel_size"][1]


def _max_forward(
    layer: Layer, p: Params, x: np.ndarray, batch: int, pattern: np.ndarray | None
) -> tuple[np.ndarray, Cache]:
    o = layer.opts
    kh, kw = o["kernel_size"]
    xp = _pad(x, o["padding"], -np.inf)
    win = windows(xp, (kh, kw), _pool_stride(o))
    values = win.reshape(*win.shape[:4], kh * kw)
    # The first largest entry of each window, as torch picks it on ties.
    arg = values.argmax(axis=-1) if pattern is None else pattern
    y = np.take_along_axis(values, arg[..., None], axis=-1)[..., 0]
    return y, {"pattern": arg, "values": values, "padded": xp.shape}


def route(arg: np.ndarray, dy: np.ndarray, kernel: tuple[int, int]) -> np.ndarray:
    """Each window's gradient at the position `arg` picks in it, as (N, C, Ho, Wo, kh, kw)."""
    kh, kw = kernel
    dwin = np.zeros((*dy.shape, kh * kw), dtype=dy.dtype)
    np.put_along_axis(dwin, arg[..., None], dy[..., None], axis=-1)
    return dwin.reshape(*dy.shape, kh, kw)


def _max_backward(
    layer: Layer, p: Params, cache: Cache, dy: np.ndarray
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    o = layer.opts
    dwin = route(cache["pattern"], dy, o["kernel_size"])
    return fold(dwin, cache["padded"], _pool_stride(o), o["padding"]), {}


def _max_magnitude(layer: Layer, p: Params, cache: Cache, m: np.ndarray) -> np.ndarray:
    o = layer.opts
    kh, kw = o["kernel_size"]
    win = windows(_pad(m, o["padding"], 0.0), (kh, kw), _pool_stride(o))
    values = win.reshape(*win.shape[:4], kh * kw)
    return np.take_along_axis(values, cache["pattern"][..., None], axis=-1)[..., 0]


def _avg_forward(
    layer: Layer, p: Params, x: np.ndarray, batch: int, pattern: np.ndarray | None
) -> tuple[np.ndarray, Cache]:
    o = layer.opts
    kernel = o["kernel_size"]
    xp = _pad(x, o["padding"], 0.0)
    win = windows(xp, kernel, _pool_stride(o))
    # Padding counts in the mean (torch's count_include_pad=True).
    return win.sum(axis=(-2, -1)) / (kernel[0] * kernel[1]), {"padded": xp.shape}


def _avg_backward(
    layer: Layer, p: Params, cache: Cache, dy: np.ndarray
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    o = layer.opts
    kh, kw = o["kernel_size"]
    share = dy / (kh * kw)
    dwin = np.broadcast_to(share[..., None, None], (*dy.shape, kh, kw))
    return fold(dwin, cache["padded"], _pool_stride(o), o["padding"]), {}


def _avg_magnitude(layer: Layer, p: Params, cache: Cache, m: np.ndarray) -> np.ndarray:
    return _avg_forward(layer, p, m, m.shape[0], None)[0]


def _no_parameters(o: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    return {}


_POOL_ARGS = (
    Arg("kernel_size", convert=positive_pair),
    Arg("stride", None, optional_pair),
    Arg("padding", 0, pair),
)

KINDS = (
    LayerKind(
        "Conv2d",
        (
            Arg("in_channels", convert=as_positive),
            Arg("out_channels", convert=as_positive),
            Arg("kernel_size", convert=positive_pair),
            Arg("stride", 1, positive_pair),
            Arg("padding", 0, pair),
            Arg("dilation", 1, positive_pair, only_default=True),
            Arg("groups", 1, as_positive, only_default=True),
            Arg("bias", True, as_bool),
            Arg(
                "padding_mode",
                "zeros",
                choice("zeros", "reflect", "replicate", "circular"),
                only_default=True,
            ),
        ),
        _conv_forward,
        _conv_backward,
        parameters=_conv_parameters,
        output_shape=_conv_shape,
        magnitude=_conv_magnitude,
        magnitude_backward=_conv_magnitude_backward,
        perturb=_conv_perturb,
        work=_conv_work,
    ),
    LayerKind(
        "MaxPool2d",
        (
            *_POOL_ARGS,
            Arg("dilation", 1, positive_pair, only_default=True),
            Arg("return_indices", False, as_bool, only_default=True),
            Arg("ceil_mode", False, as_bool, only_default=True),
        ),
        _max_forward,
        _max_backward,
        parameters=_no_parameters,
        output_shape=_pool_shape,
        magnitude=_max_magnitude,
        magnitude_backward=_max_backward,
        kinked=True,
        work=_pool_work,
    ),
    LayerKind(
        "AvgPool2d",
        (
            *_POOL_ARGS,
            Arg("ceil_mode", False, as_bool, only_default=True),
            Arg("count_include_pad", True, as_bool, only_default=True),
            Arg("divisor_override", None, only_default=True),
        ),
        _avg_forward,
        _avg_backward,
        parameters=_no_parameters,
        output_shape=_pool_shape,
        magnitude=_avg_magnitude,
        magnitude_backward=_avg_backward,
    ),
)
