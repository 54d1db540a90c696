"""Batched loss evaluations for finite differences, and kink-aware derivative estimates.

`EntryLosses` evaluates the loss at many single-entry perturbations of one parameter
tensor at once: the activations below the perturbed layer are reused, the layer just
above gets a rank-1 update (only one unit changed), and all perturbed copies go
through the remaining layers as one large matrix product, in chunks that bound memory.
It also reports whether a perturbation changed any ReLU/leaky-ReLU activation pattern
(crossed a kink). `estimate_lines` turns such evaluations into derivative estimates
with error estimates, resolving kinks with smaller steps or one-sided differences.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from . import numpy_mlp
from .problem import Problem

EPS64 = float(np.finfo(np.float64).eps)
# Rounding error of one float64 loss evaluation, in ulps of the loss: summing N*out
# squared residuals loses a few ulps; 4 is generous for the sizes we see.
ROUNDING_ULPS = 4.0
# Perturbed copies per chunk are bounded so that a chunk's packed rows (at most
# copies x N x width) stay within 2**19 float64 elements (4 MiB): large enough for
# efficient matrix products, small enough to bound memory on any problem. Measured
# on the 10k-parameter MLP: 2**17 0.31 s, 2**18 0.27 s, 2**19 0.25 s, 2**21 0.29 s.
CHUNK_ELEMENTS = 2**19
# When a step of h crosses a kink, differences are also tried at these fractions of h.
KINK_STEP_FACTORS = (0.1, 0.01, 0.001)

# (done, total) evaluations; called after every chunk.
Progress = Callable[[int, int], None]
# evaluate(lines, offsets) -> (changes, crossed): f(theta + offset * direction(line)) - f(theta),
# and whether that perturbation changed an activation pattern.
Evaluator = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


def batched_loss(Y: np.ndarray, T: np.ndarray, name: str) -> np.ndarray:
    """The loss of every output copy in Y (copies, N, out) against T; the formulas of numpy_mlp."""
    if name == "mse":
        return np.asarray(((Y - T) ** 2).mean(axis=(1, 2)))
    if name == "sse":
        return np.asarray(((Y - T) ** 2).sum(axis=(1, 2)))
    if name == "cross-entropy":
        if T.ndim == 1:
            P = np.zeros(Y.shape[1:])
            P[np.arange(Y.shape[1]), T.astype(np.int64)] = 1.0
        else:
            P = T
        shifted = Y - Y.max(axis=2, keepdims=True)
        log_softmax = shifted - np.log(np.exp(shifted).sum(axis=2, keepdims=True))
        return np.asarray(-(P * log_softmax).sum(axis=(1, 2)) / Y.shape[1])
    if name == "bce":
        terms = np.maximum(Y, 0.0) - Y * T + np.log1p(np.exp(-np.abs(Y)))
        return np.asarray(terms.mean(axis=(1, 2)))
    raise ValueError(f"unknown loss {name!r}")


def row_losses(Y: np.ndarray, T: np.ndarray, name: str, total_rows: int) -> np.ndarray:
    """Each row's share of the loss (rows of Y against rows of T); they sum to the loss."""
    if name == "mse":
        return np.asarray(((Y - T) ** 2).sum(axis=1) / (total_rows * Y.shape[1]))
    if name == "sse":
        return np.asarray(((Y - T) ** 2).sum(axis=1))
    if name == "cross-entropy":
        if T.ndim == 1:
            P = np.zeros(Y.shape)
            P[np.arange(Y.shape[0]), T.astype(np.int64)] = 1.0
        else:
            P = T
        shifted = Y - Y.max(axis=1, keepdims=True)
        log_softmax = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        return np.asarray(-(P * log_softmax).sum(axis=1) / total_rows)
    if name == "bce":
        terms = np.maximum(Y, 0.0) - Y * T + np.log1p(np.exp(-np.abs(Y)))
        return np.asarray(terms.sum(axis=1) / (total_rows * Y.shape[1]))
    raise ValueError(f"unknown loss {name!r}")


class EntryLosses:
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
        self.Z, self.A = numpy_mlp.forward(
            self.X, self.weights, self.biases, problem.activation, problem.negative_slope
        )
        self.kinky = problem.activation in numpy_mlp.PIECEWISE_ACTIVATIONS
        self.patterns = [z > 0 for z in self.Z[:-1]]
        self.N = self.X.shape[0]
        self.rows0 = row_losses(self.Z[-1], self.T, problem.loss, self.N)
        self.f0 = float(batched_loss(self.Z[-1][None], self.T, problem.loss)[0])
        self.progress = progress
        self.done = 0
        self.total = 0
        self.gemm_flops = 0  # matrix-product work done, for benchmarks
        self._buffers: dict[tuple[str, int], np.ndarray] = {}

    def _act(self, z: np.ndarray) -> np.ndarray:
        return numpy_mlp.activate(z, self.problem.activation, self.problem.negative_slope)

    def _act_inplace(self, z: np.ndarray) -> np.ndarray:
        """act(z), overwriting z where the activation allows it."""
        if self.problem.activation == "relu":
            return np.maximum(z, 0.0, out=z)
        if self.problem.activation == "identity":
            return z
        return self._act(z)

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
        out_losses = np.empty(flat.size)
        out_crossed = np.zeros(flat.size, dtype=bool)
        for start in range(0, flat.size, chunk):
            stop = min(start + chunk, flat.size)
            losses, crossed = self._chunk(name, layer, flat[start:stop], deltas[start:stop])
            out_losses[start:stop] = losses
            out_crossed[start:stop] = crossed
            self.done += stop - start
            if self.progress is not None:
                self.progress(self.done, max(self.total, self.done))
        return out_losses, out_crossed

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
                self.gemm_flops += 2 * a.shape[0] * a.shape[1] * self.weights[k + 1].shape[1]
                y = np.matmul(a, self.weights[k + 1], out=self._buffer("z", k + 1, r.size))
                y += self.biases[k + 1]
        change = row_losses(y, self.T[n], self.problem.loss, self.N) - self.rows0[n]
        return np.bincount(r, weights=change, minlength=c), crossed


@dataclass(frozen=True, eq=False)
class LineEstimates:
    """Derivatives along m lines: estimate, estimated absolute error, kink flags."""

    estimate: np.ndarray
    error: np.ndarray
    kink: np.ndarray  # the first step crossed an activation kink
    unresolved: np.ndarray  # a kink no smaller step or one-sided difference avoided


def rounding_error(f0: float, step: np.ndarray) -> np.ndarray:
    """Rounding error of a difference quotient (f(+h) - f(-h)) / 2h of float64 losses near f0."""
    return np.asarray(2.0 * ROUNDING_ULPS * EPS64 * max(abs(f0), 1e-300) / (2.0 * step))


def _central(
    lp: np.ndarray,
    lm: np.ndarray,
    lp2: np.ndarray,
    lm2: np.ndarray,
    h: np.ndarray,
    f0: float,
    order: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Central estimate at step h and its error, from evaluations at +-h and +-h/2."""
    d1 = (lp - lm) / (2.0 * h)
    d2 = (lp2 - lm2) / h
    rb = rounding_error(f0, h)
    if order == 2:
        # D(h) - D(h/2) = 3/4 of D(h)'s truncation error (h^2 term) plus rounding noise.
        return d1, 4.0 / 3.0 * np.abs(d1 - d2) + rb
    # Richardson: (4 D(h/2) - D(h)) / 3 cancels the h^2 term. Its error is bounded by
    # that of D(h/2), |R - D(h/2)|; its rounding is (4 * 2rb + rb) / 3 = 3rb.
    richardson = (4.0 * d2 - d1) / 3.0
    return richardson, np.abs(richardson - d2) + 3.0 * rb


def _one_sided(
    l1: np.ndarray, l2: np.ndarray, h: np.ndarray, f0: float, sign: float
) -> tuple[np.ndarray, np.ndarray]:
    """One-sided Richardson estimate from f(sign*h) - f0 and f(sign*h/2) - f0, and its error."""
    d1 = sign * l1 / h
    d2 = sign * l2 / (h / 2.0)
    richardson = 2.0 * d2 - d1
    # |D(h) - D(h/2)| is D(h/2)'s O(h) error, a bound for the O(h^2) Richardson value.
    return richardson, np.abs(d1 - d2) + 6.0 * rounding_error(f0, h)


def estimate_lines(
    evaluate: Evaluator, count: int, steps: np.ndarray, f0: float, order: int
) -> LineEstimates:
    """Kink-aware derivative estimates along `count` lines with per-line steps."""
    lines = np.arange(count)
    losses, crossed = evaluate(
        np.tile(lines, 4), np.concatenate([steps, -steps, steps / 2, -steps / 2])
    )
    lp, lm, lp2, lm2 = losses.reshape(4, count)
    cp, cm, cp2, cm2 = crossed.reshape(4, count)
    estimate, error = _central(lp, lm, lp2, lm2, steps, f0, order)
    kink = cp | cm | cp2 | cm2
    # Kink lines: among kink-free alternatives (central differences at smaller steps,
    # one-sided differences on a side that crosses nothing), keep the one with the
    # smallest error estimate. Kinks are rare, so trying them all is cheap.
    idx = np.flatnonzero(kink)
    best = np.full(idx.size, np.inf)
    for factor in (1.0, *KINK_STEP_FACTORS):
        if not idx.size:
            break
        h = steps[idx] * factor
        if factor == 1.0:
            lp_, lm_, lp2_, lm2_ = lp[idx], lm[idx], lp2[idx], lm2[idx]
            cp_, cm_, cp2_, cm2_ = cp[idx], cm[idx], cp2[idx], cm2[idx]
        else:
            ls, cs = evaluate(np.tile(idx, 4), np.concatenate([h, -h, h / 2, -h / 2]))
            lp_, lm_, lp2_, lm2_ = ls.reshape(4, idx.size)
            cp_, cm_, cp2_, cm2_ = cs.reshape(4, idx.size)
        candidates = [(~(cp_ | cm_ | cp2_ | cm2_), *_central(lp_, lm_, lp2_, lm2_, h, f0, order))]
        # The derivative at theta is that of the smooth piece theta lies on, which a
        # one-sided difference on a side that crosses no kink sees.
        candidates.append((~(cp_ | cp2_), *_one_sided(lp_, lp2_, h, f0, 1.0)))
        candidates.append((~(cm_ | cm2_), *_one_sided(lm_, lm2_, h, f0, -1.0)))
        for clean, est, err in candidates:
            better = clean & (err < best)
            best[better] = err[better]
            estimate[idx[better]], error[idx[better]] = est[better], err[better]
    pending = np.zeros(count, dtype=bool)
    pending[idx] = ~np.isfinite(best)
    return LineEstimates(estimate, error, kink, pending)
