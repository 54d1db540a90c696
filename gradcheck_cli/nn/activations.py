"""Hidden-layer activations: each one's forward and derivative side by side, in one table.

Adding an activation is one entry here, plus one in each torch backend's table.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..errors import InputError

DEFAULT_NEGATIVE_SLOPE = 0.01


def sigmoid(z: np.ndarray) -> np.ndarray:
    """Logistic function, stable for large |z| (no overflow in exp)."""
    return 0.5 * (1.0 + np.tanh(0.5 * z))


@dataclass(frozen=True)
class Activation:
    """One activation: f(z), f'(z), and what the rest of the package needs to know of it.

    Every function takes the leaky-ReLU slope `s` last; the others ignore it.
    """

    name: str
    forward: Callable[[np.ndarray, float], np.ndarray]
    # f'(z), given z and a = f(z) (whichever is cheaper or more accurate to use).
    derivative: Callable[[np.ndarray, np.ndarray, float], np.ndarray]
    # f'(z) written from the output a alone, as students usually write it (diagnosis).
    from_output: Callable[[np.ndarray, float], np.ndarray]
    # f'(z) as a formula of the output, e.g. "1 - {x}²": the derivative that students
    # evaluate at the wrong place (diagnosis); None where writing it so is not a mistake.
    output_formula: str | None = None
    # Piecewise linear with a kink at z = 0: the slope below it (None: smooth).
    slope_below_kink: Callable[[float], float] | None = None
    # f(z) computed into z itself, where that is possible (saves memory in the FD engine).
    forward_inplace: Callable[[np.ndarray, float], np.ndarray] | None = None

    @property
    def has_kink(self) -> bool:
        """Whether finite differences across z = 0 are unreliable (relu, leaky-relu)."""
        return self.slope_below_kink is not None

    def __call__(self, z: np.ndarray, negative_slope: float = DEFAULT_NEGATIVE_SLOPE) -> np.ndarray:
        return self.forward(z, negative_slope)


def _ones(z: np.ndarray, *_: object) -> np.ndarray:
    return np.ones_like(z)


_TABLE = (
    Activation(
        "relu",
        forward=lambda z, s: np.maximum(z, 0.0),
        derivative=lambda z, a, s: (z > 0).astype(z.dtype),
        from_output=lambda a, s: (a > 0).astype(np.float64),
        slope_below_kink=lambda s: 0.0,
        forward_inplace=lambda z, s: np.maximum(z, 0.0, out=z),
    ),
    Activation(
        "tanh",
        forward=lambda z, s: np.tanh(z),
        derivative=lambda z, a, s: 1.0 - a * a,
        from_output=lambda a, s: 1.0 - a * a,
        output_formula="1 - {x}²",
    ),
    Activation(
        "sigmoid",
        forward=lambda z, s: sigmoid(z),
        derivative=lambda z, a, s: a * (1.0 - a),
        from_output=lambda a, s: a * (1.0 - a),
        output_formula="{x}(1 - {x})",
    ),
    Activation(
        "leaky-relu",
        forward=lambda z, s: np.where(z > 0, z, s * z),
        derivative=lambda z, a, s: np.where(z > 0, 1.0, s).astype(z.dtype),
        from_output=lambda a, s: np.where(a > 0, 1.0, s),
        slope_below_kink=lambda s: s,
    ),
    Activation(
        "identity",
        forward=lambda z, s: z,
        derivative=lambda z, a, s: np.ones_like(z),
        from_output=_ones,
        forward_inplace=lambda z, s: z,
    ),
)
ACTIVATIONS: dict[str, Activation] = {a.name: a for a in _TABLE}


def activation(name: str) -> Activation:
    """The activation called `name`; an unknown name is an InputError, never a fallback."""
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise InputError(
            f"unknown activation {name!r}; choose from: {', '.join(ACTIVATIONS)}",
        ) from None
