"""GitHub Actions output of a Report: workflow-command annotations and a Markdown step summary.

Annotations are lines like `::error file=...,line=...,title=...::message` on stdout,
which the runner turns into marks on the run page, and, with a file and line of the
repository, inline on a pull request's diff. Their data and properties must be
escaped (`%`, CR, LF; and `:` `,` in properties) or a message with a newline is
cut short. The summary is Markdown meant to be appended to $GITHUB_STEP_SUMMARY.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

from ..backends.base import Backend
from ..backends.user import UserBackend, definition
from ..verdict.result import BackendResult, Report
from .notices import problem_warnings
from .verdicts import (
    backend_failure,
    backend_max,
    fd_failure,
    first_entry_label,
    num,
    param_failure,
    parameter_rows,
    shown_backends,
    verdict,
)


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


# (file, line) of a user's function: where an annotation about it points.
Location = tuple[str, int]
# A frame of a Python traceback.
_FRAME = re.compile(r'^  File "(?P<file>[^"]+)", line (?P<line>\d+)', re.MULTILINE)


def source_locations(backends: Iterable[Backend]) -> dict[str, Location]:
    """Where each user function is defined (its file and the line of its def), by row name."""
    found: dict[str, Location] = {}
    for backend in backends:
        if not isinstance(backend, UserBackend):
            continue
        code = getattr(backend.function, "__code__", None)
        if code is not None:  # a function object, run in this process
            found[backend.name] = (code.co_filename, code.co_firstlineno)
            continue
        # A FILE:FUNC runs in its own process: find its def in the file.
        line = definition(backend.spec.path, backend.spec.function)
        if line is not None:
            found[backend.name] = (str(backend.spec.path.resolve()), line)
    return found


def _in_repository(path: str, root: Path) -> str | None:
    """`path` relative to the repository's root, as GitHub wants it, or None if outside."""
    try:
        return Path(path).resolve().relative_to(root.resolve()).as_posix()
    except (OSError, ValueError):
        return None


def _where(result: BackendResult, locations: Mapping[str, Location], root: Path) -> dict[str, str]:
    """file= and line= of an annotation about `result`: the line in the repository where the
    function raised (the innermost frame there), else its def; none when unknown."""
    candidates: list[Location] = []
    if result.traceback:
        frames = [(m["file"], int(m["line"])) for m in _FRAME.finditer(result.traceback)]
        candidates += reversed(frames)
    if result.name in locations:
        candidates.append(locations[result.name])
    for file, line in candidates:
        relative = _in_repository(file, root)
        if relative is not None:
            return {"file": relative, "line": str(line)}
    return {}


def annotation_lines(
    report: Report,
    locations: Mapping[str, Location] | None = None,
    root: str | Path | None = None,
) -> list[str]:
    """An ::error per failing backend (a line per parameter), a ::warning per hint, a ::notice.

    `locations` (from `source_locations`) put a user function's annotations on its file and
    line, relative to `root`, the repository (default: $GITHUB_WORKSPACE, else the current
    directory); files outside it get no location.
    """
    base = Path(root or os.environ.get("GITHUB_WORKSPACE") or Path.cwd())
    lines = [
        workflow_command("warning", w, title="gradcheck") for w in problem_warnings(report.problem)
    ]
    for result in report.backends:
        where = _where(result, locations or {}, base)
        title = f"gradcheck: {result.name}"
        if result.error is not None:
            message = backend_failure(result)
            if result.traceback:
                message += "\n" + result.traceback.rstrip()
            lines.append(workflow_command("error", message, **where, title=title))
            continue
        failed = [p for p in result.params if not p.ok]
        if failed:
            # One annotation per backend, a line per parameter: GitHub shows at most 10
            # error annotations per step, and a wrong backend often fails every parameter.
            lines.append(
                workflow_command(
                    "error",
                    "\n".join(param_failure(result, param, report) for param in failed),
                    **where,
                    title=f"{title} ({', '.join(p.name for p in failed)})",
                )
            )
        if not result.ok and not failed:
            lines.append(workflow_command("error", backend_failure(result), **where, title=title))
        elif result.hints:
            for hint in result.hints:
                lines.append(workflow_command("warning", hint, **where, title=title))
    for note in report.notes:
        lines.append(workflow_command("warning", note, title="gradcheck"))
    fd_message = fd_failure(report)
    if fd_message is not None and not any(line.startswith("::error") for line in lines):
        lines.append(workflow_command("error", fd_message, title="gradcheck: finite differences"))
    lines.append(workflow_command("notice", notice(report), title="gradcheck"))
    return lines


def notice(report: Report) -> str:
    """The run's outcome and the problem it was about, for the final ::notice."""
    return f"{verdict(report)} ({report.problem.describe()})"


def _md(text: str) -> str:
    """A Markdown table cell: pipes escaped, newlines flattened."""
    return text.replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def _status(ok: bool, failed: str = "❌ failed") -> str:
    return "✅ ok" if ok else failed


def step_summary(report: Report) -> str:
    """The Markdown step summary: verdict, comparison table, per-parameter errors, findings."""
    icon = "✅" if report.ok else "❌"
    out = [
        f"### {icon} gradcheck: {_md(verdict(report).split(' (')[0])}",
        "",
        *(f"> ⚠️ **warning:** {_md(w)}\n" for w in problem_warnings(report.problem)),
        f"{_md(report.problem.describe())}. Errors are the max over entries against "
        f"{_md(report.reference_name)}; rtol {report.rtol:g}, atol {report.atol:g}.",
        "",
        f"| backend | loss | {first_entry_label(report)} | max abs err | max rel err | verdict |",
        "|---|--:|--:|--:|--:|---|",
    ]
    for result in report.backends:
        if result.error is not None:
            status = "raised" if result.traceback else "invalid"
            out.append(f"| {_md(result.name)} | — | — | — | — | ❌ {status} |")
            continue
        out.append(
            f"| {_md(result.name)} | {num(result.loss, '.7g')} "
            f"| {num(result.first_weight_grad, '.7g')} "
            f"| {num(backend_max(result, 'max_abs_err'))} "
            f"| {num(backend_max(result, 'max_rel_err'))} | {_status(result.ok)} |"
        )
    fd = report.finite_difference
    if fd is not None:
        w0 = fd.estimates.get("W0")
        first = float(np.asarray(w0).reshape(-1)[0]) if w0 is not None else None
        out.append(
            f"| *finite differences* | {num(fd.loss, '.7g')} | {num(first, '.7g')} "
            f"| | | {fd.checked} {fd.unit} checked, {fd.failed} failed, {fd.kinks} at kinks |"
        )
    shown = shown_backends(report)
    if shown:
        out += ["", "<details><summary>Max relative error per parameter</summary>", ""]
        out.append("| param | shape | " + " | ".join(_md(r.name) for r in shown) + " |")
        out.append("|---|---|" + "--:|" * len(shown))
        for row in parameter_rows(report):
            cells = [
                "not returned"
                if param is None
                else num(param.max_rel_err) + ("" if param.ok else " ❌")
                for param in row.cells
            ]
            out.append(f"| {row.name} | {row.shape} | " + " | ".join(cells) + " |")
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
    # The explanation that may cover every failing parameter first, then the details.
    hints = [f"{result.name}: {hint}" for hint in result.hints]
    return hints + [param_failure(result, p, report) for p in result.params if not p.ok]
