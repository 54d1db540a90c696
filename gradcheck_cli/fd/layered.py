"""The batched engine for layered problems: loss changes at many single-entry perturbations.

The unperturbed forward pass runs once and every layer's output and cache are kept. A
parameter entry of layer i moves only layer i's output, and every layer with parameters is
affine in each single entry, so each perturbed copy's output of layer i is the unperturbed
one plus delta x that entry's response (the layer table's `perturb`: a tap of the input for
a convolution, xhat for a batch norm's weight), exactly. A chunk of perturbed copies of the
whole batch is then pushed through the layers above as one batch of copies x N rows: batch
norm takes its statistics per copy (it couples the samples, so a perturbation changes every
row), and every piecewise layer above (ReLU sides, max-pool argmaxes) compares its pattern
with the unperturbed one: a change is a crossed kink, for `fd.lines.estimate_lines`.
The loss change is summed from per-row changes, not from two full losses.
"""

from __future__ import annotations

import numpy as np

from .. import nn
from ..nn import network
from ..nn.layers import layer_kind, parameter_shapes
from ..problem import LayeredProblem
from . import slices
from .lines import EPS64, ChunkedLosses, Progress

# Perturbed copies per chunk are bounded so that a chunk's largest layer (output, plus its
# im2col work space) holds at most this many float64 elements (16 MiB).
CHUNK_ELEMENTS = 2**21


def layered_evaluation_noise(problem: LayeredProblem) -> float:
    """A bound on the rounding error of one evaluated float64 loss change."""
    T = problem.T if problem.T.dtype.kind in "iu" else np.asarray(problem.T, np.float64)
    return network.loss_rounding(
        problem.layers, problem.params, np.asarray(problem.X, np.float64), T, problem.loss, EPS64
    )


class LayeredEntryLosses(ChunkedLosses):
    """Loss changes at single-entry perturbations of a layered problem's parameters."""

    def __init__(self, problem: LayeredProblem, progress: Progress | None = None) -> None:
        """Run the unperturbed forward pass once and keep every layer's output and cache."""
        self.layers = problem.layers
        self.params = {n: np.asarray(p, dtype=np.float64) for n, p in problem.params.items()}
        self.X = np.asarray(problem.X, dtype=np.float64)
        self.T = np.asarray(problem.T)
        if self.T.dtype.kind == "f":
            self.T = self.T.astype(np.float64)
        self.N = self.X.shape[0]
        self.outputs, self.caches = network.forward(self.layers, self.params, self.X)
        self.inputs = [self.X, *self.outputs[:-1]]
        self.patterns = network.kink_patterns(self.caches)
        self.loss = nn.loss(problem.loss)
        self.rows0 = self.loss.rows(self.outputs[-1], self.T, self.N)
        self.f0 = self.loss.value(self.outputs[-1], self.T)
        self.noise = layered_evaluation_noise(problem)
        self.owner = {
            network.qualified(layer, key): (i, key)
            for i, layer in enumerate(self.layers)
            for key in parameter_shapes(layer)
        }
        # Per layer i, the most elements per sample that any layer from i on holds at once.
        shapes = [self.X.shape[1:], *(o.shape[1:] for o in self.outputs)]
        sizes = [
            int(np.prod(shapes[j + 1])) + layer_kind(layer.kind).work(layer.opts, shapes[j])
            for j, layer in enumerate(self.layers)
        ]
        self.footprint = [max(sizes[i:]) for i in range(len(sizes))]
        super().__init__(progress)

    def losses(
        self, name: str, flat: np.ndarray, deltas: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """f(theta + deltas[r] e_flat[r]) - f(theta) for parameter `name`, and kink flags."""
        layer, key = self.owner[name]
        chunk = max(1, CHUNK_ELEMENTS // (self.N * self.footprint[layer]))
        return self.in_chunks(
            flat.size,
            chunk,
            lambda a, b: self._chunk(layer, key, flat[a:b], deltas[a:b]),
        )

    def _chunk(
        self, index: int, key: str, flat: np.ndarray, deltas: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        copies = flat.size
        base = self.outputs[index]
        layer = self.layers[index]
        local = network.layer_params(layer, self.params)
        changed = slices.start(layer, local, self.caches[index], key, flat, deltas, base)
        if changed is not None:  # one channel changed: carry it alone while it stays one
            y, first, crossed = slices.walk(
                self.layers,
                self.params,
                self.inputs,
                self.outputs,
                self.patterns,
                changed,
                index + 1,
                self.N,
            )
        else:
            y = np.empty((copies, *base.shape))
            y[...] = base
            kind = layer_kind(layer.kind)
            assert kind.perturb is not None  # every layer with parameters has one
            kind.perturb(layer, local, self.caches[index], key, flat, deltas, y)
            first, crossed = index + 1, np.zeros(copies, dtype=bool)
        x = y.reshape(copies * self.N, *y.shape[2:])
        for j in range(first, len(self.layers)):
            above = self.layers[j]
            spec = layer_kind(above.kind)
            x, cache = spec.forward(
                above, network.layer_params(above, self.params), x, self.N, None
            )
            base_pattern = self.patterns[j]
            if base_pattern is not None:
                now = cache["pattern"].reshape(copies, *base_pattern.shape)
                crossed |= (now != base_pattern).reshape(copies, -1).any(axis=1)
        reps = (copies,) + (1,) * (self.T.ndim - 1)
        change = self.loss.rows(x, np.tile(self.T, reps), self.N) - np.tile(self.rows0, copies)
        return change.reshape(copies, self.N).sum(axis=1), crossed
