"""Rounding noise of a layered problem, measured on it as for the MLP (precision.py).

- float64: the spread of the NumPy backprop when every input (X and the parameters) moves
  by a few ulps, with every kink pattern (ReLU sides, max-pool argmaxes) held at the
  unperturbed one; float32: besides, the float32 backprop against the float64 one (same
  patterns).
- `bounds`: the rounding of dLoss/dY, and of Y (OUTPUT_FACTOR x its measured error, per
  element, so that one run's errors cancelling over the batch cannot shrink it), carried
  back through the sizes of every layer's terms (nn.network.gradient_rounding).
- Kink flips, approximated: a ReLU/LeakyReLU/ELU input within rounding of 0 (a bound from
  the size of its terms, and in float32 the measured float32 error), a max-pool window whose
  two largest values are within rounding of each other, and in float32 whatever the float32
  run put on the other side. All of them are toggled at once (ReLU side; the window's
  runner-up, or float32's pick) and the float64 gradient's change is the per-entry jump, as
  for the MLP, and each one alone (up to MAX_SINGLE_UNITS): the allowance per entry is the
  sum of their jumps, which bounds any subset a backend may flip. Windows tied at exactly 0
  (all inputs clipped by a ReLU) are left out: their routing cannot change a gradient.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..nn import network
from ..nn.layer_spec import Cache
from ..nn.layers import PIECEWISE, parameter_shapes
from ..problem import LayeredProblem
from .noise import KINK_MARGIN, PERTURBATION_ULPS, PERTURBATIONS, RoundingNoise

Patterns = list[np.ndarray | None]
# Units at their kink whose jumps are measured one by one (one backprop each).
MAX_SINGLE_UNITS = 16
# The output error another implementation may show, in units of the largest measured one
# (this run's float32 against float64, and the spread at inputs moved by a few ulps).
OUTPUT_FACTOR = 4.0


def _arrays(
    problem: LayeredProblem, dtype: str
) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    np_dtype = np.dtype(dtype)
    T = problem.T if problem.T.dtype.kind in "iu" else problem.T.astype(np_dtype)
    params = {n: p.astype(np_dtype) for n, p in problem.params.items()}
    return problem.X.astype(np_dtype), T, params


def _backprop(
    problem: LayeredProblem, dtype: str, patterns: Patterns | None
) -> tuple[float, dict[str, np.ndarray]]:
    X, T, params = _arrays(problem, dtype)
    loss, grads = network.gradients(problem.layers, params, X, T, problem.loss, patterns)
    return loss, {n: g.astype(np.float64) for n, g in grads.items()}


def _output(problem: LayeredProblem, dtype: str, patterns: Patterns) -> np.ndarray:
    """The network's output Y in `dtype` (as float64), with the kink patterns imposed."""
    X, _, params = _arrays(problem, dtype)
    outputs, _ = network.forward(problem.layers, params, X, patterns=patterns)
    return np.asarray(outputs[-1], dtype=np.float64)


def _terms(problem: LayeredProblem, index: int) -> int:
    """How many terms the sums behind layer `index`'s input add up (the fan-in of the nearest
    Linear or Conv2d before it): how far another summation order may move them."""
    for layer in reversed(problem.layers[:index]):
        weight = parameter_shapes(layer).get("weight", ())
        if layer.kind in ("Linear", "Conv2d"):
            return int(np.prod(weight[1:]))
    return 1


def _kinks(
    problem: LayeredProblem, caches: list[Cache], sizes: list[np.ndarray], low: list[Cache] | None
) -> tuple[Patterns, int]:
    """The patterns with every unit at its kink toggled, and how many were."""
    u = float(np.finfo(np.dtype(problem.dtype)).eps) / 2
    toggled: Patterns = []
    count = 0
    for i, (layer, cache) in enumerate(zip(problem.layers, caches)):
        pattern = cache.get("pattern")
        if pattern is None:
            toggled.append(None)
            continue
        other = low[i]["pattern"] if low is not None else pattern
        if layer.kind in PIECEWISE:
            x, size = cache["x"], sizes[i]
            bound = (_terms(problem, i) + 2) * u * size
            if low is not None:
                measured = np.abs(low[i]["x"].astype(np.float64) - x) / np.where(
                    size > 0, size, 1.0
                )
                # Per channel: a normalisation makes the relative error channel-specific
                # (a channel of small variance loses digits the others keep).
                axes = tuple(a for a in range(measured.ndim) if a != 1)
                bound = bound + KINK_MARGIN * measured.max(axis=axes, keepdims=True) * size
            near = (np.abs(x) <= bound) | (other != pattern)
            toggled.append(pattern ^ near)
        elif cache["values"].shape[-1] < 2:  # a 1x1 max-pool picks from one value
            toggled.append(pattern)
            continue
        else:  # max-pool: the runner-up (or float32's pick) where the top two are within rounding
            values = cache["values"]
            order = np.argsort(values, axis=-1, kind="stable")
            best = np.take_along_axis(values, order[..., -1:], axis=-1)[..., 0]
            second = np.take_along_axis(values, order[..., -2:-1], axis=-1)[..., 0]
            width = float(np.max(sizes[i])) * (_terms(problem, i) + 2) * u * 2
            near = (best - second <= width) & ~((best == 0) & (second == 0))
            runner_up = np.where(order[..., -1] == pattern, order[..., -2], order[..., -1])
            changed = other != pattern
            near |= changed
            toggled.append(np.where(changed, other, np.where(near, runner_up, pattern)))
        count += int(near.sum())
    return toggled, count


def _flips(
    problem: LayeredProblem,
    patterns: Patterns,
    toggled: Patterns,
    base: dict[str, np.ndarray],
    jumps: dict[str, np.ndarray],
    units: int,
) -> dict[str, np.ndarray]:
    """Per entry, how far any subset of the units at their kink may move the gradient by
    taking the other side: the sum of each unit's own jump (toggling them all at once can
    cancel jumps that a backend taking only some of them shows). Above MAX_SINGLE_UNITS
    units, the jump of toggling all (the MLP's measure)."""
    if units == 1 or units > MAX_SINGLE_UNITS:
        return {n: np.abs(j) for n, j in jumps.items()}
    total = {n: np.zeros_like(b) for n, b in base.items()}
    for i, (was, now) in enumerate(zip(patterns, toggled)):
        if was is None or now is None:
            continue
        for flat in np.flatnonzero(np.asarray(was != now).reshape(-1)):
            single = list(patterns)
            one = np.array(was, copy=True)
            one.reshape(-1)[flat] = np.asarray(now).reshape(-1)[flat]
            single[i] = one
            _, moved = _backprop(problem, "float64", single)
            for n in total:
                total[n] += np.abs(moved[n] - base[n])
    return total


def _perturbed(problem: LayeredProblem, rng: np.random.Generator, eps: float) -> LayeredProblem:
    """The problem with X and every parameter moved by up to a few ulps each."""
    u = PERTURBATION_ULPS * eps / 2

    def move(a: np.ndarray) -> np.ndarray:
        return np.asarray(a * (1.0 + u * rng.uniform(-1.0, 1.0, size=a.shape)))

    moved = {n: move(p) for n, p in problem.params.items()}
    return replace(problem, dtype="float64", X=move(problem.X), params=moved)


def layered_rounding_noise(problem: LayeredProblem) -> RoundingNoise:
    """The measured rounding noise of `problem.dtype` for a layered problem, and kink flips."""
    X, T, params = _arrays(problem, "float64")
    _, caches = network.forward(problem.layers, params, X)
    patterns = network.kink_patterns(caches)
    eps = float(np.finfo(np.dtype(problem.dtype)).eps)
    low_caches = None
    if problem.dtype != "float64":
        Xl, _, params_low = _arrays(problem, problem.dtype)
        _, low_caches = network.forward(problem.layers, params_low, Xl)
    flips: dict[str, np.ndarray] = {}
    jumps: dict[str, np.ndarray] = {}
    base: dict[str, np.ndarray] = {}
    units = 0
    if any(p is not None for p in patterns):
        sizes = network.magnitudes(problem.layers, params, X, caches)
        toggled, units = _kinks(problem, caches, sizes, low_caches)
        if units:
            _, base = _backprop(problem, "float64", patterns)
            _, other = _backprop(problem, "float64", toggled)
            jumps = {n: other[n] - base[n] for n in base}
            flips = _flips(problem, patterns, toggled, base, jumps, units)
    loss64, exact = _backprop(problem, "float64", patterns)
    Y = _output(problem, "float64", patterns)
    rng = np.random.default_rng(0)
    spread = {n: 0.0 for n in exact}
    spread_loss = 0.0
    output_error = np.zeros_like(Y)
    for _ in range(PERTURBATIONS):
        moved_problem = _perturbed(problem, rng, eps)
        moved_loss, moved = _backprop(moved_problem, "float64", patterns)
        for n, g in moved.items():
            spread[n] = max(spread[n], float(np.abs(g - exact[n]).max()))
        spread_loss = max(spread_loss, abs(moved_loss - loss64))
        output_error = np.maximum(
            output_error, np.abs(_output(moved_problem, "float64", patterns) - Y)
        )
    if problem.dtype != "float64":
        output_error = np.maximum(
            output_error, np.abs(_output(problem, problem.dtype, patterns) - Y)
        )
    # Another implementation's output error may be a few times this run's (OUTPUT_FACTOR).
    bounds = network.gradient_rounding(
        problem.layers, params, X, T, problem.loss, eps, OUTPUT_FACTOR * output_error
    )
    # The loss of a correct backend may differ by its own rounding: at least the bound (in
    # float64 too: nearly converged, a loss summed from terms far larger than itself, as
    # bce's and cross-entropy's, rounds far beyond what moved inputs show in this run).
    bound = network.loss_rounding(problem.layers, params, X, T, problem.loss, eps)
    if problem.dtype == "float64":
        loss64_noise = max(spread_loss, bound)
        return RoundingNoise(spread, loss64_noise, flips, jumps, units, bounds, base)
    low_loss, low = _backprop(problem, problem.dtype, patterns)
    noise = {n: max(float(np.abs(low[n] - exact[n]).max()), spread[n]) for n in exact}
    loss = max(abs(low_loss - problem.float64_loss()), bound)
    return RoundingNoise(noise, loss, flips, jumps, units, bounds, base)
