"""run_checks(problem, backends, options) -> Report: compute, compare, judge. Pure; no printing."""

from __future__ import annotations

import time
import traceback as tb
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from ..backends.base import Backend
from ..errors import BackendError, InputError
from ..fd import FD_MODES
from ..problem import Gradients, Problem
from .judge import _diagnoser, judge_backend, pairwise_agreement, validate_gradients
from .policy import (
    UNRESOLVED_FRACTION,
    CheckOptions,
    _validate_options,
    gradient_scale,
    parameter_atols,
)
from .precision import rounding_noise
from .reference import build_reference
from .resolution import resolution_notes, resolutions
from .result import BackendResult, FiniteDifferenceSummary, Report


def _run_backend(
    backend: Backend, problem: Problem
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


def _check_finite_loss(problem: Problem) -> None:
    """A loss that overflows in float64 is bad input: otherwise every backend 'fails' with NaN
    gradients and the report blames them."""
    with np.errstate(all="ignore"):
        loss = problem.float64_loss()
    if not np.isfinite(loss):
        raise InputError(
            f"{problem.source}: the loss at these parameters is {loss} in float64 (the forward "
            "pass overflows); rescale X or the parameters"
        )


def run_checks(
    problem: Problem,
    backends: Sequence[Backend],
    options: CheckOptions | None = None,
    *,
    load_seconds: float = 0.0,
) -> Report:
    """Run every backend, build the reference, compare entry by entry, and judge."""
    options = options or CheckOptions()
    if options.fd_mode not in FD_MODES:
        raise InputError(
            f"unknown finite-difference mode {options.fd_mode!r}; "
            f"choose from: {', '.join(FD_MODES)}"
        )
    if not backends:
        raise InputError("no backend to check")
    _validate_options(options)
    _check_finite_loss(problem)
    gradients: dict[str, Gradients] = {}
    outcomes: dict[str, tuple[str, str | None]] = {}
    rejected: dict[str, Gradients] = {}  # returned, but failed validation: still diagnosable
    seconds: dict[str, float] = {}
    for backend in backends:
        grads, error, trace, seconds[backend.name] = _run_backend(backend, problem)
        if grads is not None and error is None:
            gradients[backend.name] = grads
        else:
            outcomes[backend.name] = (error or "failed", trace)
            if grads is not None:
                rejected[backend.name] = grads

    reference = replace(
        build_reference(problem, gradients, backends, options), noise=rounding_noise(problem)
    )
    rtol, atol = options.tolerances(problem.dtype, gradient_scale(reference.estimates, gradients))
    param_atol = parameter_atols(options, problem.dtype, reference.estimates, atol)

    results = []
    failed_entries = {
        n: np.zeros(p.shape, dtype=bool)
        for n, p in zip(problem.parameter_names, problem.parameters)
    }
    for backend in backends:
        if backend.name in outcomes:
            error, trace = outcomes[backend.name]
            diagnoser = _diagnoser(problem, reference, rtol)
            raw = rejected.get(backend.name)
            results.append(
                BackendResult(
                    backend.name,
                    backend.kind,
                    False,
                    error,
                    None,
                    None,
                    hints=tuple(diagnoser.rejected_hints(raw)) if diagnoser and raw else (),
                    traceback=trace,
                    seconds=seconds[backend.name],
                )
            )
            continue
        result, failed = judge_backend(
            backend,
            gradients[backend.name],
            reference,
            rtol,
            atol,
            seconds[backend.name],
            problem=problem,
            param_atol=param_atol,
        )
        results.append(result)
        for pname, mask in failed.items():
            failed_entries[pname] |= mask

    summary = None
    fd = reference.fd
    if fd is not None:
        failed_count = int(sum(int(m.sum()) for m in failed_entries.values()))
        rels = [p.max_rel_err for r in results for p in r.params if p.max_rel_err is not None]
        verdicts = [r.directional for r in results if r.directional is not None]
        if fd.directional is not None:
            # Directional mode counts failed directions, and errors of projections.
            failed_count = len({k for v in verdicts for k in v.failed})
            rels = [v.max_rel_err for v in verdicts if v.max_rel_err is not None]
        summary = FiniteDifferenceSummary(
            mode=fd.mode,
            step=fd.step,
            checked=fd.checked_count,
            failed=failed_count,
            kinks=fd.kink_count,
            max_rel_err=max(rels) if rels else None,
            ok=failed_count == 0,
            loss=fd.loss,
            estimates=fd.estimates,
            requested=fd.requested,
            order=fd.order,
            directions=fd.directional.count if fd.directional is not None else None,
            kink_entries=tuple(fd.kink_entries()),
            unresolved_kinks=fd.unresolved_count,
            kink_counts={n: int(m.sum()) for n, m in fd.kinks.items() if m.any()},
            max_error_estimate=fd.max_error,
        )
    resolution = resolutions(reference, atol, param_atol)
    unresolved = {
        name: {
            "cause": f"{problem.dtype} rounding" if r.noise >= r.fd_floor else "finite differences",
            "hidden": r.worst,
        }
        for name, r in resolution.items()
        if r.worst >= UNRESOLVED_FRACTION
    }
    return Report(
        ok=all(r.ok for r in results) and not unresolved,
        unresolved=unresolved,
        notes=tuple(resolution_notes(resolution, problem.dtype)),
        problem=problem,
        backends=tuple(results),
        agreement=pairwise_agreement(gradients, atol),
        finite_difference=summary,
        timings={"load": load_seconds, "backends": seconds, "finite_difference": reference.seconds},
        reference_name=reference.name,
        reference=reference.estimates,
        rtol=rtol,
        atol=atol,
    )
