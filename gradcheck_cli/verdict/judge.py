"""Judge one backend's gradients against the reference, entry by entry, and explain failures."""

from __future__ import annotations

import itertools
from dataclasses import replace

import numpy as np

from ..backends.base import Backend
from ..errors import BackendError
from ..fd.directional import DirectionalVerdict
from ..problem import Gradients, Problem
from .diagnose import Diagnoser, Explanation
from .policy import FD_ERROR_FACTOR, KINK_FLIP_FACTOR, NOISE_FACTOR
from .precision import RoundingNoise
from .reference import Reference
from .result import BackendResult, ParamResult


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
