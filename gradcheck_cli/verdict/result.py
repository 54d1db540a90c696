"""The results of a check as frozen data; `Report.to_dict()` is the JSON report."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..fd.directional import DirectionalVerdict
from ..problem import AnyProblem, Gradients


@dataclass(frozen=True)
class ParamResult:
    """One parameter of one backend compared with the reference."""

    name: str
    shape: tuple[int, ...]
    norm: float
    max_abs_err: float | None
    max_rel_err: float | None
    ok: bool
    worst_index: tuple[int, ...] | None
    hint: str | None = None
    # The largest error the check lets pass at an entry, as a fraction of the parameter's
    # largest reference entry (entries at a ReLU kink aside); None without a scale.
    sensitivity: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "name": self.name,
            "shape": list(self.shape),
            "norm": self.norm,
            "max_abs_err": self.max_abs_err,
            "max_rel_err": self.max_rel_err,
            "ok": self.ok,
            "worst_index": list(self.worst_index) if self.worst_index is not None else None,
            "hint": self.hint,
            "sensitivity": self.sensitivity,
        }


@dataclass(frozen=True, eq=False)
class BackendResult:
    """Everything known about one backend's run."""

    name: str
    kind: str
    ok: bool
    error: str | None
    loss: float | None
    first_weight_grad: float | None
    params: tuple[ParamResult, ...] = ()
    hints: tuple[str, ...] = ()
    traceback: str | None = None
    seconds: float = 0.0
    gradients: Gradients | None = field(default=None, repr=False)
    directional: DirectionalVerdict | None = field(default=None, repr=False)
    reference: str | None = None  # what judged it: "finite differences" or "consensus"
    sensitivity: float | None = None  # the largest of its parameters' sensitivities

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "name": self.name,
            "kind": self.kind,
            "ok": self.ok,
            "error": self.error,
            "loss": self.loss,
            "first_weight_grad": self.first_weight_grad,
            "params": [p.to_dict() for p in self.params],
            "hints": list(self.hints),
            "traceback": self.traceback,
            "reference": self.reference,
            "sensitivity": self.sensitivity,
        }


@dataclass(frozen=True, eq=False)
class FiniteDifferenceSummary:
    """The finite-difference reference and how the backends fared against it."""

    mode: str
    step: float
    checked: int
    failed: int
    kinks: int
    max_rel_err: float | None
    ok: bool
    loss: float
    estimates: dict[str, np.ndarray] = field(repr=False, default_factory=dict)
    requested: str = "full"
    order: int = 2
    directions: int | None = None  # directional mode: how many random directions
    kink_entries: tuple[dict[str, Any], ...] = ()  # the first kink entries, with `resolved`
    unresolved_kinks: int = 0  # kink entries left unjudged
    kink_counts: dict[str, int] = field(default_factory=dict)  # kink entries per parameter
    max_error_estimate: float | None = None

    @property
    def unit(self) -> str:
        """What `checked` and `failed` count: "directions" in directional mode, else "entries"."""
        return "directions" if self.directions is not None else "entries"

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "mode": self.mode,
            "step": self.step,
            "checked": self.checked,
            "failed": self.failed,
            "kinks": self.kinks,
            "max_rel_err": self.max_rel_err,
            "ok": self.ok,
            "requested": self.requested,
            "order": self.order,
            "directions": self.directions,
            "kink_entries": list(self.kink_entries),
            "unresolved_kinks": self.unresolved_kinks,
            "kinks_by_param": dict(self.kink_counts),
            "max_error_estimate": self.max_error_estimate,
        }


@dataclass(frozen=True)
class Validation:
    """The verdict on the reference itself."""

    by: str  # "finite differences" or "agreement" (finite differences off)
    members: tuple[str, ...]
    ok: bool
    agreement: float | None  # the largest relative difference between two members
    problems: tuple[str, ...] = ()  # why it is not ok, one line each

    def to_dict(self) -> dict[str, object]:
        """JSON form."""
        return {
            "by": self.by,
            "backends": list(self.members),
            "ok": self.ok,
            "agreement": self.agreement,
            "problems": list(self.problems),
        }


@dataclass(frozen=True, eq=False)
class Report:
    """The outcome of a check; `to_dict()` is the JSON report."""

    ok: bool
    problem: AnyProblem
    backends: tuple[BackendResult, ...]
    agreement: dict[str, float]
    finite_difference: FiniteDifferenceSummary | None
    timings: dict[str, Any]
    reference_name: str
    reference: dict[str, np.ndarray] = field(repr=False, default_factory=dict)
    rtol: float = 0.0
    atol: float = 0.0
    # Parameters the check cannot verify: name -> {"cause": why, "hidden": the size of a
    # mistake that could go unseen, as a fraction of the parameter's largest entry (>= 0.5)}.
    unresolved: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Said once for the whole run (e.g. where float32 rounding could hide a 10% mistake).
    notes: tuple[str, ...] = ()
    # The built-ins' float64 consensus, when it judged the user's functions: how it was
    # validated, and the tolerance of the comparison (rtol, the largest atol).
    validation: Validation | None = None
    consensus: dict[str, np.ndarray] = field(repr=False, default_factory=dict)
    consensus_rtol: float | None = None
    consensus_atol: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON report (its schema: the README's JSON report section)."""
        fd = self.finite_difference
        return {
            "schema_version": 1,  # of gradcheck_cli/schema/report.schema.json
            "ok": self.ok,
            "problem": self.problem.summary(),
            "backends": [b.to_dict() for b in self.backends],
            "agreement": dict(self.agreement),
            "finite_difference": fd.to_dict() if fd is not None else {"mode": "off"},
            "reference": self.reference_name,
            "tolerances": {
                "rtol": self.rtol,
                "atol": self.atol,
                "consensus": (
                    {"rtol": self.consensus_rtol, "atol": self.consensus_atol}
                    if self.validation is not None
                    else None
                ),
            },
            "validation": self.validation.to_dict() if self.validation is not None else None,
            "unresolved": dict(self.unresolved),
            "notes": list(self.notes),
            "timings": self.timings,
        }

    def backend(self, name: str) -> BackendResult:
        """The result of the backend called `name`."""
        for result in self.backends:
            if result.name == name:
                return result
        raise KeyError(name)

    def __repr__(self) -> str:
        verdict = "ok" if self.ok else "FAILED"
        names = ", ".join(f"{b.name}={'ok' if b.ok else 'FAIL'}" for b in self.backends)
        return f"<Report {verdict}: {names}; reference {self.reference_name}>"
