"""What `gradcheck inspect` shows: the loaded problem described, without computing gradients."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import nn
from ..nn import network
from ..nn.layers import PIECEWISE, parameter_shapes
from ..problem import AnyProblem, LayeredProblem


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
class LayerStats:
    """One layer of a layered problem: what it is, its output shape, its parameters."""

    name: str
    layer: str  # as written, e.g. Conv2d(1, 4, 3, padding=1)
    output_shape: tuple[int, ...]  # per sample
    parameters: int
    # Piecewise layers (ReLU sides): units never active on any sample; None for others.
    dead_units: int | None = None

    def to_dict(self) -> dict[str, object]:
        """JSON form."""
        return {
            "name": self.name,
            "layer": self.layer,
            "output_shape": list(self.output_shape),
            "parameters": self.parameters,
            "dead_units": self.dead_units,
        }


@dataclass(frozen=True)
class Inspection:
    """The loaded problem, described: architecture, arrays, loss at the given parameters."""

    source: str
    summary: dict[str, object]
    loss_value: float
    arrays: tuple[ArrayStats, ...]
    hidden: tuple[HiddenLayerStats, ...]
    layers: tuple[LayerStats, ...] = ()  # a layered problem's layers

    def to_dict(self) -> dict[str, object]:
        """JSON form (`gradcheck inspect --json`)."""
        out: dict[str, object] = {
            "source": self.source,
            "problem": self.summary,
            "loss_value": self.loss_value,
            "arrays": [a.to_dict() for a in self.arrays],
            "hidden_layers": [h.to_dict() for h in self.hidden],
        }
        if self.layers:
            out["layers"] = [layer.to_dict() for layer in self.layers]
        return out


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


def _inspect_layered(problem: LayeredProblem) -> Inspection:
    """Describe a layered problem: each layer's output shape and parameter count."""
    outputs, caches = network.forward(problem.layers, problem.params, problem.X)
    stats = []
    for layer, y, cache in zip(problem.layers, outputs, caches):
        shapes = parameter_shapes(layer)
        dead = None
        if layer.kind in PIECEWISE:
            dead = int((~cache["pattern"]).all(axis=0).sum())
        stats.append(
            LayerStats(
                name=layer.name,
                layer=layer.text(),
                output_shape=tuple(int(n) for n in y.shape[1:]),
                parameters=int(sum(int(np.prod(s)) for s in shapes.values())),
                dead_units=dead,
            )
        )
    named = [("X", problem.X), ("T", problem.T), *problem.params.items()]
    return Inspection(
        source=problem.source,
        summary=problem.summary(),
        loss_value=problem.float64_loss(),
        arrays=tuple(array_stats(name, array) for name, array in named),
        hidden=(),
        layers=tuple(stats),
    )


def inspect_problem(problem: AnyProblem) -> Inspection:
    """Describe `problem`: one forward pass in float64 for the loss and hidden-unit statistics."""
    if isinstance(problem, LayeredProblem):
        return _inspect_layered(problem)
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
