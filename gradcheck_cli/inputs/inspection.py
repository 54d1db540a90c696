"""What `gradcheck inspect` shows: the loaded problem described, without computing gradients."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import nn
from ..problem import Problem


@dataclass(frozen=True)
class ArrayStats:
    """Shape and summary statistics of one array (X, T, W0.., B0..)."""

    name: str
    shape: tuple[int, ...]
    minimum: float
    maximum: float
    mean: float
    std: float

    def to_dict(self) -> dict[str, object]:
        """JSON form."""
        return {
            "name": self.name,
            "shape": list(self.shape),
            "min": self.minimum,
            "max": self.maximum,
            "mean": self.mean,
            "std": self.std,
        }


@dataclass(frozen=True)
class HiddenLayerStats:
    """How a hidden layer's units behave on the data: dead units and closeness to kinks."""

    name: str
    units: int
    dead_units: int  # never active on any sample (piecewise activations only)
    min_abs_preactivation: float  # distance of the nearest pre-activation to the kink at 0

    def to_dict(self) -> dict[str, object]:
        """JSON form."""
        return {
            "name": self.name,
            "units": self.units,
            "dead_units": self.dead_units,
            "min_abs_preactivation": self.min_abs_preactivation,
        }


@dataclass(frozen=True)
class Inspection:
    """The loaded problem, described: architecture, arrays, loss at the given parameters."""

    source: str
    summary: dict[str, object]
    loss_value: float
    arrays: tuple[ArrayStats, ...]
    hidden: tuple[HiddenLayerStats, ...]

    def to_dict(self) -> dict[str, object]:
        """JSON form (`gradcheck inspect --json`)."""
        return {
            "source": self.source,
            "problem": self.summary,
            "loss_value": self.loss_value,
            "arrays": [a.to_dict() for a in self.arrays],
            "hidden_layers": [h.to_dict() for h in self.hidden],
        }


def array_stats(name: str, array: np.ndarray) -> ArrayStats:
    """Shape, min, max, mean and std of `array`."""
    values = np.asarray(array, dtype=np.float64)
    return ArrayStats(
        name=name,
        shape=tuple(int(n) for n in values.shape),
        minimum=float(values.min()),
        maximum=float(values.max()),
        mean=float(values.mean()),
        std=float(values.std()),
    )


def inspect_problem(problem: Problem) -> Inspection:
    """Describe `problem`: one forward pass in float64 for the loss and hidden-unit statistics."""
    pre_activations, _ = nn.forward(
        problem.X, problem.weights, problem.biases, problem.activation, problem.negative_slope
    )
    has_kink = nn.activation(problem.activation).has_kink
    hidden = []
    for i, z in enumerate(pre_activations[:-1]):
        dead = int((z <= 0).all(axis=0).sum()) if has_kink else 0
        hidden.append(
            HiddenLayerStats(
                name=f"layer {i + 1}",
                units=int(z.shape[1]),
                dead_units=dead,
                min_abs_preactivation=float(np.abs(z).min()),
            )
        )
    named = [("X", problem.X), ("T", problem.T)]
    named += list(zip(problem.parameter_names, problem.parameters))
    return Inspection(
        source=problem.source,
        summary=problem.summary(),
        loss_value=nn.loss(problem.loss).value(pre_activations[-1], problem.T),
        arrays=tuple(array_stats(name, array) for name, array in named),
        hidden=tuple(hidden),
    )
