"""The batched engine: loss changes at many single-entry perturbations at once.

`EntryLosses` evaluates the loss at many single-entry perturbations of one parameter
tensor at once: the activations below the perturbed layer are reused, the layer just
above gets a rank-1 update (only one unit changed), and all perturbed copies go
through the remaining layers as one large matrix product, in chunks that bound memory.
It also reports whether a perturbation changed any ReLU/leaky-ReLU activation pattern
(crossed a kink), for `fd.lines.estimate_lines`.
"""

from __future__ import annotations

import numpy as np

from .. import nn
from ..problem import Problem
from .lines import EPS64, ChunkedLosses, Progress

# Perturbed copies per chunk are bounded so that a chunk's packed rows (at most
# copies x N x width) stay within 2**19 float64 elements (4 MiB): large enough for
# efficient matrix products, small enough to bound memory on any problem. Measured
# on the 10k-parameter MLP: 2**17 0.31 s, 2**18 0.27 s, 2**19 0.25 s, 2**21 0.29 s.
CHUNK_ELEMENTS = 2**19


class EntryLosses(ChunkedLosses):
    """Loss changes at single-entry perturbations of a problem's parameters, in batches.

    Rows (samples) of an MLP are independent and every loss is a sum over rows, so a
    perturbation only needs the rows it changes: moving W[l][i, j] changes column j of
    Z[l] in the rows where A[l][:, i] is non-zero, and the layer above only in the rows
    where unit j's activation changed (with ReLU, typically half of them or fewer). The
    changed rows of all copies in a chunk are packed into one matrix and pushed through
    the remaining layers with one matrix product per layer; their loss changes are summed
    per copy. Computing f(theta + h) - f(theta) from the changed rows alone also avoids
    the cancellation of subtracting two full losses.
    """

    def __init__(self, problem: Problem, progress: Progress | None = None) -> None:
        """Run the unperturbed forward pass once and keep every layer's values."""
        self.problem = problem
        self.weights = [np.asarray(w, dtype=np.float64) for w in problem.weights]
        self.biases = [np.asarray(b, dtype=np.float64) for b in problem.biases]
        self.X = np.asarray(problem.X, dtype=np.float64)
        self.T = np.asarray(problem.T)
        if self.T.dtype.kind == "f":
            self.T = self.T.astype(np.float64)
        self.Z, self.A = nn.forward(
            self.X, self.weights, self.biases, problem.activation, problem.negative_slope
        )
        self.activation = nn.activation(problem.activation)
        self.slope = problem.negative_slope
        self.row_losses = nn.loss(problem.loss).rows
        self.kinky = self.activation.has_kink
        self.patterns = [z > 0 for z in self.Z[:-1]]
        self.N = self.X.shape[0]
        self.rows0 = self.row_losses(self.Z[-1], self.T, self.N)
        self.f0 = nn.loss(problem.loss).value(self.Z[-1], self.T)
        self.noise = evaluation_noise(problem)
        super().__init__(progress)
        self._buffers: dict[tuple[str, int], np.ndarray] = {}

    def _act(self, z: np.ndarray) -> np.ndarray:
        return self.activation.forward(z, self.slope)

    def _act_inplace(self, z: np.ndarray) -> np.ndarray:
        """act(z), overwriting z where the activation allows it."""
        inplace = self.activation.forward_inplace
        return inplace(z, self.slope) if inplace is not None else self._act(z)

    def _buffer(self, kind: str, layer: int, rows: int) -> np.ndarray:
        """A reusable (rows, width of layer) float64 work array.

        Fresh megabyte-sized temporaries cost page faults on every allocation, which
        here took longer than the arithmetic; reused buffers avoid them.
        """
        return self._reuse(kind, layer, rows, np.float64)

    def _mask(self, kind: str, layer: int, rows: int) -> np.ndarray:
        """A reusable (rows, width of layer) boolean work array."""
        return self._reuse(kind, layer, rows, np.bool_)

    def _reuse(self, kind: str, layer: int, rows: int, dtype: type) -> np.ndarray:
        buf = self._buffers.get((kind, layer))
        if buf is None or buf.shape[0] < rows:
            buf = np.empty((max(rows, 1), self.Z[layer].shape[1]), dtype=dtype)
            self._buffers[kind, layer] = buf
        return buf[:rows]

    def losses(
        self, name: str, flat: np.ndarray, deltas: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """f(theta + deltas[r] e_flat[r]) - f(theta) for parameter `name`, and kink flags."""
        layer = int(name[1:])
        widest = max(w.shape[1] for w in self.weights[layer:])
        chunk = max(1, CHUNK_ELEMENTS // (self.N * widest))
        return self.in_chunks(
            flat.size,
            chunk,
            lambda a, b: self._chunk(name, layer, flat[a:b], deltas[a:b]),
        )

    def _chunk(
        self, name: str, layer: int, flat: np.ndarray, deltas: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        c = flat.size
        last = len(self.weights) - 1
        z_base = self.Z[layer]
        if name[0] == "W":
            i, j = np.divmod(flat, z_base.shape[1])
            # Moving W[i, j] by d changes only column j of Z: by d * A[:, i].
            dz = deltas[:, None] * self.A[layer][:, i].T
        else:
            j = flat
            dz = np.broadcast_to(deltas[:, None], (c, self.N))
        zj = z_base[:, j].T + dz  # (c, N): the changed column of every copy
        crossed = np.zeros(c, dtype=bool)
        if layer == last:
            r, n = np.nonzero(dz)
            y = self.Z[last][n]
            y[np.arange(r.size), j[r]] = zj[r, n]
        else:
            if self.kinky:
                crossed |= ((zj > 0) != self.patterns[layer][:, j].T).any(axis=1)
            # Only unit j of A[layer+1] changed, and only in rows where its value did:
            # those rows of Z[layer+1] get the update da * W[layer+1][j].
            da = self._act(zj) - self.A[layer + 1][:, j].T  # (c, N)
            r, n = np.nonzero(da)
            y = np.take(self.Z[layer + 1], n, axis=0, out=self._buffer("z", layer + 1, r.size))
            update = np.take(
                self.weights[layer + 1], j[r], axis=0, out=self._buffer("u", layer + 1, r.size)
            )
            update *= da[r, n][:, None]
            y += update
            for k in range(layer + 1, last):
                if self.kinky:
                    was = np.take(self.patterns[k], n, axis=0, out=self._mask("was", k, r.size))
                    now = np.greater(y, 0.0, out=self._mask("now", k, r.size))
                    crossed[r[np.not_equal(now, was, out=now).any(axis=1)]] = True
                a = self._act_inplace(y)
                y = np.matmul(a, self.weights[k + 1], out=self._buffer("z", k + 1, r.size))
                y += self.biases[k + 1]
        change = self.row_losses(y, self.T[n], self.N) - self.rows0[n]
        return np.bincount(r, weights=change, minlength=c), crossed


def evaluation_noise(problem: Problem) -> float:
    """A bound on the rounding error of one evaluated float64 loss change."""
    return nn.loss_rounding(
        np.asarray(problem.X, np.float64),
        problem.T if problem.T.dtype.kind in "iu" else np.asarray(problem.T, np.float64),
        [np.asarray(w, np.float64) for w in problem.weights],
        [np.asarray(b, np.float64) for b in problem.biases],
        problem.activation,
        problem.loss,
        problem.negative_slope,
        EPS64,
    )
