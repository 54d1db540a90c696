"""run_checks(problem, backends, options) -> Report: compute, compare, judge. Pure; no printing.

Two tiers. Finite differences (float64) validate the built-in backends; where at least two
built-ins run, their float64 consensus, once validated, judges every other backend entry
by entry at rounding-level tolerance. With fewer built-ins (or on request) finite
differences judge everyone. No path leads to a passing report without a validated
reference: what the reference cannot resolve makes the run inconclusive.
"""

from __future__ import annotations

import time
import traceback as tb
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from ..backends.base import Backend
from ..errors import BackendError, InputError
from ..fd import FD_MODES
from ..problem import AnyProblem, Gradients, LayeredProblem
from .judge import _diagnoser, judge_backend, pairwise_agreement, validate_gradients
from .policy import DEFAULT_TOLERANCES, CheckOptions, Tolerance, tolerance, validate_options
from .precision import RoundingNoise, rounding_noise
from .reference import Reference, consensus, consensus_reference, fd_reference
from .resolution import (
    CAUSE_ZERO,
    all_zero,
    directional_unresolved,
    resolution_notes,
    resolutions,
    unresolved,
    validation_notes,
)
from .result import BackendResult, FiniteDifferenceSummary, Report, Validation
from .validation import validate

NO_REFERENCE = "no validated reference"


@dataclass
class _Run:
    """What running the backends produced."""

    gradients: dict[str, Gradients]
    errors: dict[str, tuple[str, str | None]]
    rejected: dict[str, Gradients]  # returned, but failed validation: still diagnosable
    seconds: dict[str, float]


def _run_backend(
    backend: Backend, problem: AnyProblem
) -> tuple[Gradients | None, str | None, str | None, float]:
    """Gradients or (error, traceback); the time it took.

    Gradients that fail validation (e.g. a bias of shape (N, out)) come back together with
    the error, so that diagnose can still explain them.
    """
    start = time.perf_counter()
    grads = None
    try:
        grads = backend.gradients(problem)
        validate_gradients(problem, grads)
        return grads, None, None, time.perf_counter() - start
    except InputError:
        raise  # a usage problem (e.g. no CUDA) stops the whole run with exit 2
    except BackendError as exc:
        return grads, str(exc), exc.traceback, time.perf_counter() - start
    except Exception as exc:  # a backend that raises is a finding, not a crash
        trace = "".join(tb.format_exception(type(exc), exc, exc.__traceback__))
        return None, f"{type(exc).__name__}: {exc}", trace, time.perf_counter() - start


def _run_all(backends: Sequence[Backend], problem: AnyProblem) -> _Run:
    run = _Run({}, {}, {}, {})
    for backend in backends:
        grads, error, trace, run.seconds[backend.name] = _run_backend(backend, problem)
        if grads is not None and error is None:
            run.gradients[backend.name] = grads
        else:
            run.errors[backend.name] = (error or "failed", trace)
            if grads is not None:
                run.rejected[backend.name] = grads
    return run


def _float64_builtins(
    backends: Sequence[Backend], problem: AnyProblem, run: _Run
) -> dict[str, Gradients]:
    """The float64 gradients of the built-ins that ran (run again in float64 if need be)."""
    builtins = [b for b in backends if b.kind == "builtin" and b.name in run.gradients]
    if problem.dtype == "float64":
        return {b.name: run.gradients[b.name] for b in builtins}
    wide = problem.with_dtype("float64")
    out = {}
    for backend in builtins:
        grads, error, _, _ = _run_backend(backend, wide)
        if grads is not None and error is None:
            out[backend.name] = grads
    return out


def _check_finite_loss(problem: AnyProblem) -> None:
    """A loss that overflows in float64 is bad input: otherwise every backend 'fails' with NaN
    gradients and the report blames them."""
    with np.errstate(all="ignore"):
        loss = problem.float64_loss()
    if not np.isfinite(loss):
        raise InputError(
            f"{problem.source}: the loss at these parameters is {loss} in float64 (the forward "
            "pass overflows); rescale X or the parameters"
        )


def _check_request(options: CheckOptions, backends: Sequence[Backend]) -> None:
    if options.fd_mode not in FD_MODES:
        raise InputError(
            f"unknown finite-difference mode {options.fd_mode!r}; "
            f"choose from: {', '.join(FD_MODES)}",
            arguments=("fd_mode",),
        )
    if not backends:
        raise InputError("no backend to check")
    validate_options(options)
    builtins = sum(1 for b in backends if b.kind == "builtin")
    if options.reference == "backends" and builtins < 2:
        raise InputError(
            "reference backends needs at least two built-in backends to form a consensus",
            arguments=("reference",),
        )
    if options.reference == "fd" and options.fd_mode == "off":
        raise InputError("reference fd needs finite differences, not fd off", arguments=("fd",))
    if options.fd_mode == "off" and len(backends) < 2:
        raise InputError(
            "fd off with a single backend leaves nothing to compare it with", arguments=("fd",)
        )


def run_checks(
    problem: AnyProblem,
    backends: Sequence[Backend],
    options: CheckOptions | None = None,
    *,
    load_seconds: float = 0.0,
) -> Report:
    """Run every backend, build and validate the references, compare entry by entry, judge."""
    options = options or CheckOptions()
    _check_request(options, backends)
    _check_finite_loss(problem)
    run = _run_all(backends, problem)
    float64 = _float64_builtins(backends, problem, run)
    noise = rounding_noise(problem)
    noise64 = noise if problem.dtype == "float64" else rounding_noise(problem.with_dtype("float64"))
    fd = fd_reference(problem, options) if options.fd_mode != "off" else None

    # Tier 1: the built-ins' float64 gradients against finite differences.
    fd_results: dict[str, BackendResult] = {}
    failed_entries: dict[str, np.ndarray] = {}  # entries any backend judged by FD failed
    if fd is not None:
        fd64 = replace(fd, noise=noise64)
        # A directional reference has no entries: scales come from the built-ins' median.
        median = consensus(float64, list(float64)) if float64 and not fd.estimates else {}
        fd_tol64 = tolerance(options, "fd", "float64", fd.estimates, median)
        for name in float64:
            fd_results[name], failed = judge_backend(
                name, "builtin", float64[name], fd64, fd_tol64, run.seconds[name], problem
            )
            _accumulate(failed_entries, failed)

    # Who judges the others: the consensus of the built-ins that finite differences
    # validated (all of them with finite differences off), or finite differences.
    members = [n for n in float64 if fd is None or fd_results[n].ok]
    use_consensus = options.reference != "fd" and len(members) >= 2
    agreed: Reference | None = None
    validation = None
    if use_consensus:
        agreed = replace(consensus_reference(problem, float64, members), noise=noise)
        tol64 = tolerance(options, "consensus", "float64", agreed.estimates)
        validation = validate(
            fd_results if fd is not None else None,
            float64,
            members,
            replace(agreed, noise=noise64),
            tol64,
        )
        users_ref = agreed
    elif fd is not None:
        users_ref = replace(fd, noise=noise)
    else:  # fd off and fewer than two built-ins: compare, but nothing validates the result
        users_ref = _unvalidated_consensus(problem, run.gradients, backends, noise)
    # A directional reference has no entries: scales come from the backends' median.
    median = {}
    if run.gradients and not users_ref.estimates:
        median = consensus(run.gradients, list(run.gradients))
    users_tol = tolerance(options, users_ref.kind, problem.dtype, users_ref.estimates, median)
    hint_rtol = DEFAULT_TOLERANCES[problem.dtype][0]

    results = []
    for backend in backends:
        name = backend.name
        if name in run.errors:
            results.append(_failed(backend, run, problem, users_ref, hint_rtol))
        elif backend.kind == "builtin" and problem.dtype == "float64" and name in fd_results:
            results.append(fd_results[name])
        else:
            result, failed = judge_backend(
                name,
                backend.kind,
                run.gradients[name],
                users_ref,
                users_tol,
                run.seconds[name],
                problem,
                hint_rtol,
            )
            if users_ref.kind == "fd":
                _accumulate(failed_entries, failed)
            results.append(result)

    fd_tol = tolerance(options, "fd", problem.dtype, fd.estimates) if fd is not None else None
    resolution = resolutions(users_ref, users_tol)
    missing = unresolved(resolution, problem.dtype, users_ref)
    notes = resolution_notes(resolution, problem.dtype)
    if agreed is not None and fd is not None:
        fd_check = resolutions(
            replace(fd, noise=noise64), tolerance(options, "fd", "float64", fd.estimates)
        )
        notes += validation_notes(fd_check)
    if validation is not None and not validation.ok:
        notes.append("the reference is in doubt: " + "; ".join(validation.problems))
    if fd is not None and fd.fd is not None and fd.fd.directional is not None:
        count = fd.fd.directional.count
        # A mistake in one entry moves every g.v; one spread over entries can cancel in some.
        notes.append(
            f"{count} random sign directions: a mistake that cancels in g.v (+a and -a in two "
            f"entries) goes unseen by each with probability up to 1/2, by all {count} with up "
            f"to {0.5**count:.1g} (more directions: --fd-samples)"
        )
    # A directional reference has no entries: whether the gradient is zero everywhere is
    # the validated built-ins' float64 gradients' to say (else the backends' median), or a
    # wrong backprop that returns zeros passes at an exact minimum.
    zero_source = users_ref
    if not users_ref.estimates:
        validated = [n for n in members if n in fd_results] or members
        zero_source = replace(
            users_ref, estimates=consensus(float64, validated) if validated else median
        )
    if all_zero(zero_source):
        missing = {n: {"cause": CAUSE_ZERO, "hidden": 1.0} for n in zero_source.estimates}
    elif agreed is None and fd is None:
        missing = {n: {"cause": NO_REFERENCE, "hidden": 1.0} for n in users_ref.estimates}
    else:
        notes += _zero_parameter_notes(users_ref)
        if fd is not None and users_ref.kind == "fd" and not users_ref.estimates:
            # Directional: what the validated built-ins' directions allow (theirs are the
            # gradients that are right), else any judged backend's.
            judged_by = list(fd_results.values()) or results
            allowed = [
                r.directional.allowed
                for r in judged_by
                if r.directional is not None and r.directional.allowed is not None
            ]
            scales = dict(zero_source.estimates)
            if isinstance(problem, LayeredProblem):  # zero by structure (before a batch norm)
                scales.update({n: np.zeros(1) for n in problem.zero_gradients() if n in scales})
            missing = {**missing, **directional_unresolved(allowed, scales)}
    ok = all(r.ok for r in results) and not missing and (validation is None or validation.ok)
    main_tol = fd_tol if fd_tol is not None else users_tol
    # The reference named on the report: what judged the user's functions, or with none,
    # what judged the built-ins (finite differences, as a run of the built-ins alone).
    shown = users_ref
    if fd is not None and all(r.reference != "consensus" for r in results):
        shown = fd
    return Report(
        ok=ok,
        unresolved=missing,
        notes=tuple(notes),
        problem=problem,
        backends=tuple(results),
        agreement=pairwise_agreement(run.gradients, main_tol.largest_atol),
        finite_difference=_fd_summary(fd, results, failed_entries) if fd is not None else None,
        timings={
            "load": load_seconds,
            "backends": run.seconds,
            "finite_difference": fd.seconds if fd is not None else 0.0,
        },
        reference_name=shown.name,
        reference=shown.estimates,
        rtol=main_tol.rtol,
        atol=main_tol.largest_atol,
        validation=validation,
        consensus=agreed.estimates if agreed is not None else {},
        consensus_rtol=users_tol.rtol if agreed is not None else None,
        consensus_atol=users_tol.largest_atol if agreed is not None else None,
    )


def _unvalidated_consensus(
    problem: AnyProblem,
    gradients: Mapping[str, Gradients],
    backends: Sequence[Backend],
    noise: RoundingNoise,
) -> Reference:
    """With finite differences off and fewer than two built-ins, the backends' median: shown,
    but the run is inconclusive (nothing independent validates it)."""
    builtins = [b.name for b in backends if b.kind == "builtin" and b.name in gradients]
    sources = builtins or list(gradients)
    if not sources:
        return replace(consensus_reference(problem, {}, []), name="no backend", noise=noise)
    return replace(consensus_reference(problem, gradients, sources), noise=noise)


def _failed(
    backend: Backend, run: _Run, problem: AnyProblem, reference: Reference, hint_rtol: float
) -> BackendResult:
    """The result of a backend that raised or returned something unusable."""
    error, trace = run.errors[backend.name]
    diagnoser = _diagnoser(problem, reference, hint_rtol)
    raw = run.rejected.get(backend.name)
    return BackendResult(
        backend.name,
        backend.kind,
        False,
        error,
        None,
        None,
        hints=tuple(diagnoser.rejected_hints(raw)) if diagnoser and raw else (),
        traceback=trace,
        seconds=run.seconds[backend.name],
    )


def _zero_parameter_notes(reference: Reference) -> list[str]:
    """Parameters whose gradient is exactly zero everywhere: only zeros can be checked there."""
    zero = [n for n, a in reference.estimates.items() if a.size and not np.any(a[np.isfinite(a)])]
    if not zero:
        return []
    return [
        f"the gradient of {', '.join(zero)} is exactly zero at these parameters (dead units, "
        "or a bias that a normalisation cancels): only that it is zero was checked"
    ]


def _accumulate(into: dict[str, np.ndarray], failed: Mapping[str, np.ndarray]) -> None:
    for name, mask in failed.items():
        into[name] = into[name] | mask if name in into else mask.copy()


def _fd_summary(
    fd: Reference, results: Sequence[BackendResult], failed_entries: Mapping[str, np.ndarray]
) -> FiniteDifferenceSummary:
    """How the backends judged against finite differences fared."""
    data = fd.fd
    assert data is not None
    judged = [r for r in results if r.reference == "finite differences"]
    failed = int(sum(int(m.sum()) for m in failed_entries.values()))
    rels = [p.max_rel_err for r in judged for p in r.params if p.max_rel_err is not None]
    verdicts = [r.directional for r in judged if r.directional is not None]
    if data.directional is not None:
        # Directional mode counts failed directions, and errors of projections.
        failed = len({k for v in verdicts for k in v.failed})
        rels = [v.max_rel_err for v in verdicts if v.max_rel_err is not None]
    return FiniteDifferenceSummary(
        mode=data.mode,
        step=data.step,
        checked=data.checked_count,
        failed=failed,
        kinks=data.kink_count,
        max_rel_err=max(rels) if rels else None,
        ok=failed == 0,
        loss=data.loss,
        estimates=data.estimates,
        requested=data.requested,
        order=data.order,
        directions=data.directional.count if data.directional is not None else None,
        kink_entries=tuple(data.kink_entries()),
        unresolved_kinks=data.unresolved_count,
        kink_counts={n: int(m.sum()) for n, m in data.kinks.items() if m.any()},
        max_error_estimate=data.max_error,
    )


__all__ = ["Tolerance", "Validation", "run_checks"]
