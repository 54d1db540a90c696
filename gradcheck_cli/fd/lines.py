"""Derivative estimates along lines, with error estimates, robust to activation kinks.

`estimate_lines` turns loss evaluations at +-h and +-h/2 along each line into a
central (or Richardson) estimate and an estimate of its error; where a step crossed a
ReLU/leaky-ReLU kink it tries smaller steps and one-sided differences and keeps the
kink-free estimate with the smallest error. The evaluations come from a callback, so
the same estimator serves single entries (fd.engine) and random directions
(fd.directional).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

EPS64 = float(np.finfo(np.float64).eps)
# When a step of h crosses a kink, differences are also tried at these fractions of h.
KINK_STEP_FACTORS = (0.1, 0.01, 0.001)

# (done, total) evaluations; called after every chunk.
Progress = Callable[[int, int], None]
# chunk(first, stop) -> (changes, crossed) of the perturbations first..stop-1.
Chunk = Callable[[int, int], tuple[np.ndarray, np.ndarray]]


class ChunkedLosses:
    """Perturbations evaluated a chunk at a time (a chunk fits in memory), counting progress."""

    def __init__(self, progress: Progress | None) -> None:
        self.progress = progress
        self.done = 0
        self.total = 0

    def in_chunks(self, count: int, chunk: int, evaluate: Chunk) -> tuple[np.ndarray, np.ndarray]:
        """The changes and kink flags of `count` perturbations, `chunk` at a time."""
        out_losses = np.empty(count)
        out_crossed = np.zeros(count, dtype=bool)
        for start in range(0, count, chunk):
            stop = min(start + chunk, count)
            out_losses[start:stop], out_crossed[start:stop] = evaluate(start, stop)
            self.done += stop - start
            if self.progress is not None:
                self.progress(self.done, max(self.total, self.done))
        return out_losses, out_crossed


# evaluate(lines, offsets) -> (changes, crossed): f(theta + offset * direction(line)) - f(theta),
# and whether that perturbation changed an activation pattern.
Evaluator = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True, eq=False)
class LineEstimates:
    """Derivatives along m lines: estimate, estimated absolute error, kink flags."""

    estimate: np.ndarray
    error: np.ndarray
    kink: np.ndarray  # the first step crossed an activation kink
    unresolved: np.ndarray  # a kink no smaller step or one-sided difference avoided


def rounding_error(noise: float, step: np.ndarray) -> np.ndarray:
    """Rounding error of a difference quotient (f(+h) - f(-h)) / 2h, where `noise` bounds the
    rounding error of one evaluated loss change f(theta + d) - f(theta)."""
    return np.asarray(2.0 * max(noise, 1e-300) / (2.0 * step))


def _central(
    lp: np.ndarray,
    lm: np.ndarray,
    lp2: np.ndarray,
    lm2: np.ndarray,
    h: np.ndarray,
    noise: float,
    order: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Central estimate at step h and its error, from evaluations at +-h and +-h/2."""
    d1 = (lp - lm) / (2.0 * h)
    d2 = (lp2 - lm2) / h
    rb = rounding_error(noise, h)
    if order == 2:
        # D(h) - D(h/2) = 3/4 of D(h)'s truncation error (h^2 term) plus rounding noise.
        return d1, 4.0 / 3.0 * np.abs(d1 - d2) + rb
    # Richardson: (4 D(h/2) - D(h)) / 3 cancels the h^2 term. Its error is bounded by
    # that of D(h/2), |R - D(h/2)|; its rounding is (4 * 2rb + rb) / 3 = 3rb.
    richardson = (4.0 * d2 - d1) / 3.0
    return richardson, np.abs(richardson - d2) + 3.0 * rb


def _one_sided(
    l1: np.ndarray, l2: np.ndarray, h: np.ndarray, noise: float, sign: float
) -> tuple[np.ndarray, np.ndarray]:
    """One-sided Richardson estimate from f(sign*h) - f(0) and f(sign*h/2) - f(0), and its error."""
    d1 = sign * l1 / h
    d2 = sign * l2 / (h / 2.0)
    richardson = 2.0 * d2 - d1
    # |D(h) - D(h/2)| is D(h/2)'s O(h) error, a bound for the O(h^2) Richardson value.
    return richardson, np.abs(d1 - d2) + 6.0 * rounding_error(noise, h)


def estimate_lines(
    evaluate: Evaluator, count: int, steps: np.ndarray, noise: float, order: int
) -> LineEstimates:
    """Kink-aware derivative estimates along `count` lines with per-line steps."""
    lines = np.arange(count)
    losses, crossed = evaluate(
        np.tile(lines, 4), np.concatenate([steps, -steps, steps / 2, -steps / 2])
    )
    lp, lm, lp2, lm2 = losses.reshape(4, count)
    cp, cm, cp2, cm2 = crossed.reshape(4, count)
    estimate, error = _central(lp, lm, lp2, lm2, steps, noise, order)
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
        candidates = [
            (~(cp_ | cm_ | cp2_ | cm2_), *_central(lp_, lm_, lp2_, lm2_, h, noise, order))
        ]
        # The derivative at theta is that of the smooth piece theta lies on, which a
        # one-sided difference on a side that crosses no kink sees.
        candidates.append((~(cp_ | cp2_), *_one_sided(lp_, lp2_, h, noise, 1.0)))
        candidates.append((~(cm_ | cm2_), *_one_sided(lm_, lm2_, h, noise, -1.0)))
        for clean, est, err in candidates:
            better = clean & (err < best)
            best[better] = err[better]
            estimate[idx[better]], error[idx[better]] = est[better], err[better]
    pending = np.zeros(count, dtype=bool)
    pending[idx] = ~np.isfinite(best)
    # A step so large or small that the losses overflow or vanish gives no estimate at all.
    pending |= ~(np.isfinite(estimate) & np.isfinite(error))
    return LineEstimates(estimate, error, kink, pending)
