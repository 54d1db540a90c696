"""The changed slice of a perturbed batch, pushed through channel-local layers alone.

Moving one entry of a Linear (2-D), Conv2d or batch-norm parameter changes one channel (one
feature) of that layer's output. Channel-local layers above it (activations, pools, batch
norm, whose statistics are per channel) change only that channel, so finite differences
carry just the changed channels of every perturbed copy, `(copies, N, m, ...)` with their
indices, up to the next Linear or Conv2d, which takes them as a low-rank update of its
unperturbed output: z0 + (x - x0)[changed] @ W[:, changed]. Flatten maps the channels to
their blocks of features. Any other layer gets the full batch back (`materialize`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..nn import network
from ..nn.convolution import windows
from ..nn.layer_spec import Cache, Layer
from ..nn.layers import ELEMENTWISE, layer_kind

# Layers whose output channel c depends on input channel c alone.
CHANNEL_LOCAL = (*ELEMENTWISE, "MaxPool2d", "AvgPool2d", "BatchNorm1d", "BatchNorm2d")


@dataclass
class Slice:
    """The changed channels of every copy: values (copies, N, m, ...) at index (copies, m)."""

    values: np.ndarray
    index: np.ndarray


def gather(base: np.ndarray, index: np.ndarray) -> np.ndarray:
    """The unperturbed batch's channels `index` (copies, m) for every copy: (copies, N, m, ...)."""
    return np.moveaxis(base[:, index], 0, 1)


def origin(layer: Layer, key: str, flat: np.ndarray, shape: tuple[int, ...], ndim: int) -> Any:
    """The output channel each moved entry changes, or None where the change is not one
    channel (a layer norm; a Linear on more than 2-D)."""
    if layer.kind not in ("Linear", "Conv2d", "BatchNorm1d", "BatchNorm2d"):
        return None
    if layer.kind == "Linear" and ndim != 2:
        return None
    if key == "weight" and len(shape) > 1:
        return np.unravel_index(flat, shape)[0]
    return flat


def start(
    layer: Layer,
    params: dict[str, np.ndarray],
    cache: Cache,
    key: str,
    flat: np.ndarray,
    deltas: np.ndarray,
    base: np.ndarray,
) -> Slice | None:
    """The changed channel of every copy of the perturbed layer's output, or None."""
    channels = origin(layer, key, flat, params[key].shape, base.ndim)
    if channels is None:
        return None
    copies = flat.size
    response = np.zeros((copies, *base.shape))
    kind = layer_kind(layer.kind)
    assert kind.perturb is not None
    kind.perturb(layer, params, cache, key, flat, deltas, response)
    ar = np.arange(copies)
    values = gather(base, channels[:, None]) + response[ar, :, channels][:, :, None]
    return Slice(values, channels[:, None])


def _batch_norm(layer: Layer, params: dict[str, np.ndarray], s: Slice, batch: int) -> np.ndarray:
    copies, n, m = s.values.shape[:3]
    x = s.values.reshape(copies * n, m, *s.values.shape[3:])
    y, _ = layer_kind(layer.kind).forward(layer, {}, x, batch, None)  # normalised per copy
    y = y.reshape(s.values.shape)
    shape = (copies, 1, m, *([1] * (s.values.ndim - 3)))
    if "weight" in params:
        y = y * params["weight"][s.index].reshape(shape)
    if "bias" in params:
        y = y + params["bias"][s.index].reshape(shape)
    return y


def channel_local(
    layer: Layer,
    params: dict[str, np.ndarray],
    s: Slice,
    batch: int,
    base_pattern: np.ndarray | None,
) -> tuple[Slice, np.ndarray | None]:
    """A channel-local layer on the changed channels; and per copy, whether a kink pattern
    changed (None where the layer has none)."""
    copies, n, m = s.values.shape[:3]
    if layer.kind.startswith("BatchNorm"):
        return Slice(_batch_norm(layer, params, s, batch), s.index), None
    x = s.values.reshape(copies * n, m, *s.values.shape[3:])
    y, cache = layer_kind(layer.kind).forward(layer, {}, x, batch, None)
    crossed = None
    if base_pattern is not None:
        now = cache["pattern"].reshape(copies, n, m, *cache["pattern"].shape[2:])
        crossed = (now != gather(base_pattern, s.index)).reshape(copies, -1).any(axis=1)
    return Slice(y.reshape(copies, n, m, *y.shape[2:]), s.index), crossed


def flatten(layer: Layer, s: Slice) -> Slice | None:
    """Flatten of everything after the batch: each channel becomes its block of features."""
    o = layer.opts
    ndim = s.values.ndim - 1
    if o["start_dim"] != 1 or o["end_dim"] not in (-1, ndim - 1):
        return None
    copies, n, m = s.values.shape[:3]
    block = int(np.prod(s.values.shape[3:]))
    index = (s.index[:, :, None] * block + np.arange(block)).reshape(copies, m * block)
    return Slice(s.values.reshape(copies, n, m * block), index)


def consume(
    layer: Layer,
    params: dict[str, np.ndarray],
    s: Slice,
    base_in: np.ndarray,
    base_out: np.ndarray,
) -> np.ndarray | None:
    """A Linear (2-D) or Conv2d taking the changed channels as a low-rank update of its
    unperturbed output: (copies, N, ...), or None for other layers."""
    change = s.values - gather(base_in, s.index)
    if layer.kind == "Linear" and base_in.ndim == 2:
        # (copies, N, m) @ (copies, m, out): each copy's rows of W.T (one: an outer product).
        rows = params["weight"].T[s.index]
        update = change * rows if change.shape[2] == 1 else np.matmul(change, rows)
        return base_out[None] + update
    if layer.kind != "Conv2d":
        return None
    o = layer.opts
    copies, n, m = change.shape[:3]
    weight = params["weight"]  # (out, in, kh, kw)
    out, _, kh, kw = weight.shape
    ph, pw = o["padding"]
    x = change.reshape(copies * n, m, *change.shape[3:])
    if ph or pw:
        x = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    win = windows(x, (kh, kw), o["stride"])  # (copies*N, m, Ho, Wo, kh, kw)
    ho, wo = win.shape[2:4]
    cols = win.reshape(copies, n, m, ho, wo, kh, kw).transpose(0, 1, 3, 4, 2, 5, 6)
    cols = cols.reshape(copies, n * ho * wo, m * kh * kw)
    # Each copy's kernel slices: weight[:, index[k]] as (m * kh * kw, out).
    kernels = np.moveaxis(weight[:, s.index], 0, -1)  # (copies, m, kh, kw, out)
    update = np.matmul(cols, kernels.reshape(copies, m * kh * kw, out))
    update = update.reshape(copies, n, ho, wo, out).transpose(0, 1, 4, 2, 3)
    return base_out[None] + update


def materialize(s: Slice, base: np.ndarray) -> np.ndarray:
    """The full perturbed batch of every copy, (copies, N, ...), from its changed channels."""
    copies = s.values.shape[0]
    full = np.empty((copies, *base.shape))
    full[...] = base
    rows = np.arange(copies)[:, None]
    full[rows, :, s.index] = np.moveaxis(s.values, 2, 1)
    return full


def walk(
    layers: Sequence[Layer],
    params: dict[str, np.ndarray],
    inputs: Sequence[np.ndarray],
    outputs: Sequence[np.ndarray],
    patterns: Sequence[np.ndarray | None],
    s: Slice,
    first: int,
    batch: int,
) -> tuple[np.ndarray, int, np.ndarray]:
    """Carry the changed channels from layer `first` on as far as they stay channels: the
    full batch of every copy (copies, N, ...) that enters layer j, j, and the copies whose
    kink patterns changed on the way."""
    copies = s.values.shape[0]
    crossed = np.zeros(copies, dtype=bool)
    j = first
    while j < len(layers):
        layer = layers[j]
        local = network.layer_params(layer, params)
        if layer.kind in CHANNEL_LOCAL:
            s, flags = channel_local(layer, local, s, batch, patterns[j])
            if flags is not None:
                crossed |= flags
        elif layer.kind == "Flatten" and (flat := flatten(layer, s)) is not None:
            s = flat
        else:
            full = consume(layer, local, s, inputs[j], outputs[j])
            if full is not None:
                return full, j + 1, crossed
            return materialize(s, inputs[j]), j, crossed
        j += 1
    return materialize(s, outputs[-1]), j, crossed
