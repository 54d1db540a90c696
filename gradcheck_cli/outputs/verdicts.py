"""The shared vocabulary of every output: verdict lines, failure texts, numbers, table rows.

Text, JUnit, GitHub annotations and the Markdown summary all say the same things in
the same words; they take them from here and only differ in markup.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..verdict.resolution import percent
from ..verdict.result import BackendResult, ParamResult, Report


def num(value: float | None, spec: str = ".1e") -> str:
    """A number for a table or message; an em dash where there is none."""
    return "—" if value is None else format(value, spec)


def shape_text(shape: Sequence[int]) -> str:
    """A shape as 4×6."""
    return "×".join(str(s) for s in shape)


def index_text(name: str, index: Sequence[int] | None) -> str:
    """An entry as W0[2, 3] (the bare name when there is no index)."""
    return name if index is None else f"{name}[{', '.join(str(i) for i in index)}]"


def first_entry_label(report: Report) -> str:
    """The column of the first parameter's first entry: dE/dW0[0,0] (the exercise's number),
    or e.g. dE/d0.weight[0,0,0,0] for a layered problem."""
    names = report.problem.parameter_names
    if not names or names[0] == "W0":
        return "dE/dW0[0,0]"
    zeros = ",".join("0" for _ in np.shape(report.problem.parameters[0]))
    return f"dE/d{names[0]}[{zeros}]"


def backend_max(result: BackendResult, attr: str) -> float | None:
    """The largest max_abs_err or max_rel_err over a backend's parameters."""
    values = [getattr(p, attr) for p in result.params if getattr(p, attr) is not None]
    return max(values) if values else None


def unresolved_text(report: Report) -> str:
    """Why the run could not verify some parameters, and what to do about it."""
    by_cause: dict[str, list[str]] = {}
    for name, info in report.unresolved.items():
        by_cause.setdefault(info["cause"], []).append(name)
    parts = []
    for cause, names in by_cause.items():
        hidden = min(report.unresolved[n]["hidden"] for n in names)
        where = ", ".join(names)
        if cause in UNRESOLVED_TEXTS:
            parts.append(UNRESOLVED_TEXTS[cause].format(where=where))
            continue
        fix = {
            "float32 rounding": "rerun with --dtype float64",
            "float64 rounding": "check at parameters farther from the minimum",
            "finite differences": "rerun with a larger --fd-step, or with two built-in "
            "backends so that their consensus judges",
            "atol": "rerun with a smaller --atol",
            "random directions": "rerun with --fd sample or --fd full, or with two built-in "
            "backends so that their consensus judges",
        }.get(cause, "see the notes")
        parts.append(
            f"{cause} could hide mistakes of {percent(hidden)} or more of the largest entry in "
            f"{where} ({fix})"
        )
    return "cannot verify every parameter: " + "; ".join(parts)


# Causes that hide everything there, said in their own words.
UNRESOLVED_TEXTS = {
    "ReLU kinks": "every entry of {where} that could show a mistake sits at a ReLU kink, "
    "where either side is right (move the parameters slightly off the kink)",
    "zero gradient": "every gradient entry is exactly zero at these parameters (the loss is at "
    "an exact minimum), so a wrong backprop would return zeros too (check at other parameters)",
    "no validated reference": "with finite differences off and fewer than two built-in "
    "backends, nothing validates the reference for {where} (turn finite differences on, or "
    "run two built-in backends)",
}


def fd_text(report: Report) -> str:
    """Finite differences and what they covered: 'finite differences (121 entries checked, ...)'."""
    fd = report.finite_difference
    name = (
        "finite differences"
        if fd is None or fd.mode == "full"
        else f"finite differences ({fd.mode})"
    )
    if fd is None:
        return name
    kinks = f", {fd.kinks} at kinks" if fd.kinks else ""
    order = ", order 4" if fd.order == 4 else ""
    checked = f"{fd.checked} {fd.unit} checked{kinks}{order}"
    return f"{name} ({checked}, max rel err {num(fd.max_rel_err)})"


def consensus_text(report: Report) -> str:
    """The built-ins' consensus, how it was validated, and what it can see."""
    validation = report.validation
    parts = []
    if validation is None:
        parts.append("not validated")
    elif validation.by != "agreement":
        parts.append("validated by finite differences")
    else:
        parts.append("validated by the built-ins' agreement; finite differences off")
    judged = [r.sensitivity for r in report.backends if r.reference == "consensus"]
    sensitivities = [s for s in judged if s is not None]
    if sensitivities:
        parts.append(
            f"errors above {max(sensitivities):.1e} of a parameter's largest entry are caught"
        )
    return f"the built-ins' float64 consensus ({'; '.join(parts)})"


def reference_text(report: Report) -> str:
    """What judged the backends: finite differences, the consensus, or each its own group."""
    by_fd = [r for r in report.backends if r.reference == "finite differences"]
    by_consensus = [r for r in report.backends if r.reference == "consensus"]
    if by_fd and by_consensus:
        return f"{fd_text(report)} for the built-ins, {consensus_text(report)} for the others"
    if by_consensus:
        return consensus_text(report)
    if report.finite_difference is not None:
        return fd_text(report)
    return report.reference_name


def caption(report: Report) -> str:
    """What the error columns are measured against, for a table's caption."""
    kinds = {r.reference for r in report.backends if r.error is None}
    if kinds == {"finite differences", "consensus"}:
        return "finite differences (≈) for the built-ins, their consensus (=) for the others"
    if kinds == {"consensus"}:
        return "the built-ins' float64 consensus (=)"
    return f"{report.reference_name} (≈)"


def judged_by(result: BackendResult, report: Report) -> str:
    """The reference one backend was judged against, in words."""
    if result.reference == "consensus":
        return "the built-ins' float64 consensus"
    if result.reference == "finite differences":
        return "finite differences"
    return report.reference_name


def verdict(report: Report) -> str:
    """The one-line outcome of the run (without a mark)."""
    n = len(report.backends)
    failed = [r.name for r in report.backends if not r.ok]
    if failed:
        return (
            f"{len(failed)} of {n} backends failed: {', '.join(failed)} "
            f"(reference: {reference_text(report)})"
        )
    if report.unresolved:
        return f"inconclusive: {unresolved_text(report)}"
    who = f"all {n} backends agree" if n > 1 else f"{report.backends[0].name} agrees"
    agreement = max(report.agreement.values()) if report.agreement else None
    cross = f"; backends agree to {agreement:.1e}" if agreement is not None else ""
    return f"{who} with {reference_text(report)}{cross}"


def param_failure(result: BackendResult, param: ParamResult, report: Report) -> str:
    """Why one parameter of one backend failed, with the numbers and the hint, on one line."""
    text = (
        f"{result.name} {param.name}: max rel err {num(param.max_rel_err, '.3e')} "
        f"(max abs err {num(param.max_abs_err, '.3e')}, worst entry "
        f"{index_text(param.name, param.worst_index)}) "
        f"against {judged_by(result, report)}; {_tolerance_text(result, report)}"
    )
    if param.hint:
        text += f"; hint: {param.hint}"
    return text


def _tolerance_text(result: BackendResult, report: Report) -> str:
    if result.reference == "consensus" and report.consensus_atol is not None:
        rtol = report.consensus_rtol or 0.0
        return f"rtol {rtol:g}, atol {report.consensus_atol:g} + rounding noise"
    return f"rtol {report.rtol:g}, atol {report.atol:g}"


def backend_failure(result: BackendResult) -> str:
    """Why a backend failed beyond its parameters: its error, or its hints."""
    if result.error is not None:
        # No traceback: it returned something invalid (e.g. a bias of shape (N, out)).
        return f"{result.name} {'raised' if result.traceback else 'failed'}: {result.error}"
    if result.hints:
        return f"{result.name}: " + "; ".join(result.hints)
    return f"{result.name} failed"


def fd_failure(report: Report) -> str | None:
    """The reference's failure message (disagreeing entries, or parameters it cannot
    verify), or None when it passed."""
    fd = report.finite_difference
    if (fd is None or fd.ok) and report.unresolved:
        return f"inconclusive: {unresolved_text(report)}"
    if fd is None or fd.ok:
        return None
    return (
        f"{fd.failed} of {fd.checked} {fd.unit} disagree with central differences "
        f"(step {fd.step:g}); max rel err {num(fd.max_rel_err, '.3e')}"
    )


@dataclass(frozen=True)
class ParameterRow:
    """One row of the per-parameter table: the reference's norm and each backend's result."""

    name: str
    shape: str
    ref_norm: float | None
    cells: tuple[ParamResult | None, ...]  # per shown backend; None: not returned
    kinks: int


def shown_backends(report: Report) -> list[BackendResult]:
    """The backends that have per-parameter results (those that did not raise)."""
    return [r for r in report.backends if r.error is None]


def parameter_rows(report: Report) -> list[ParameterRow]:
    """The per-parameter table, in the problem's parameter order."""
    shown = shown_backends(report)
    fd = report.finite_difference
    kink_counts = fd.kink_counts if fd is not None else {}
    # Shapes from the problem: a directional reference has no per-entry estimates.
    arrays = dict(zip(report.problem.parameter_names, report.problem.parameters))
    rows = []
    for name in report.problem.parameter_names:
        ref = report.reference.get(name)
        norm = float(np.linalg.norm(ref)) if ref is not None and np.isfinite(ref).all() else None
        cells = tuple(next((p for p in r.params if p.name == name), None) for r in shown)
        rows.append(
            ParameterRow(
                name, shape_text(arrays[name].shape), norm, cells, kink_counts.get(name, 0)
            )
        )
    return rows
