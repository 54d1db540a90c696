"""Frozen data of a gradient check: the Problem to differentiate and the Gradients found."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from .nn import DEFAULT_NEGATIVE_SLOPE, network_loss

DTYPES = ("float64", "float32")
# The `source` of the bundled exercise problem, checked when no input is given.
BUNDLED_SOURCE = "bundled exercise problem"


@dataclass(frozen=True, eq=False)
class Problem:
    """An MLP, its data and its loss. Arrays are kept in float64; `dtype` is what backends use.

    Layer i maps A[i] (N, in_i) to act(A[i] @ W[i] + B[i]); the last layer has no activation.
    Build one with `gradcheck_cli.inputs.make_problem`, which validates everything.
    """

    X: np.ndarray
    T: np.ndarray
    weights: tuple[np.ndarray, ...]
    biases: tuple[np.ndarray, ...]
    activation: str = "relu"
    loss: str = "mse"
    dtype: str = "float64"
    negative_slope: float = DEFAULT_NEGATIVE_SLOPE
    source: str = BUNDLED_SOURCE

    @property
    def bundled(self) -> bool:
        """Whether this is the bundled exercise problem, not one the user gave."""
        return self.source == BUNDLED_SOURCE

    @property
    def layers(self) -> list[int]:
        """Widths from input to output, e.g. [4, 6, 6, 6, 1]."""
        return [int(self.weights[0].shape[0])] + [int(w.shape[1]) for w in self.weights]

    @property
    def samples(self) -> int:
        """Number of rows of X."""
        return int(self.X.shape[0])

    @property
    def depth(self) -> int:
        """Number of linear layers."""
        return len(self.weights)

    @property
    def parameter_names(self) -> list[str]:
        """Names in report order: W0..Wk, then B0..Bk."""
        return [f"W{i}" for i in range(self.depth)] + [f"B{i}" for i in range(self.depth)]

    @property
    def parameters(self) -> list[np.ndarray]:
        """Parameter arrays in the order of `parameter_names`."""
        return [*self.weights, *self.biases]

    @property
    def parameter_count(self) -> int:
        """Total number of scalar parameters."""
        return int(sum(p.size for p in self.parameters))

    def float64_loss(self) -> float:
        """The loss at these parameters, computed in float64 by the NumPy forward pass."""
        return network_loss(
            self.X,
            self.T,
            self.weights,
            self.biases,
            self.activation,
            self.loss,
            self.negative_slope,
        )

    def describe(self, separator: str = ", ") -> str:
        """One line: architecture, samples, loss, dtype and parameter count."""
        arch = "-".join(str(n) for n in self.layers)
        parts = [
            f"{arch} {self.activation} MLP",
            f"{self.samples} samples",
            f"{self.loss} loss",
            self.dtype,
            f"{self.parameter_count} parameters",
        ]
        return separator.join(parts)

    def with_dtype(self, dtype: str) -> Problem:
        """The same problem computed in another dtype."""
        return replace(self, dtype=dtype)

    def summary(self) -> dict[str, object]:
        """The JSON `problem` object."""
        return {
            "source": self.source,
            "bundled": self.bundled,
            "layers": self.layers,
            "samples": self.samples,
            "activation": self.activation,
            "loss": self.loss,
            "dtype": self.dtype,
            "parameters": self.parameter_count,
        }


@dataclass(frozen=True, eq=False)
class Gradients:
    """What a backend found: the loss (if it reports one) and dLoss/dW, dLoss/dB.

    `dB` is None when a backend returns weight gradients only.
    """

    loss: float | None
    dW: tuple[np.ndarray, ...]
    dB: tuple[np.ndarray, ...] | None
    notes: tuple[str, ...] = field(default_factory=tuple)

    def by_name(self) -> dict[str, np.ndarray]:
        """Gradients keyed by parameter name (W0.., B0..), biases only when present."""
        named = {f"W{i}": g for i, g in enumerate(self.dW)}
        if self.dB is not None:
            named.update({f"B{i}": g for i, g in enumerate(self.dB)})
        return named
