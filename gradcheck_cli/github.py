"""GitHub Actions output of a Report: workflow-command annotations and a Markdown step summary.

Annotations are lines like `::error title=...::message` on stdout, which the
runner turns into marks on the run page. Their data and properties must be
escaped (`%`, CR, LF; and `:` `,` in properties) or a message with a newline is
cut short. The summary is Markdown meant to be appended to $GITHUB_STEP_SUMMARY.
"""

from __future__ import annotations

import numpy as np

from .checks import BackendResult, Report
from .junit import backend_failure, fd_failure, param_failure


def escape_data(text: str) -> str:
    """Escape the message part of a workflow command (as @actions/core does)."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """Escape a property value (title=, file=) of a workflow command."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def workflow_command(level: str, message: str, **properties: str) -> str:
    """One `::level key=value,...::message` line."""
    props = ",".join(f"{k}={escape_property(v)}" for k, v in properties.items() if v)
    return f"::{level}{' ' + props if props else ''}::{escape_data(message)}"


def annotation_lines(report: Report) -> list[str]:
    """An ::error per failing backend (a line per parameter), a ::warning per hint, a ::notice."""
    lines: list[str] = []
    for result in report.backends:
        if result.error is not None:
            message = backend_failure(result)
            if result.traceback:
                message += "\n" + result.traceback.rstrip()
            lines.append(workflow_command("error", message, title=f"gradcheck: {result.name}"))
            continue
        failed = [p for p in result.params if not p.ok]
        if failed:
            # One annotation per backend, a line per parameter: GitHub shows at most 10
            # error annotations per step, and a wrong backend often fails every parameter.
            lines.append(
                workflow_command(
                    "error",
                    "\n".join(param_failure(result, param, report) for param in failed),
                    title=f"gradcheck: {result.name} ({', '.join(p.name for p in failed)})",
                )
            )
        if not result.ok and not failed:
            lines.append(
                workflow_command(
                    "error", backend_failure(result), title=f"gradcheck: {result.name}"
                )
            )
        elif result.hints:
            for hint in result.hints:
                lines.append(workflow_command("warning", hint, title=f"gradcheck: {result.name}"))
    for note in report.notes:
        lines.append(workflow_command("warning", note, title="gradcheck"))
    fd_message = fd_failure(report)
    if fd_message is not None and not any(line.startswith("::error") for line in lines):
        lines.append(workflow_command("error", fd_message, title="gradcheck: finite differences"))
    lines.append(workflow_command("notice", verdict(report), title="gradcheck"))
    return lines


def verdict(report: Report) -> str:
    """The one-line outcome of the run."""
    failed = [r.name for r in report.backends if not r.ok]
    n = len(report.backends)
    problem = report.problem.describe()
    if failed:
        return f"{len(failed)} of {n} backends failed: {', '.join(failed)} ({problem})"
    if report.unresolved:
        return f"inconclusive: {report.unresolved_text()} ({problem})"
    return f"all {n} backends agree with {report.reference_name} ({problem})"


def _md(text: str) -> str:
    """A Markdown table cell: pipes escaped, newlines flattened."""
    return text.replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def _num(value: float | None, spec: str = ".1e") -> str:
    return "—" if value is None else format(value, spec)


def _backend_max(result: BackendResult, attr: str) -> float | None:
    values = [getattr(p, attr) for p in result.params if getattr(p, attr) is not None]
    return max(values) if values else None


def _status(ok: bool, failed: str = "❌ failed") -> str:
    return "✅ ok" if ok else failed


def step_summary(report: Report) -> str:
    """The Markdown step summary: verdict, comparison table, per-parameter errors, findings."""
    icon = "✅" if report.ok else "❌"
    out = [
        f"### {icon} gradcheck: {_md(verdict(report).split(' (')[0])}",
        "",
        f"{_md(report.problem.describe())}. Errors are the max over entries against "
        f"{_md(report.reference_name)}; rtol {report.rtol:g}, atol {report.atol:g}.",
        "",
        "| backend | loss | dE/dW0[0,0] | max abs err | max rel err | verdict |",
        "|---|--:|--:|--:|--:|---|",
    ]
    for result in report.backends:
        if result.error is not None:
            status = "raised" if result.traceback else "invalid"
            out.append(f"| {_md(result.name)} | — | — | — | — | ❌ {status} |")
            continue
        out.append(
            f"| {_md(result.name)} | {_num(result.loss, '.7g')} "
            f"| {_num(result.first_weight_grad, '.7g')} "
            f"| {_num(_backend_max(result, 'max_abs_err'))} "
            f"| {_num(_backend_max(result, 'max_rel_err'))} | {_status(result.ok)} |"
        )
    fd = report.finite_difference
    if fd is not None:
        w0 = fd.estimates.get("W0")
        first = float(np.asarray(w0).reshape(-1)[0]) if w0 is not None else None
        out.append(
            f"| *finite differences* | {_num(fd.loss, '.7g')} | {_num(first, '.7g')} "
            f"| | | {fd.checked} {fd.unit} checked, {fd.failed} failed, {fd.kinks} at kinks |"
        )
    shown = [r for r in report.backends if r.error is None]
    if shown:
        out += ["", "<details><summary>Max relative error per parameter</summary>", ""]
        out.append("| param | shape | " + " | ".join(_md(r.name) for r in shown) + " |")
        out.append("|---|---|" + "--:|" * len(shown))
        arrays = dict(zip(report.problem.parameter_names, report.problem.parameters))
        for name in report.problem.parameter_names:
            # From the problem: a directional reference has no per-entry estimates.
            shape = "×".join(str(s) for s in arrays[name].shape)
            cells = []
            for result in shown:
                param = next((p for p in result.params if p.name == name), None)
                if param is None:
                    cells.append("not returned")
                else:
                    cells.append(_num(param.max_rel_err) + ("" if param.ok else " ❌"))
            out.append(f"| {name} | {shape} | " + " | ".join(cells) + " |")
        out += ["", "</details>"]
    flat = [line for result in report.backends for line in _findings(result, report)]
    flat += [f"note: {note}" for note in report.notes]
    if flat:
        out += ["", "**Findings**", ""]
        out += [f"- {_md(f)}" for f in flat]
    return "\n".join(out) + "\n"


def _findings(result: BackendResult, report: Report) -> list[str]:
    if result.error is not None:
        return [backend_failure(result)]
    lines = [param_failure(result, p, report) for p in result.params if not p.ok]
    return lines + [f"{result.name}: {hint}" for hint in result.hints]
