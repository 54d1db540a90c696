"""How far a correct backend computing in a lower precision may stray from the float64 answer.

Rounding in float32 is not a fixed fraction of each gradient entry: where the
residual Y - T is small against Y (a nearly converged network), float32 loses
digits to cancellation and every gradient entry inherits a relative error of
eps32 * |Y| / |Y - T|. Rather than guess, measure it: run the hand-written NumPy
backprop on this very problem in the problem's dtype and in float64, and take
the largest difference per parameter as the noise floor a correct backend may show.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .problem import Problem


@dataclass(frozen=True)
class RoundingNoise:
    """Largest |low-precision - float64| difference per parameter, and of the loss."""

    params: dict[str, float]
    loss: float


def rounding_noise(problem: Problem) -> RoundingNoise:
    """The measured rounding noise of `problem.dtype` (zero for float64)."""
    if problem.dtype == "float64":
        return RoundingNoise({name: 0.0 for name in problem.parameter_names}, 0.0)
    from .backends.numpy_backprop import NumpyBackprop

    low = NumpyBackprop().gradients(problem)
    exact = NumpyBackprop().gradients(problem.with_dtype("float64"))
    low_named, exact_named = low.by_name(), exact.by_name()
    params = {
        name: float(np.abs(low_named[name].astype(np.float64) - exact_named[name]).max())
        for name in exact_named
    }
    loss = abs(float(low.loss or 0.0) - float(exact.loss or 0.0))
    return RoundingNoise(params, loss)
