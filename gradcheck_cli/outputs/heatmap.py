"""`--show PARAM`: one parameter entry by entry, reference against each backend, coloured."""

from __future__ import annotations

import numpy as np
from rich import box
from rich.console import Group
from rich.table import Table
from rich.text import Text

from ..verdict.judge import relative_errors
from ..verdict.result import Report
from .verdicts import shape_text

# Largest block of a parameter shown entry by entry by --show; beyond it the view is cut.
MAX_SHOWN_ROWS = 16
MAX_SHOWN_COLS = 12


def _entry_style(rel: float, ok: bool, rtol: float) -> str:
    """Heatmap colour of one entry: green within tolerance, yellow near it, red far off."""
    if ok:
        return "green"
    return "yellow" if rel < 100 * rtol else "bold red"


def _grid(title: str, values: np.ndarray, styles: np.ndarray, fmt: str) -> Table:
    """A 2-D block of numbers as a table whose cells carry their own colour."""
    rows, cols = values.shape
    table = Table(
        title=title, title_justify="left", box=box.SIMPLE, pad_edge=False, collapse_padding=True
    )
    table.add_column("", style="dim", justify="right")
    for j in range(cols):
        # A vector is shown as one row whose columns are its entries.
        table.add_column(f"[:, {j}]" if rows > 1 else f"[{j}]", justify="right")
    for i in range(rows):
        cells = [Text(format(values[i, j], fmt), styles[i, j]) for j in range(cols)]
        table.add_row(f"[{i}, :]" if rows > 1 else "", *cells)
    return table


def _matrix(array: np.ndarray) -> np.ndarray:
    """A parameter as a 2-D block: vectors as one row; a convolution kernel (out, in, kh, kw)
    as out rows of its flattened rest."""
    values = np.atleast_2d(np.asarray(array, dtype=np.float64))
    return values.reshape(values.shape[0], -1) if values.ndim > 2 else values


def parameter_heatmaps(report: Report, name: str) -> Group:
    """--show NAME: the parameter's entries for the reference, each backend, and their rel. error.

    Shown for the user's backends (for every backend when there is none). An entry is green
    when |g - ref| <= atol + rtol * |ref|, the check's tolerance without its finite-difference
    error margin, so a borderline entry may look yellow while its verdict is ok.
    """

    ref = report.reference.get(name)
    parts: list[Table | Text] = []
    if ref is None:
        return Group(Text(f"{name}: no reference to show", style="yellow"))
    shown = [b for b in report.backends if b.kind == "user"] or list(report.backends)
    ref2 = _matrix(ref)
    cut = ref2[:MAX_SHOWN_ROWS, :MAX_SHOWN_COLS]
    shape = shape_text(np.shape(ref))
    parts.append(
        _grid(
            f"{name} ({shape}) · {report.reference_name}",
            cut,
            np.full(cut.shape, "cyan", dtype=object),
            "+.2e",
        )
    )
    for result in shown:
        grads = result.gradients.by_name() if result.gradients is not None else {}
        g = grads.get(name)
        if g is None or np.shape(g) != np.shape(ref):
            reason = result.error or "not returned"
            parts.append(Text(f"{result.name}: {name} not available ({reason})", style="yellow"))
            continue
        g2 = _matrix(g)
        rel = relative_errors(g2, ref2, report.atol)
        ok = np.abs(g2 - ref2) <= report.atol + report.rtol * np.abs(ref2)
        styles = np.empty(ref2.shape, dtype=object)
        for idx in np.ndindex(ref2.shape):
            # A sampled reference has no estimate (NaN) for the entries it did not check.
            checked = bool(np.isfinite(ref2[idx]))
            styles[idx] = (
                _entry_style(float(rel[idx]), bool(ok[idx]), report.rtol) if checked else "dim"
            )
        block = (slice(0, MAX_SHOWN_ROWS), slice(0, MAX_SHOWN_COLS))
        parts.append(_grid(f"{name} · {result.name}", g2[block], styles[block], "+.2e"))
        parts.append(
            _grid(f"{name} · {result.name} · relative error", rel[block], styles[block], ".1e")
        )
        param = next((p for p in result.params if p.name == name), None)
        if param is not None and param.hint:
            parts.append(Text(f"{result.name} {name}: {param.hint}", style="yellow"))
    if ref2.shape[0] > MAX_SHOWN_ROWS or ref2.shape[1] > MAX_SHOWN_COLS:
        parts.append(
            Text(
                f"showing the first {MAX_SHOWN_ROWS}×{MAX_SHOWN_COLS} entries of {shape}",
                style="dim",
            )
        )
    return Group(*parts)
