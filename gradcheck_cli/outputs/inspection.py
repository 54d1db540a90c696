"""`gradcheck inspect` rendered with rich: the problem line, array statistics, hidden layers."""

from __future__ import annotations

from rich import box
from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from ..inputs.inspection import Inspection


def inspection_tables(inspection: Inspection) -> Group:
    """`gradcheck inspect`: the problem line, array statistics and hidden-layer behaviour."""
    summary = inspection.summary
    if inspection.layers:
        return _layered_tables(inspection)
    layers = "-".join(str(n) for n in summary["layers"])  # type: ignore[attr-defined]
    head = Text(
        f"Problem · {layers} {summary['activation']} MLP · {summary['samples']} samples · "
        f"{summary['loss']} · {summary['dtype']} · {summary['parameters']} parameters\n"
        f"source: {inspection.source}\n"
        f"loss at these parameters: {inspection.loss_value:.7g}",
        style="bold",
    )
    arrays = Table(box=box.SIMPLE_HEAD)
    for column in ("array", "shape", "min", "max", "mean", "std"):
        arrays.add_column(column, justify="left" if column in ("array", "shape") else "right")
    for a in inspection.arrays:
        shape = "×".join(str(n) for n in a.shape)
        stats = (f"{v:.4g}" for v in (a.minimum, a.maximum, a.mean, a.std))
        arrays.add_row(a.name, shape, *stats)
    parts: list[Text | Table] = [head, arrays]
    if inspection.hidden:
        hidden = Table(box=box.SIMPLE_HEAD)
        for column in ("hidden layer", "units", "never active", "min |pre-activation|"):
            hidden.add_column(column, justify="left" if column == "hidden layer" else "right")
        for h in inspection.hidden:
            hidden.add_row(
                h.name, str(h.units), str(h.dead_units), f"{h.min_abs_preactivation:.2e}"
            )
        parts.append(hidden)
    return Group(*parts)


def _array_table(inspection: Inspection) -> Table:
    arrays = Table(box=box.SIMPLE_HEAD)
    for column in ("array", "shape", "min", "max", "mean", "std"):
        arrays.add_column(column, justify="left" if column in ("array", "shape") else "right")
    for a in inspection.arrays:
        stats = (f"{v:.4g}" for v in (a.minimum, a.maximum, a.mean, a.std))
        arrays.add_row(a.name, "×".join(str(n) for n in a.shape), *stats)
    return arrays


def _layered_tables(inspection: Inspection) -> Group:
    """A layered problem: the problem line, its layers (shapes, parameters), the arrays."""
    summary = inspection.summary
    shape = "×".join(str(n) for n in summary["input"])  # type: ignore[attr-defined]
    head = Text(
        f"Problem · {len(inspection.layers)} layers · {summary['samples']} samples of {shape} · "
        f"{summary['loss']} · {summary['dtype']} · {summary['parameters']} parameters\n"
        f"source: {inspection.source}\n"
        f"loss at these parameters: {inspection.loss_value:.7g}",
        style="bold",
    )
    layers = Table(box=box.SIMPLE_HEAD)
    for column in ("name", "layer", "output shape", "parameters", "never active"):
        layers.add_column(
            column, justify="right" if column in ("parameters", "never active") else "left"
        )
    for layer in inspection.layers:
        layers.add_row(
            layer.name,
            layer.layer,
            "×".join(str(n) for n in layer.output_shape),
            f"{layer.parameters:,}",
            "" if layer.dead_units is None else str(layer.dead_units),
        )
    return Group(head, layers, _array_table(inspection))


def print_inspection(inspection: Inspection, console: Console) -> None:
    """Print what `gradcheck inspect` shows."""
    console.print(inspection_tables(inspection))
