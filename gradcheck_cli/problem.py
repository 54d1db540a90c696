"""Frozen data of a gradient check: the problem to differentiate (an MLP `Problem`, or a
`LayeredProblem` of any sequence of supported layers) and the Gradients found."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Union

import numpy as np

from .nn import DEFAULT_NEGATIVE_SLOPE, network_loss
from .nn import network as layered
from .nn.layer_spec import Layer

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
class LayeredProblem:
    """A network of layers (nn/layers.py), its data and its loss. Arrays are kept in
    float64; `dtype` is what backends use.

    Parameters are named by their state_dict keys (`0.weight`, `4.bias`) and kept in
    torch's layouts (Linear.weight is (out, in), Conv2d.weight (out, in, kh, kw)). Build one
    with `gradcheck_cli.inputs.make_layered_problem`, which validates everything.
    """

    X: np.ndarray
    T: np.ndarray
    layers: tuple[Layer, ...]
    params: Mapping[str, np.ndarray]
    loss: str = "mse"
    dtype: str = "float64"
    source: str = "arrays"

    @property
    def samples(self) -> int:
        """Number of samples (the first axis of X)."""
        return int(self.X.shape[0])

    @property
    def input_shape(self) -> tuple[int, ...]:
        """The shape of one sample, e.g. (1, 28, 28)."""
        return tuple(int(n) for n in self.X.shape[1:])

    @property
    def parameter_names(self) -> list[str]:
        """State_dict names in module order (weight before bias)."""
        return list(self.params)

    @property
    def parameters(self) -> list[np.ndarray]:
        """Parameter arrays in the order of `parameter_names`."""
        return list(self.params.values())

    @property
    def parameter_count(self) -> int:
        """Total number of scalar parameters."""
        return int(sum(p.size for p in self.params.values()))

    def float64_loss(self) -> float:
        """The loss at these parameters, computed in float64 by the NumPy forward pass."""
        return layered.network_loss(self.layers, self.params, self.X, self.T, self.loss)

    def architecture(self) -> str:
        """The layers as one writes them: `Conv2d(1, 4, 3, padding=1), ReLU(), ...`."""
        return ", ".join(layer.text() for layer in self.layers)

    def describe(self, separator: str = ", ") -> str:
        """One line: layers, samples, loss, dtype and parameter count."""
        shape = "×".join(str(n) for n in self.input_shape)
        parts = [
            "-".join(layer.kind for layer in self.layers) + " network",
            f"{self.samples} samples of {shape}",
            f"{self.loss} loss",
            self.dtype,
            f"{self.parameter_count} parameters",
        ]
        return separator.join(parts)

    def with_dtype(self, dtype: str) -> LayeredProblem:
        """The same problem computed in another dtype."""
        return replace(self, dtype=dtype)

    def with_params(self, params: Mapping[str, np.ndarray]) -> LayeredProblem:
        """The same problem at other parameter values (same names and shapes)."""
        return replace(self, params=dict(params))

    def zero_gradients(self) -> list[str]:
        """Parameters whose gradient is exactly zero at these parameters because a batch norm
        ahead cancels what they do (nn.network.zero_gradients), e.g. the bias right before it."""
        _, caches = layered.forward(self.layers, self.params, self.X)
        return layered.zero_gradients(self.layers, self.input_shape, caches)

    def summary(self) -> dict[str, object]:
        """The JSON `problem` object."""
        return {
            "layers": [layer.text() for layer in self.layers],
            "names": [layer.name for layer in self.layers],
            "input": list(self.input_shape),
            "samples": self.samples,
            "activation": None,
            "loss": self.loss,
            "dtype": self.dtype,
            "parameters": self.parameter_count,
        }


# Either kind of problem: the verdict, finite differences and the outputs take both.
AnyProblem = Union[Problem, LayeredProblem]  # noqa: UP007 (a runtime alias on Python 3.10)


@dataclass(frozen=True, eq=False)
class Gradients:
    """What a backend found: the loss (if it reports one) and the gradients.

    For an MLP, dLoss/dW and dLoss/dB (`dB` is None when a backend returns weight gradients
    only); for a layered problem, `named`: the gradients keyed by state_dict name.
    """

    loss: float | None
    dW: tuple[np.ndarray, ...] = ()
    dB: tuple[np.ndarray, ...] | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)
    named: Mapping[str, np.ndarray] | None = None

    def by_name(self) -> dict[str, np.ndarray]:
        """Gradients keyed by parameter name (W0.., B0.., or `0.weight`..), biases only
        when present."""
        if self.named is not None:
            return dict(self.named)
        named = {f"W{i}": g for i, g in enumerate(self.dW)}
        if self.dB is not None:
            named.update({f"B{i}": g for i, g in enumerate(self.dB)})
        return named

    def first_entry(self) -> float | None:
        """The first entry of the first parameter's gradient (the report's dE/dW0[0,0])."""
        named = self.by_name()
        if not named:
            return None
        return float(np.asarray(next(iter(named.values()))).reshape(-1)[0])
