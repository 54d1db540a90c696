"""The human report of a check, rendered with rich: tables, findings, the verdict line."""

from __future__ import annotations

import numpy as np
from rich import box
from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from ..verdict.result import BackendResult, Report
from .notices import problem_warnings
from .verdicts import (
    backend_max,
    caption,
    first_entry_label,
    index_text,
    num,
    parameter_rows,
    shown_backends,
    verdict,
)


def _err_style(value: float | None, ok: bool) -> str:
    if value is None:
        return "dim"
    return "green" if ok else "bold red"


def _overall_norm(arrays: list[np.ndarray]) -> float:
    return float(np.sqrt(sum(float(np.sum(np.square(a))) for a in arrays)))


def _mark(result: BackendResult) -> tuple[Text, Text]:
    """The verdict mark (✓ green, ✗ red) and the backend's name in the same colour."""
    if result.ok:
        return Text("✓", "bold green"), Text(result.name, "bold")
    return Text("✗", "bold red"), Text(result.name, "bold red")


def summary_table(report: Report) -> Table:
    """One row per backend plus one for the reference."""
    table = Table(
        title=f"Gradient check · {report.problem.describe(' · ')}",
        title_justify="left",
        caption=f"✓ agrees, ✗ fails · errors: max over entries against {caption(report)}",
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
    table.add_column(first_entry_label(report), justify="right", no_wrap=True)
    table.add_column("‖∇‖", justify="right", no_wrap=True)
    table.add_column("abs err", justify="right", no_wrap=True)
    table.add_column("rel err", justify="right", no_wrap=True)
    for result in report.backends:
        mark, name = _mark(result)
        if result.error is not None:
            # No traceback: it returned something invalid, e.g. a bias of shape (N, out).
            status = "raised" if result.traceback else "invalid"
            table.add_row(mark, name, Text(status, "bold red"), "—", "—", "—", "—")
            continue
        grads = result.gradients
        norm = _overall_norm(list(grads.by_name().values())) if grads is not None else None
        max_abs = backend_max(result, "max_abs_err")
        max_rel = backend_max(result, "max_rel_err")
        table.add_row(
            mark,
            name,
            num(result.loss, ".7g"),
            num(result.first_weight_grad, ".7g"),
            num(norm, ".4g"),
            Text(num(max_abs), _err_style(max_abs, result.ok)),
            Text(num(max_rel), _err_style(max_rel, result.ok)),
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
            num(fd.loss, ".7g"),
            num(first if first is not None and np.isfinite(first) else None, ".7g"),
            num(_overall_norm(list(fd.estimates.values())) if complete else None, ".4g"),
            "",
            "",
        )
    if report.validation is not None and report.consensus:
        w0 = report.consensus.get("W0")
        sign = "=" if report.validation.ok else "?"
        table.add_row(
            Text(sign, style="cyan"),
            Text("consensus", style="cyan"),
            num(fd.loss if fd is not None else None, ".7g"),
            num(float(w0.reshape(-1)[0]) if w0 is not None else None, ".7g"),
            num(_overall_norm(list(report.consensus.values())), ".4g"),
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
    for result in shown_backends(report):
        table.add_column(result.name, justify="right")
    rows = parameter_rows(report)
    with_kinks = any(row.kinks for row in rows)
    if with_kinks:
        table.add_column("FD kinks", justify="right")
    for row in rows:
        cells: list[Text | str] = [row.name, row.shape, num(row.ref_norm, ".4g")]
        for param in row.cells:
            if param is None:
                cells.append(Text("not returned", "dim"))
            else:
                mark = "" if param.ok else " ✗"
                cells.append(
                    Text(num(param.max_rel_err) + mark, _err_style(param.max_rel_err, param.ok))
                )
        if with_kinks:
            cells.append(str(row.kinks or ""))
        table.add_row(*cells)
    return table


def findings(report: Report) -> list[Text]:
    """Errors, tracebacks and hints, one block per backend that has any.

    A backend's own hints come first: one of them may explain every failing parameter at
    once ("every failing parameter is off by the same factor 20"), and then the lines per
    parameter are its details, not eight riddles before the answer.
    """
    lines: list[Text] = []
    for result in report.backends:
        if result.error is not None:
            lines.append(Text.assemble((f"✗ {result.name}: ", "bold red"), result.error))
            if result.traceback:
                lines.append(Text(result.traceback.rstrip(), style="dim"))
        for hint in result.hints:
            lines.append(Text.assemble((f"• {result.name}: ", "yellow"), hint))
        for param in result.params:
            if not param.ok:
                text = Text.assemble(
                    (f"✗ {result.name} {param.name}: ", "bold red"),
                    f"worst entry {index_text(param.name, param.worst_index)}, "
                    f"rel err {num(param.max_rel_err, '.2e')}",
                )
                if param.hint:
                    text.append(f" — {param.hint}", style="yellow")
                lines.append(text)
    for note in report.notes:
        lines.append(Text.assemble(("• note: ", "yellow"), note))
    return lines


def summary_line(report: Report) -> Text:
    """The one-line verdict, marked and coloured."""
    text = verdict(report)
    if report.ok:
        return Text(f"✓ {text}", style="bold green")
    return Text(f"✗ {text}", style="bold red")


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


def header_lines(report: Report) -> list[Text]:
    """Warnings about the problem, before the tables (e.g. that it is the bundled one)."""
    return [
        Text.assemble(("⚠ warning: ", "bold yellow"), w) for w in problem_warnings(report.problem)
    ]


def render(report: Report) -> Group:
    """The full human report as one renderable."""
    parts: list[Table | Text] = [*header_lines(report), summary_table(report)]
    parts.append(parameter_table(report))
    parts.extend(findings(report))
    parts.extend(kink_lines(report))
    parts.append(summary_line(report))
    return Group(*parts)


def print_report(report: Report, console: Console) -> None:
    """Print the full human report."""
    console.print(render(report))
