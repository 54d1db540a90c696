"""How far a correct backend computing in a lower precision may stray from the float64 answer.

Rounding in float32 is not a fixed fraction of each gradient entry: where the
residual Y - T is small against Y (a nearly converged network), float32 loses
digits to cancellation and every gradient entry inherits a relative error of
eps32 * |Y| / |Y - T|. Rather than guess, measure it: run the hand-written NumPy
backprop on this very problem in the problem's dtype and in float64, and take
the largest difference per parameter as the noise floor a correct backend may show.

A ReLU unit whose pre-activation lies within the low precision's rounding of zero
may land on the other side of the kink than in float64. That is not noise spread
over a tensor but a different derivative at a few entries: it is kept apart, per
entry (`kink_flips`), so that it does not widen the allowance of the whole tensor
(it used to: a 1e-9 pre-activation let a 1% error anywhere in W0 pass in float32).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from . import numpy_mlp
from .problem import Problem


@dataclass(frozen=True)
class RoundingNoise:
    """Largest |low-precision - float64| difference per parameter, and of the loss."""

    params: dict[str, float]
    loss: float
    # Per entry, |gradient with low precision's activation pattern - with float64's|, for
    # parameters where a ReLU unit changes side of its kink in low precision (else absent).
    kink_flips: dict[str, np.ndarray] = field(default_factory=dict)


def rounding_noise(problem: Problem) -> RoundingNoise:
    """The measured rounding noise of `problem.dtype` (zero for float64)."""
    if problem.dtype == "float64":
        return RoundingNoise({name: 0.0 for name in problem.parameter_names}, 0.0)
    from .backends.numpy_backprop import NumpyBackprop

    low = NumpyBackprop().gradients(problem)
    exact = NumpyBackprop().gradients(problem.with_dtype("float64"))
    low_named, exact_named = low.by_name(), exact.by_name()
    flips: dict[str, np.ndarray] = {}
    pinned = _pinned_gradients(problem)
    if pinned is not None:
        # Noise is measured with float64's activation pattern; the side changes go per entry.
        flips = {n: np.abs(low_named[n].astype(np.float64) - pinned[n]) for n in pinned}
        low_named = pinned
    params = {
        name: float(np.abs(low_named[name].astype(np.float64) - exact_named[name]).max())
        for name in exact_named
    }
    loss = abs(float(low.loss or 0.0) - float(exact.loss or 0.0))
    return RoundingNoise(params, loss, flips)


def _pinned_gradients(problem: Problem) -> dict[str, np.ndarray] | None:
    """Backprop in `problem.dtype` with float64's ReLU pattern; None when the patterns agree."""
    if problem.activation not in numpy_mlp.PIECEWISE_ACTIVATIONS:
        return None
    dtype = np.dtype(problem.dtype)
    slope = problem.negative_slope if problem.activation == "leaky-relu" else 0.0
    X = problem.X.astype(dtype)
    weights = [w.astype(dtype) for w in problem.weights]
    biases = [b.astype(dtype) for b in problem.biases]
    patterns = _patterns(problem, problem.X, problem.weights, problem.biases)
    low_patterns = _patterns(problem, X, weights, biases)
    if all(np.array_equal(a, b) for a, b in zip(patterns, low_patterns)):
        return None
    # The activation's slope on each unit's float64 side: act(z) = z * slope, act'(z) = slope.
    slopes = [np.where(p, 1.0, slope).astype(dtype) for p in patterns]
    inputs = [X]
    for i, (w, b) in enumerate(zip(weights, biases)):
        z = inputs[-1] @ w + b
        inputs.append(z * slopes[i] if i < len(weights) - 1 else z)
    T = problem.T if problem.T.dtype.kind in "iu" else problem.T.astype(dtype)
    delta = numpy_mlp.loss_gradient(inputs[-1], T, problem.loss).astype(dtype)
    grads: dict[str, np.ndarray] = {}
    for i in reversed(range(len(weights))):
        grads[f"W{i}"] = (inputs[i].T @ delta).astype(np.float64)
        grads[f"B{i}"] = delta.sum(axis=0).astype(np.float64)
        if i > 0:
            delta = (delta @ weights[i].T) * slopes[i - 1]
    return grads


def _patterns(
    problem: Problem, X: np.ndarray, weights: Sequence[np.ndarray], biases: Sequence[np.ndarray]
) -> list[np.ndarray]:
    """Which hidden units are on the positive side of the kink (z > 0), per layer."""
    Z, _ = numpy_mlp.forward(X, weights, biases, problem.activation, problem.negative_slope)
    return [z > 0 for z in Z[:-1]]
