"""Rich rendering of a Report: tables, hints, verdicts. No computation happens here."""

from __future__ import annotations

import numpy as np
from rich import box
from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from .checks import BackendResult, Report
from .inspection import Inspection


def _num(value: float | None, fmt: str = ".1e") -> str:
    return "—" if value is None else format(value, fmt)


def _err_style(value: float | None, ok: bool) -> str:
    if value is None:
        return "dim"
    return "green" if ok else "bold red"


def _backend_max(result: BackendResult, attr: str) -> float | None:
    values = [getattr(p, attr) for p in result.params if getattr(p, attr) is not None]
    return max(values) if values else None


def _ref_norm(ref: np.ndarray | None) -> float | None:
    """The reference's norm; None where entries have no estimate (sampled reference)."""
    if ref is None or not np.isfinite(ref).all():
        return None
    return float(np.linalg.norm(ref))


def _overall_norm(arrays: list[np.ndarray]) -> float:
    return float(np.sqrt(sum(float(np.sum(np.square(a))) for a in arrays)))


def _verdict(result: BackendResult) -> tuple[Text, Text]:
    """The verdict mark (✓ green, ✗ red) and the backend's name in the same colour."""
    if result.ok:
        return Text("✓", "bold green"), Text(result.name, "bold")
    return Text("✗", "bold red"), Text(result.name, "bold red")


def summary_table(report: Report) -> Table:
    """One row per backend plus one for the reference."""
    table = Table(
        title=f"Gradient check · {report.problem.describe(' · ')}",
        title_justify="left",
        caption=f"✓ agrees, ✗ fails · errors: max over entries against {report.reference_name} (≈)",
        caption_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
    )
    # The verdict is the mark before the name (no column of its own), so that names of
    # user functions like mine.py:back_propagation fit in 80 columns; longer ones wrap.
    table.add_column("", no_wrap=True, width=1)
    table.add_column("backend", overflow="fold")
    table.add_column("loss", justify="right", no_wrap=True)
    table.add_column("dE/dW0[0,0]", justify="right", no_wrap=True)
    table.add_column("‖∇‖", justify="right", no_wrap=True)
    table.add_column("abs err", justify="right", no_wrap=True)
    table.add_column("rel err", justify="right", no_wrap=True)
    for result in report.backends:
        mark, name = _verdict(result)
        if result.error is not None:
            # No traceback: it returned something invalid, e.g. a bias of shape (N, out).
            status = "raised" if result.traceback else "invalid"
            table.add_row(mark, name, Text(status, "bold red"), "—", "—", "—", "—")
            continue
        grads = result.gradients
        norm = _overall_norm(list(grads.by_name().values())) if grads is not None else None
        max_abs = _backend_max(result, "max_abs_err")
        max_rel = _backend_max(result, "max_rel_err")
        table.add_row(
            mark,
            name,
            _num(result.loss, ".7g"),
            _num(result.first_weight_grad, ".7g"),
            _num(norm, ".4g"),
            Text(_num(max_abs), _err_style(max_abs, result.ok)),
            Text(_num(max_rel), _err_style(max_rel, result.ok)),
        )
    fd = report.finite_difference
    if fd is not None:
        w0 = fd.estimates.get("W0")
        # Sampled and directional references have no estimate for some (or all) entries.
        first = float(w0.reshape(-1)[0]) if w0 is not None else None
        complete = bool(fd.estimates) and fd.mode == "full"
        table.add_row(
            Text("≈", style="cyan"),
            Text("finite diff.", style="cyan"),
            _num(fd.loss, ".7g"),
            _num(first if first is not None and np.isfinite(first) else None, ".7g"),
            _num(_overall_norm(list(fd.estimates.values())) if complete else None, ".4g"),
            "",
            "",
        )
    return table


def parameter_table(report: Report) -> Table:
    """Per parameter: shape, reference norm, and each backend's max relative error."""
    table = Table(
        title="Max relative error per parameter",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
    )
    table.add_column("param", style="bold")
    table.add_column("shape")
    table.add_column("‖ref‖", justify="right")
    shown = [r for r in report.backends if r.error is None]
    for result in shown:
        table.add_column(result.name, justify="right")
    fd = report.finite_difference
    kink_counts = fd.kink_counts if fd is not None and fd.kinks and fd.kink_counts else None
    if kink_counts is not None:
        table.add_column("FD kinks", justify="right")
    arrays = dict(zip(report.problem.parameter_names, report.problem.parameters))
    for name in report.problem.parameter_names:
        ref = report.reference.get(name)
        # From the problem: a directional reference has no per-entry estimates.
        shape = "×".join(str(s) for s in arrays[name].shape)
        cells: list[Text | str] = [
            name,
            shape,
            _num(_ref_norm(ref), ".4g"),
        ]
        for result in shown:
            param = next((p for p in result.params if p.name == name), None)
            if param is None:
                cells.append(Text("not returned", "dim"))
            else:
                mark = "" if param.ok else " ✗"
                cells.append(
                    Text(
                        _num(param.max_rel_err, ".1e") + mark,
                        _err_style(param.max_rel_err, param.ok),
                    )
                )
        if kink_counts is not None:
            cells.append(str(kink_counts.get(name, 0) or ""))
        table.add_row(*cells)
    return table


def findings(report: Report) -> list[Text]:
    """Errors, tracebacks and hints, one block per backend that has any."""
    lines: list[Text] = []
    for result in report.backends:
        if result.error is not None:
            lines.append(Text.assemble((f"✗ {result.name}: ", "bold red"), result.error))
            if result.traceback:
                lines.append(Text(result.traceback.rstrip(), style="dim"))
        for param in result.params:
            if not param.ok:
                where = (
                    f"[{', '.join(map(str, param.worst_index))}]"
                    if param.worst_index is not None
                    else ""
                )
                text = Text.assemble(
                    (f"✗ {result.name} {param.name}: ", "bold red"),
                    f"worst entry {param.name}{where}, rel err {_num(param.max_rel_err, '.2e')}",
                )
                if param.hint:
                    text.append(f" — {param.hint}", style="yellow")
                lines.append(text)
        for hint in result.hints:
            lines.append(Text.assemble((f"• {result.name}: ", "yellow"), hint))
    for note in report.notes:
        lines.append(Text.assemble(("• note: ", "yellow"), note))
    return lines


def summary_line(report: Report) -> Text:
    """The one-line verdict."""
    n = len(report.backends)
    failed = [r.name for r in report.backends if not r.ok]
    agreement = max(report.agreement.values()) if report.agreement else None
    cross = f"; backends agree to {agreement:.1e}" if agreement is not None and not failed else ""
    fd = report.finite_difference
    ref = f"{report.reference_name}"
    if fd is not None:
        kinks = f", {fd.kinks} at kinks" if fd.kinks else ""
        checked = f"{fd.checked} {fd.unit} checked"
        order = ", order 4" if fd.order == 4 else ""
        ref += f" ({checked}{kinks}{order}, max rel err {_num(fd.max_rel_err)})"
    if not failed and report.unresolved:
        return Text(f"✗ inconclusive: {report.unresolved_text()}", style="bold red")
    if not failed:
        who = f"all {n} backends agree" if n > 1 else f"{report.backends[0].name} agrees"
        return Text(f"✓ {who} with {ref}{cross}", style="bold green")
    return Text(
        f"✗ {len(failed)} of {n} backends failed: {', '.join(failed)} (reference: {ref})",
        style="bold red",
    )


# Kink entries named in the text report (the JSON lists up to 100).
KINK_ENTRIES_SHOWN = 5


def kink_lines(report: Report) -> list[Text]:
    """A note on entries whose finite difference crossed a ReLU kink, and how they were judged."""
    fd = report.finite_difference
    if fd is None or not fd.kinks:
        return []
    shown = ", ".join(
        f"{e['param']}{e['index']}" + ("" if e["resolved"] else " (not judged)")
        for e in fd.kink_entries[:KINK_ENTRIES_SHOWN]
    )
    more = f", … ({fd.kinks} in all)" if fd.kinks > KINK_ENTRIES_SHOWN else ""
    how = "judged against a smaller step or a one-sided difference that crosses no kink"
    if fd.unresolved_kinks:
        how += f"; {fd.unresolved_kinks} with no kink-free estimate were not judged"
    return [Text.assemble(("• kinks: ", "cyan"), f"{shown}{more} — {how}")]


def render(report: Report) -> Group:
    """The full human report as one renderable."""
    parts: list[Table | Text] = [summary_table(report), parameter_table(report)]
    parts.extend(findings(report))
    parts.extend(kink_lines(report))
    parts.append(summary_line(report))
    return Group(*parts)


def print_report(report: Report, console: Console) -> None:
    """Print the full human report."""
    console.print(render(report))


def inspection_tables(inspection: Inspection) -> Group:
    """`gradcheck inspect`: the problem line, array statistics and hidden-layer behaviour."""
    summary = inspection.summary
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


def print_inspection(inspection: Inspection, console: Console) -> None:
    """Print what `gradcheck inspect` shows."""
    console.print(inspection_tables(inspection))


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


def parameter_heatmaps(report: Report, name: str) -> Group:
    """--show NAME: the parameter's entries for the reference, each backend, and their rel. error.

    Shown for the user's backends (for every backend when there is none). An entry is green
    when |g - ref| <= atol + rtol * |ref|, the check's tolerance without its finite-difference
    error margin, so a borderline entry may look yellow while its verdict is ok.
    """
    from .checks import relative_errors

    ref = report.reference.get(name)
    parts: list[Table | Text] = []
    if ref is None:
        return Group(Text(f"{name}: no reference to show", style="yellow"))
    shown = [b for b in report.backends if b.kind == "user"] or list(report.backends)
    ref2 = np.atleast_2d(np.asarray(ref, dtype=np.float64))
    cut = ref2[:MAX_SHOWN_ROWS, :MAX_SHOWN_COLS]
    shape = "×".join(str(s) for s in np.shape(ref))
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
        g2 = np.atleast_2d(np.asarray(g, dtype=np.float64))
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


def to_html(report: Report) -> str:
    """The rich rendering as standalone HTML (Jupyter's _repr_html_)."""
    import io

    console = Console(record=True, width=120, file=io.StringIO(), force_jupyter=False)
    console.print(render(report))
    return console.export_html(inline_styles=True)
