"""How far a correct backend may stray from the exact answer through rounding alone.

Rounding is not a fixed fraction of each gradient entry: where the residual Y - T is
small against Y (a nearly converged network), digits cancel and every gradient entry
inherits a relative error of eps * |Y| / |Y - T|. Rather than guess, measure it on this
very problem. In float32: run the hand-written NumPy backprop in float32 and in float64
and take the largest difference per parameter. In float64 there is nothing more precise
to compare with everywhere, so measure how far the float64 backprop moves when its
inputs move by a few ulps (as another summation order would move them): the spread is
the noise two correct float64 implementations may show against each other.

A ReLU unit whose pre-activation lies within rounding of zero (in float32, or in
float64 when it cancels to ~0, or is exactly 0) has no one right derivative: a
correct backend may land on either side of the kink (another summation order, or
the convention relu'(0) = 1). That is not noise spread over a tensor but a
different derivative at a few entries: it is kept apart, per entry (`kink_flips`),
so that it does not widen the allowance of the whole tensor (there, a 1e-9
pre-activation would let a 1% error anywhere in W0 pass in float32).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from .. import nn
from ..problem import AnyProblem, LayeredProblem, Problem
from .layered_precision import layered_rounding_noise
from .noise import KINK_MARGIN, PERTURBATION_ULPS, PERTURBATIONS, RoundingNoise

__all__ = ["RoundingNoise", "rounding_noise"]


def rounding_noise(problem: AnyProblem) -> RoundingNoise:
    """The measured rounding noise of `problem.dtype` (zero for float64), and kink flips."""
    if isinstance(problem, LayeredProblem):
        return layered_rounding_noise(problem)
    piecewise = nn.activation(problem.activation).has_kink
    patterns = _patterns(problem, problem.X, problem.weights, problem.biases)
    flips: dict[str, np.ndarray] = {}
    jumps: dict[str, np.ndarray] = {}
    base: dict[str, np.ndarray] = {}
    units = 0
    if piecewise:
        at_kink = _units_at_kink(problem)
        if problem.dtype != "float64":  # and whatever this run of the dtype did flip
            X, _, weights, biases = _arrays(problem, problem.dtype)
            low_patterns = _patterns(problem, X, weights, biases)
            at_kink = [a | (p != q) for a, p, q in zip(at_kink, patterns, low_patterns)]
        if any(a.any() for a in at_kink):
            toggled = [p ^ a for p, a in zip(patterns, at_kink)]
            base = _backprop(problem, "float64", patterns)
            other = _backprop(problem, "float64", toggled)
            jumps = {n: other[n] - base[n] for n in base}
            flips = {n: np.abs(j) for n, j in jumps.items()}
            units = int(sum(int(a.sum()) for a in at_kink))
    spread, spread_loss = _perturbation_noise(problem, patterns if piecewise else None)
    bounds = _gradient_bounds(problem)
    # The loss of a correct backend may differ by its own rounding: at least the bound (in
    # float64 too: nearly converged, a loss summed from terms far larger than itself, as
    # bce's and cross-entropy's, rounds far beyond what moved inputs show in this run).
    eps = float(np.finfo(np.dtype(problem.dtype)).eps)
    bound = nn.loss_rounding(
        problem.X,
        problem.T,
        problem.weights,
        problem.biases,
        problem.activation,
        problem.loss,
        problem.negative_slope,
        eps,
    )
    if problem.dtype == "float64":
        return RoundingNoise(spread, max(spread_loss, bound), flips, jumps, units, bounds, base)
    if piecewise:
        # Both runs use float64's activation pattern: side changes are the per-entry flips
        # above, not noise of the whole tensor.
        low = _backprop(problem, problem.dtype, patterns)
        exact = _backprop(problem, "float64", patterns)
    else:
        low = _exact_backprop(problem, problem.dtype)
        exact = _exact_backprop(problem, "float64")
    # One run's rounding can be small by chance (a few terms, lucky signs): at least the
    # spread at inputs moved by a few of the dtype's ulps, as another implementation's would.
    params = {
        name: max(float(np.abs(low[name].astype(np.float64) - exact[name]).max()), spread[name])
        for name in exact
    }
    X, T, weights, biases = _arrays(problem, problem.dtype)
    low_loss = nn.network_loss(
        X, T, weights, biases, problem.activation, problem.loss, problem.negative_slope
    )
    loss = max(abs(low_loss - problem.float64_loss()), bound)
    return RoundingNoise(params, loss, flips, jumps, units, bounds, base)


def _gradient_bounds(problem: Problem) -> dict[str, float]:
    """nn.gradient_rounding for the problem's dtype, by parameter name."""
    dW, dB = nn.gradient_rounding(
        problem.X,
        problem.T,
        problem.weights,
        problem.biases,
        problem.activation,
        problem.loss,
        problem.negative_slope,
        float(np.finfo(np.dtype(problem.dtype)).eps),
    )
    return {
        **{f"W{i}": b for i, b in enumerate(dW)},
        **{f"B{i}": b for i, b in enumerate(dB)},
    }


def _perturbation_noise(
    problem: Problem, patterns: list[np.ndarray] | None
) -> tuple[dict[str, float], float]:
    """How far the float64 gradient and loss move when every input moves by a few ulps of
    the problem's dtype.

    With a piecewise activation, every run keeps the unperturbed activation pattern: units
    at their kink are the per-entry flips, not noise of the whole tensor.
    """
    rng = np.random.default_rng(0)
    exact = (
        _backprop(problem, "float64", patterns)
        if patterns is not None
        else _exact_backprop(problem, "float64")
    )
    f0 = problem.float64_loss()
    params = {name: 0.0 for name in exact}
    loss = 0.0
    for _ in range(PERTURBATIONS):
        moved = _perturbed(problem, rng, float(np.finfo(np.dtype(problem.dtype)).eps))
        grads = (
            _backprop(moved, "float64", patterns)
            if patterns is not None
            else _exact_backprop(moved, "float64")
        )
        for name, g in grads.items():
            params[name] = max(params[name], float(np.abs(g - exact[name]).max()))
        loss = max(loss, abs(moved.float64_loss() - f0))
    return params, loss


def _perturbed(problem: Problem, rng: np.random.Generator, eps: float) -> Problem:
    """The problem with X, the weights and the biases moved by up to a few ulps each."""
    u = PERTURBATION_ULPS * eps / 2

    def move(a: np.ndarray) -> np.ndarray:
        return np.asarray(a * (1.0 + u * rng.uniform(-1.0, 1.0, size=a.shape)))

    return replace(
        problem,
        dtype="float64",
        X=move(problem.X),
        weights=tuple(move(w) for w in problem.weights),
        biases=tuple(move(b) for b in problem.biases),
    )


def _arrays(
    problem: Problem, dtype: str
) -> tuple[np.ndarray, np.ndarray, list[np.ndarray], list[np.ndarray]]:
    """X, T, weights and biases of `problem` in `dtype` (integer labels stay integers)."""
    np_dtype = np.dtype(dtype)
    T = problem.T if problem.T.dtype.kind in "iu" else problem.T.astype(np_dtype)
    weights = [w.astype(np_dtype) for w in problem.weights]
    biases = [b.astype(np_dtype) for b in problem.biases]
    return problem.X.astype(np_dtype), T, weights, biases


def _named(dW: Sequence[np.ndarray], dB: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
    named = {f"W{i}": g.astype(np.float64) for i, g in enumerate(dW)}
    named.update({f"B{i}": g.astype(np.float64) for i, g in enumerate(dB)})
    return named


def _exact_backprop(problem: Problem, dtype: str) -> dict[str, np.ndarray]:
    """The NumPy backprop's gradients in `dtype`, as float64, by name."""
    X, T, weights, biases = _arrays(problem, dtype)
    _, dW, dB = nn.gradients(
        X, T, weights, biases, problem.activation, problem.loss, problem.negative_slope
    )
    return _named(dW, dB)


def _backprop(problem: Problem, dtype: str, patterns: list[np.ndarray]) -> dict[str, np.ndarray]:
    """Backprop in `dtype` with each ReLU unit on the side `patterns` says (True: z > 0)."""
    np_dtype = np.dtype(dtype)
    below = nn.activation(problem.activation).slope_below_kink
    slope = below(problem.negative_slope) if below is not None else 1.0
    X, T, weights, biases = _arrays(problem, dtype)
    # The activation's slope on each unit's side: act(z) = z * slope, act'(z) = slope.
    slopes = [np.where(p, 1.0, slope).astype(np_dtype) for p in patterns]
    inputs = [X]
    for i, (w, b) in enumerate(zip(weights, biases)):
        z = inputs[-1] @ w + b
        inputs.append(z * slopes[i] if i < len(weights) - 1 else z)
    dW, dB = nn.backward(inputs, inputs[-1], T, weights, problem.loss, lambda i: slopes[i - 1])
    return _named(dW, dB)


def _units_at_kink(problem: Problem) -> list[np.ndarray]:
    """Hidden units whose pre-activation z is within the dtype's rounding of 0.

    Summed in another order, a dot product of n terms may differ by up to about
    n * u * (|A| @ |W| + |b|) (u: unit roundoff); exactly-zero pre-activations count too.
    The inputs of a layer carry the earlier layers' rounding as well: in float64 a
    relative (n + 2) u per layer so far, twice over (a unit 2.5e-16 of its terms from zero
    in the third layer took either side in numpy and torch); in low precision measured,
    per layer, as the largest |z_low - z64| relative to that magnitude, with a margin of
    KINK_MARGIN (a worst-case bound carried through |W| grows with depth and flagged
    units 1e-2 from zero in a 10-layer float32 network).
    """
    dtype = np.dtype(problem.dtype)
    act = nn.activation(problem.activation)
    u = float(np.finfo(dtype).eps) / 2
    A = np.asarray(problem.X, dtype=np.float64)
    A_low = A.astype(dtype)
    out = []
    carried = 0  # ulps of rounding the layer's terms carry, from this layer and those below
    for w, b in zip(problem.weights[:-1], problem.biases[:-1]):
        z = A @ w + b
        size = np.abs(A) @ np.abs(w) + np.abs(b)
        carried += w.shape[0] + 2
        bound = 2 * carried * u * size
        if dtype != np.float64:
            z_low = A_low @ w.astype(dtype) + b.astype(dtype)
            measured = np.abs(z_low - z) / np.where(size > 0, size, 1.0)
            bound = bound + KINK_MARGIN * float(measured.max()) * size
            A_low = act(z_low, problem.negative_slope)
        out.append(np.abs(z) <= bound)
        A = act(z, problem.negative_slope)
    return out


def _patterns(
    problem: Problem, X: np.ndarray, weights: Sequence[np.ndarray], biases: Sequence[np.ndarray]
) -> list[np.ndarray]:
    """Which hidden units are on the positive side of the kink (z > 0), per layer."""
    Z, _ = nn.forward(X, weights, biases, problem.activation, problem.negative_slope)
    return [z > 0 for z in Z[:-1]]
