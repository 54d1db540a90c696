"""run_checks(problem, backends, options) -> Report: compute, compare, judge. Pure; no printing."""

from __future__ import annotations

import itertools
import time
import traceback as tb
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from .backends.base import Backend
from .diagnose import Diagnoser, Explanation
from .errors import BackendError, InputError
from .fd_batched import Progress
from .fd_directional import DirectionalVerdict
from .finite_diff import FD_MODES, FiniteDifferences, finite_differences
from .precision import RoundingNoise, rounding_noise
from .problem import Gradients, Problem

# Default tolerances by the dtype the backends compute in. An entry passes when
# |g - ref| <= atol + rtol * |ref| + FD_ERROR_FACTOR * (estimated error of ref).
# The default atol is relative to the gradient's scale (its largest reference
# entry): rounding errors scale with it, and a fixed absolute atol would wave
# through a factor-2 mistake on a nearly converged network with tiny gradients.
# float64: central differences with h = 1e-6 are accurate to ~1e-9 relative on
# smooth problems, so 1e-5 leaves a wide margin while any real mistake (a
# factor, a transpose, a missing term) is off by far more.
# float32: a float32 backprop through a few layers carries ~1e-6 relative
# rounding error (measured: |g32 - g64| <= 1.3e-6 x the largest entry over every
# activation x loss); 1e-3 and 1e-5 x scale still catch every structural mistake.
DEFAULT_TOLERANCES: dict[str, tuple[float, float]] = {
    "float64": (1e-5, 1e-8),
    "float32": (1e-3, 1e-5),
}
FD_ERROR_FACTOR = 3.0
# A correct float32 backend may differ from float64 by a few times the rounding noise
# measured with the NumPy backprop (other backends sum in other orders): allow 10x.
NOISE_FACTOR = 10.0
# Where a ReLU unit within float32 rounding of zero changes side, a correct backend may sit
# on either side: allow the measured per-entry jump, twice over (backends may flip a
# different subset of such units than the NumPy float32 run did).
KINK_FLIP_FACTOR = 2.0
# When the noise allowance of a parameter exceeds this fraction of its largest reference
# entry, a float32 check cannot see mistakes of that size there (nearly converged
# networks: 1e-6 residuals give 10-100%); the backend gets a hint saying so.
HIDDEN_ERROR_HINT = 0.1
# Where a check could miss a mistake of half a parameter's largest entry (a missing factor
# 2 of the square, a half-MSE), it has not verified that parameter: the run is
# inconclusive and fails (exit 1) instead of claiming agreement.
UNRESOLVED_FRACTION = 0.5


@dataclass(frozen=True)
class CheckOptions:
    """How to check: tolerances (None = the dtype's default) and the finite-difference mode."""

    rtol: float | None = None
    atol: float | None = None
    fd_mode: str = "auto"
    fd_step: float | None = None  # None: the default step rule of finite_diff
    fd_samples: int | None = None  # entries (sample) or directions (directional)
    fd_order: int = 2
    seed: int = 0
    progress: Progress | None = field(default=None, compare=False, repr=False)

    def tolerances(self, dtype: str, scale: float = 1.0) -> tuple[float, float]:
        """(rtol, atol) for backends computing in `dtype`; the default atol is `scale` x the
        dtype's factor (an explicit atol is absolute)."""
        rtol, atol_factor = DEFAULT_TOLERANCES[dtype]
        return (
            self.rtol if self.rtol is not None else rtol,
            self.atol if self.atol is not None else atol_factor * scale,
        )


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


@dataclass(frozen=True, eq=False)
class Report:
    """The outcome of a check; `to_dict()` is the JSON report."""

    ok: bool
    problem: Problem
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

    def to_dict(self) -> dict[str, Any]:
        """The JSON report (schema in DESIGN.md / README)."""
        fd = self.finite_difference
        return {
            "ok": self.ok,
            "problem": self.problem.summary(),
            "backends": [b.to_dict() for b in self.backends],
            "agreement": dict(self.agreement),
            "finite_difference": fd.to_dict() if fd is not None else {"mode": "off"},
            "reference": self.reference_name,
            "tolerances": {"rtol": self.rtol, "atol": self.atol},
            "unresolved": dict(self.unresolved),
            "notes": list(self.notes),
            "timings": self.timings,
        }

    def unresolved_text(self) -> str:
        """Why the run could not verify some parameters, and what to do about it."""
        by_cause: dict[str, list[str]] = {}
        for name, info in self.unresolved.items():
            by_cause.setdefault(info["cause"], []).append(name)
        parts = []
        for cause, names in by_cause.items():
            hidden = min(self.unresolved[n]["hidden"] for n in names)
            fix = "--dtype float64" if "rounding" in cause else "a larger --fd-step or --fd off"
            parts.append(
                f"{cause} could hide mistakes of {hidden:.0%} or more of the largest entry in "
                f"{', '.join(names)} (rerun with {fix})"
            )
        return "cannot verify every parameter: " + "; ".join(parts)

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

    def __rich__(self) -> Any:
        """The full tables and findings when printed with rich (report.py, imported lazily)."""
        from .report import render

        return render(self)

    def _repr_html_(self) -> str:
        """The rich rendering as HTML, for Jupyter."""
        from .report import to_html

        return to_html(self)


def relative_errors(values: np.ndarray, reference: np.ndarray, atol: float) -> np.ndarray:
    """|v - r| / max(|v|, |r|, atol): entries near zero are measured against atol."""
    scale = np.maximum(np.maximum(np.abs(values), np.abs(reference)), atol)
    # With atol 0, an entry that is exactly 0 in both (a dead unit) is 0/0: it agrees, so 0,
    # not a NaN that would leak into the table and make the JSON invalid.
    with np.errstate(invalid="ignore", divide="ignore"):
        rel = np.abs(values - reference) / scale
    return np.asarray(np.where(scale > 0, rel, 0.0))


def validate_gradients(problem: Problem, grads: Gradients) -> None:
    """Raise BackendError when the gradients do not have the problem's shapes or are not finite."""
    for label, arrays, params in (
        ("DW", grads.dW, problem.weights),
        ("DB", grads.dB, problem.biases),
    ):
        if arrays is None:
            continue
        if len(arrays) != len(params):
            raise BackendError(f"returned {len(arrays)} arrays for {label}; expected {len(params)}")
        for i, (g, p) in enumerate(zip(arrays, params)):
            g = np.asarray(g)
            if g.shape != p.shape:
                raise BackendError(
                    f"{label}[{i}] has shape {tuple(g.shape)}; expected {tuple(p.shape)}"
                )
            if g.dtype.kind not in "biuf":
                raise BackendError(f"{label}[{i}] has dtype {g.dtype}; expected numbers")
            if not np.isfinite(g).all():
                index = tuple(int(k) for k in np.argwhere(~np.isfinite(g))[0])
                raise BackendError(f"{label}[{i}]{list(index)} is {g[index]}; expected finite")


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


def _consensus(results: dict[str, Gradients], names: Sequence[str]) -> dict[str, np.ndarray]:
    """Elementwise median of the backends `names` (robust to one wrong backend among three)."""
    by_param: dict[str, list[np.ndarray]] = {}
    for name in names:
        for pname, g in results[name].by_name().items():
            by_param.setdefault(pname, []).append(np.asarray(g, dtype=np.float64))
    return {p: np.median(np.stack(gs), axis=0) for p, gs in by_param.items()}


@dataclass(frozen=True, eq=False)
class Reference:
    """What the backends are judged against: estimates per parameter and how far to trust them."""

    name: str
    estimates: dict[str, np.ndarray]
    error: dict[str, np.ndarray]  # estimated absolute error of each estimate
    checked: dict[str, np.ndarray]  # entries that have an estimate
    kinks: dict[str, np.ndarray]  # kink entries with no kink-free estimate: not judged
    loss: float
    fd: FiniteDifferences | None = None
    seconds: float = 0.0
    # Measured rounding noise of the backends' dtype (zero for float64), see precision.py.
    noise: RoundingNoise | None = None


def build_reference(
    problem: Problem,
    gradients: dict[str, Gradients],
    backends: Sequence[Backend],
    options: CheckOptions,
) -> Reference:
    """Finite differences, or with --fd off the consensus of the built-in backends."""
    if options.fd_mode != "off":
        start = time.perf_counter()
        fd = finite_differences(
            problem,
            options.fd_step,
            mode=options.fd_mode,
            order=options.fd_order,
            samples=options.fd_samples,
            seed=options.seed,
            progress=options.progress,
        )
        return Reference(
            name="finite differences" if fd.mode == "full" else f"finite differences ({fd.mode})",
            estimates=fd.estimates,
            error=fd.error,
            checked=fd.checked,
            # Kinks resolved by a smaller step or a one-sided difference are judged.
            kinks=fd.unresolved,
            loss=fd.loss,
            fd=fd,
            seconds=time.perf_counter() - start,
        )
    if len(backends) < 2:
        raise InputError("--fd off with a single backend leaves nothing to compare it with")
    builtins = [b.name for b in backends if b.kind == "builtin" and b.name in gradients]
    sources = builtins or list(gradients)
    estimates = _consensus(gradients, sources) if sources else {}
    loss = problem.float64_loss()
    return Reference(
        name="consensus of " + (", ".join(sources) if sources else "no backend"),
        estimates=estimates,
        error={n: np.zeros_like(a) for n, a in estimates.items()},
        checked={n: np.ones(a.shape, dtype=bool) for n, a in estimates.items()},
        kinks={n: np.zeros(a.shape, dtype=bool) for n, a in estimates.items()},
        loss=loss,
    )


def noise_allowance(noise: RoundingNoise | None, name: str) -> np.ndarray | float:
    """Per-entry allowance for a correct backend's rounding in its dtype (0 in float64)."""
    if noise is None:
        return 0.0
    allowed: np.ndarray | float = NOISE_FACTOR * noise.params.get(name, 0.0)
    if name in noise.kink_flips:
        allowed = allowed + KINK_FLIP_FACTOR * noise.kink_flips[name]
    return allowed


def compare_parameter(
    name: str, g: np.ndarray, reference: Reference, rtol: float, atol: float
) -> tuple[ParamResult, np.ndarray]:
    """Judge one gradient array entry by entry; also return the mask of failing entries."""
    g = np.asarray(g, dtype=np.float64)
    ref = reference.estimates.get(name)
    norm = float(np.linalg.norm(g))
    if ref is None:
        return ParamResult(name, g.shape, norm, None, None, True, None), np.zeros(g.shape, bool)
    mask = reference.checked[name] & ~reference.kinks[name]
    abs_err = np.abs(g - ref)
    allowed = atol + rtol * np.abs(ref) + FD_ERROR_FACTOR * reference.error[name]
    allowed = allowed + noise_allowance(reference.noise, name)
    bad = mask & (abs_err > allowed)
    worst: tuple[int, ...] | None = None
    max_abs = max_rel = None
    if mask.any():
        rel = relative_errors(g, ref, atol)
        flat = int(np.argmax(np.where(mask, rel, -1.0)))
        worst = tuple(int(i) for i in np.unravel_index(flat, g.shape))
        max_abs = float(abs_err[mask].max())
        max_rel = float(rel[mask].max())
    result = ParamResult(
        name=name,
        shape=tuple(g.shape),
        norm=norm,
        max_abs_err=max_abs,
        max_rel_err=max_rel,
        ok=not bad.any(),
        worst_index=worst,
    )
    return result, bad


def judge_backend(
    backend: Backend,
    grads: Gradients,
    reference: Reference,
    rtol: float,
    atol: float,
    seconds: float,
    problem: Problem | None = None,
    param_atol: dict[str, float] | None = None,
) -> tuple[BackendResult, dict[str, np.ndarray]]:
    """Compare every parameter and the loss of one backend; return its result and failed entries.

    With the `problem`, each failing parameter gets diagnose's best explanation as its hint.
    `param_atol` overrides `atol` per parameter (the default atol scales with each one).
    """
    params, failed = [], {}
    hints = list(grads.notes)
    diagnoser = _diagnoser(problem, reference, rtol)
    explained: dict[str, Explanation] = {}
    param_atol = param_atol or {}
    for pname, g in grads.by_name().items():
        param, failed[pname] = compare_parameter(
            pname, g, reference, rtol, param_atol.get(pname, atol)
        )
        if not param.ok and diagnoser is not None:
            explanation = diagnoser.explain(pname, g, failed[pname])
            if explanation is not None:
                explained[pname] = explanation
                param = replace(param, hint=explanation.message)
        params.append(param)
    if diagnoser is not None:
        hints.extend(diagnoser.summary(explained))
    directional = _directional_verdict(grads, reference, rtol, atol)
    if directional is not None and not directional.ok:
        params = [_mark_directional(p, directional) for p in params]
        hints.append(directional.hint() or "")
    loss_noise = NOISE_FACTOR * reference.noise.loss if reference.noise is not None else 0.0
    loss_ok = grads.loss is None or bool(
        np.isclose(grads.loss, reference.loss, rtol=rtol, atol=atol + loss_noise)
    )
    if not loss_ok:
        hints.append(
            f"loss {grads.loss:.10g} differs from the float64 reference {reference.loss:.10g}"
        )
    if grads.dB is None:
        hints.append("biases were not returned; only the weights were checked")
    result = BackendResult(
        name=backend.name,
        kind=backend.kind,
        ok=loss_ok and all(p.ok for p in params) and (directional is None or directional.ok),
        error=None,
        loss=grads.loss,
        first_weight_grad=float(np.asarray(grads.dW[0]).reshape(-1)[0]),
        params=tuple(params),
        hints=tuple(hints),
        seconds=seconds,
        gradients=grads,
        directional=directional,
    )
    return result, failed


@dataclass(frozen=True)
class Resolution:
    """How large a mistake in one parameter the check could miss, as fractions of the
    parameter's largest reference entry: through the dtype's rounding noise allowance, and
    through finite differences' own floor (atol + 3 x the estimate's error)."""

    size: float
    noise: float
    fd_floor: float

    @property
    def worst(self) -> float:
        """The larger of the two fractions."""
        return max(self.noise, self.fd_floor)


def resolutions(
    reference: Reference, atol: float, param_atol: dict[str, float]
) -> dict[str, Resolution]:
    """The Resolution of every parameter that has per-entry reference values."""
    out = {}
    directional = reference.fd is not None and reference.fd.directional is not None
    for name, ref in reference.estimates.items():
        mask = reference.checked[name] & ~reference.kinks[name] & np.isfinite(ref)
        if directional or not mask.any():
            continue
        size = float(np.abs(ref[mask]).max())
        if size == 0:
            continue
        noise = NOISE_FACTOR * reference.noise.params.get(name, 0.0) if reference.noise else 0.0
        fd_floor = 0.0
        if reference.fd is not None:
            error = float(reference.error[name][mask].max())
            fd_floor = param_atol.get(name, atol) + FD_ERROR_FACTOR * error
        out[name] = Resolution(size, noise / size, fd_floor / size)
    return out


def resolution_notes(resolution: dict[str, Resolution], dtype: str) -> list[str]:
    """Notes on parameters where the check could miss mistakes of over 10% (the same for
    every backend, so said once per report)."""
    return _precision_note(resolution, dtype) + _fd_floor_note(resolution)


def _precision_note(resolution: dict[str, Resolution], dtype: str) -> list[str]:
    """Say so when the dtype's measured rounding noise is large enough to hide a mistake."""
    hidden = [f"{n} {r.noise:.0%}" for n, r in resolution.items() if r.noise > HIDDEN_ERROR_HINT]
    if not hidden:
        return []
    return [
        f"{dtype} rounding on this problem (measured) is large enough to hide errors up to "
        f"{', '.join(hidden)} of each parameter's largest entry (a nearly converged network "
        f"loses digits to cancellation in Y - T); rerun with --dtype float64 to check them"
    ]


def _fd_floor_note(resolution: dict[str, Resolution]) -> list[str]:
    """Say so when a parameter's gradient is too small for finite differences to check."""
    hidden = [
        f"{name} (largest entry {r.size:.1e}, errors up to {r.fd_floor * r.size:.1e} unseen)"
        for name, r in resolution.items()
        if r.fd_floor > HIDDEN_ERROR_HINT
    ]
    if not hidden:
        return []
    return [
        "too small for finite differences to check (atol + 3 x the estimate's error is over "
        f"10% of the gradient): {', '.join(hidden)}; compare the backends directly with "
        "--fd off and a smaller --atol"
    ]


def _directional_verdict(
    grads: Gradients, reference: Reference, rtol: float, atol: float
) -> DirectionalVerdict | None:
    """In directional mode: g.v against the FD derivative on every random direction."""
    if reference.fd is None or reference.fd.directional is None:
        return None
    named = {n: np.asarray(g, dtype=np.float64) for n, g in grads.by_name().items()}
    # float32: the per-entry noise allowance of full mode, summed along each direction.
    noise = {n: np.asarray(noise_allowance(reference.noise, n)) for n in named}
    return reference.fd.directional.judge(named, rtol, atol, FD_ERROR_FACTOR, noise)


def _mark_directional(param: ParamResult, verdict: DirectionalVerdict) -> ParamResult:
    """The parameter bisection localised a failing direction to is marked failed."""
    if param.name != verdict.param:
        return param
    return replace(param, ok=False, worst_index=verdict.index, max_rel_err=verdict.param_rel_err)


def _diagnoser(problem: Problem | None, reference: Reference, rtol: float) -> Diagnoser | None:
    """A Diagnoser against the reference's usable entries (checked, not at a kink)."""
    if problem is None:
        return None
    usable = {n: reference.checked[n] & ~reference.kinks[n] for n in reference.estimates}
    return Diagnoser(problem, reference.estimates, usable, rtol)


def pairwise_agreement(gradients: dict[str, Gradients], atol: float) -> dict[str, float]:
    """Max relative difference between every pair of backends, over the parameters both return."""
    agreement = {}
    for a, b in itertools.combinations(gradients, 2):
        ga, gb = gradients[a].by_name(), gradients[b].by_name()
        agreement[f"{a}~{b}"] = max(
            float(
                relative_errors(
                    np.asarray(ga[p], np.float64), np.asarray(gb[p], np.float64), atol
                ).max()
            )
            for p in ga
            if p in gb
        )
    return agreement


def gradient_scale(reference: Reference, gradients: dict[str, Gradients]) -> float:
    """The largest |entry| of the reference gradient (or, where the reference has no entries,
    as in directional mode, the median over backends of theirs); 1.0 for an all-zero gradient."""
    finite = [
        np.abs(a[np.isfinite(a)]).max()
        for a in reference.estimates.values()
        if np.isfinite(a).any()
    ]
    if finite:
        scale = float(max(finite))
    else:
        per_backend = [
            max(float(np.abs(np.asarray(g, np.float64)).max()) for g in grads.by_name().values())
            for grads in gradients.values()
        ]
        scale = float(np.median(per_backend)) if per_backend else 0.0
    return scale if scale > 0 else 1.0


def _validate_options(options: CheckOptions) -> None:
    """Nonsense settings are bad input: a NaN or negative tolerance would judge every
    entry (or none) without saying so, and a negative seed crashed NumPy's generator."""
    if options.fd_step is not None and not 0 < options.fd_step < np.inf:
        raise InputError(f"--fd-step must be positive and finite, got {options.fd_step}")
    for flag, value in (("--rtol", options.rtol), ("--atol", options.atol)):
        if value is not None and not 0 <= value < np.inf:
            raise InputError(f"{flag} must be a finite number >= 0, got {value}")
    if options.seed < 0:
        raise InputError(f"--seed must be >= 0, got {options.seed}")


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


def parameter_atols(
    options: CheckOptions, dtype: str, reference: Reference, atol: float
) -> dict[str, float]:
    """The default atol of each parameter: the dtype's factor x its own largest reference entry.

    The global scale (the largest entry of any parameter) let a factor 2 through on early
    layers with vanishing gradients (a 10-layer sigmoid network in float32: W0's entries
    ~6e-7, below an atol of 1e-5 x 0.1); rounding errors scale with each parameter's own
    magnitude, and the measured float32 noise is allowed on top. An explicit atol is absolute.
    """
    if options.atol is not None:
        return {}
    out = {}
    for name, estimate in reference.estimates.items():
        finite = np.abs(estimate[np.isfinite(estimate)])
        if finite.size and finite.max() > 0:
            out[name] = min(atol, options.tolerances(dtype, float(finite.max()))[1])
    return out


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
    rtol, atol = options.tolerances(problem.dtype, gradient_scale(reference, gradients))
    param_atol = parameter_atols(options, problem.dtype, reference, atol)

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
