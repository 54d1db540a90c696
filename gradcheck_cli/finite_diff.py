"""Numerical gradients of the problem's loss by central differences, always in float64."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from . import numpy_mlp
from .problem import Problem

DEFAULT_FD_STEP = 1e-6
FD_MODES = ("full", "off")
EPS64 = float(np.finfo(np.float64).eps)


@dataclass(frozen=True, eq=False)
class FiniteDifferences:
    """Finite-difference estimates per parameter; NaN where an entry was not checked."""

    mode: str
    step: float
    loss: float
    estimates: dict[str, np.ndarray]
    checked: dict[str, np.ndarray]
    kinks: dict[str, np.ndarray]
    error: dict[str, np.ndarray]

    @property
    def checked_count(self) -> int:
        """Number of parameter entries with an estimate."""
        return int(sum(int(m.sum()) for m in self.checked.values()))

    @property
    def kink_count(self) -> int:
        """Number of checked entries whose perturbation crossed an activation kink."""
        return int(sum(int(m.sum()) for m in self.kinks.values()))


def central_difference(f: Callable[[float], float], x: float, step: float) -> float:
    """(f(x + h) - f(x - h)) / 2h for a scalar function."""
    return (f(x + step) - f(x - step)) / (2.0 * step)


def finite_differences(problem: Problem, step: float = DEFAULT_FD_STEP) -> FiniteDifferences:
    """Central differences on every parameter entry, one perturbation at a time, in float64."""
    weights = [w.copy() for w in problem.weights]
    biases = [b.copy() for b in problem.biases]
    params = dict(zip(problem.parameter_names, [*weights, *biases]))

    def loss() -> float:
        return numpy_mlp.network_loss(
            problem.X,
            problem.T,
            weights,
            biases,
            problem.activation,
            problem.loss,
            problem.negative_slope,
        )

    base = loss()
    estimates, error = {}, {}
    for name, array in params.items():
        estimate = np.empty_like(array)
        flat = array.reshape(-1)  # a view: writing it perturbs the live parameter
        out = estimate.reshape(-1)
        for j in range(flat.size):
            original = flat[j]
            flat[j] = original + step
            plus = loss()
            flat[j] = original - step
            minus = loss()
            flat[j] = original
            out[j] = (plus - minus) / (2.0 * step)
        estimates[name] = estimate
        # Rounding error of the difference quotient: a few ulps of the loss over 2h.
        error[name] = np.full_like(array, 4.0 * EPS64 * max(abs(base), 1e-300) / (2.0 * step))
    return FiniteDifferences(
        mode="full",
        step=step,
        loss=base,
        estimates=estimates,
        checked={n: np.ones(a.shape, dtype=bool) for n, a in params.items()},
        kinks={n: np.zeros(a.shape, dtype=bool) for n, a in params.items()},
        error=error,
    )
