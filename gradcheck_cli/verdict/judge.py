"""Judge one backend's gradients against a reference, entry by entry, and explain failures.

One formula for every reference: an entry passes when

    |g - ref| <= atol + rtol |ref| + 3 x error(ref) + 10 x noise(param) + 2 x flip(entry)

where error(ref) is zero for the consensus, noise is the measured rounding noise of the
dtype, and flip is the gradient's jump where ReLU units at their kink change side.
"""

from __future__ import annotations

import itertools
from dataclasses import replace

import numpy as np

from ..errors import BackendError
from ..fd.directional import DirectionalVerdict, TensorDirection
from ..problem import AnyProblem, Gradients, LayeredProblem
from .diagnose import Diagnoser, Explanation
from .noise import RoundingNoise
from .policy import FD_ERROR_FACTOR, KINK_FLIP_FACTOR, NOISE_FACTOR, Tolerance
from .reference import CONSENSUS, Reference
from .result import BackendResult, ParamResult

REFERENCE_NAMES = {CONSENSUS: "consensus", "fd": "finite differences"}
# A backend's loss may differ from the float64 reference by this many ulps of its dtype
# (plus the measured rounding noise of the loss).
LOSS_ULPS = 16.0


def relative_errors(values: np.ndarray, reference: np.ndarray, atol: float) -> np.ndarray:
    """|v - r| / max(|v|, |r|, atol): entries near zero are measured against atol."""
    scale = np.maximum(np.maximum(np.abs(values), np.abs(reference)), atol)
    # With atol 0, an entry that is exactly 0 in both (a dead unit) is 0/0: it agrees, so 0,
    # not a NaN that would leak into the table and make the JSON invalid.
    with np.errstate(invalid="ignore", divide="ignore"):
        rel = np.abs(values - reference) / scale
    return np.asarray(np.where(scale > 0, rel, 0.0))


def _validate_named(problem: AnyProblem, grads: Gradients) -> None:
    """Gradients keyed by parameter name: every name, no other, each of its shape, finite."""
    named = grads.by_name()
    expected = dict(zip(problem.parameter_names, problem.parameters))
    missing = [n for n in expected if n not in named]
    if missing:
        raise BackendError(
            f"returned no gradient for {', '.join(missing)} (expected {', '.join(expected)})"
        )
    extra = [str(n) for n in named if n not in expected]
    if extra:
        raise BackendError(
            f"returned gradients for {', '.join(extra)}, which are not parameters "
            f"(expected {', '.join(expected)})"
        )
    for name, p in expected.items():
        g = np.asarray(named[name])
        if g.shape != p.shape:
            raise BackendError(f"{name} has shape {tuple(g.shape)}; expected {tuple(p.shape)}")
        if g.dtype.kind not in "biuf":
            raise BackendError(f"{name} has dtype {g.dtype}; expected numbers")
        if not np.isfinite(g).all():
            index = tuple(int(k) for k in np.argwhere(~np.isfinite(g))[0])
            raise BackendError(f"{name}{list(index)} is {g[index]}; expected finite")


def validate_gradients(problem: AnyProblem, grads: Gradients) -> None:
    """Raise BackendError when the gradients do not have the problem's shapes or are not finite."""
    if grads.named is not None or isinstance(problem, LayeredProblem):
        _validate_named(problem, grads)
        return
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


def scaled_norm(g: np.ndarray) -> float:
    """||g||, computed as max|g| x ||g / max|g||| so that entries near 1e300 do not overflow."""
    largest = float(np.abs(g).max()) if g.size else 0.0
    if largest == 0.0 or not np.isfinite(largest):
        return largest
    return largest * float(np.linalg.norm(g / largest))


def noise_floor(noise: RoundingNoise | None, name: str) -> float:
    """The allowance for a correct backend's rounding, the same for every entry of `name`:
    ten times the measured noise, plus the bound on what no measurement samples."""
    if noise is None:
        return 0.0
    return NOISE_FACTOR * noise.params.get(name, 0.0) + noise.bounds.get(name, 0.0)


def flip_allowance(noise: RoundingNoise | None, name: str) -> np.ndarray | float:
    """Per entry, the allowance for ReLU units at their kink taking the other side."""
    if noise is None or name not in noise.kink_flips:
        return 0.0
    return KINK_FLIP_FACTOR * noise.kink_flips[name]


def kink_alternative(
    noise: RoundingNoise | None, name: str, reference: np.ndarray
) -> np.ndarray | None:
    """With one unit at its kink: the other value a correct entry may take, the side of the
    kink that `reference` is not on (a median of backends may sit on either)."""
    if noise is None or noise.kink_units != 1 or name not in noise.kink_jumps:
        return None
    jump = noise.kink_jumps[name]
    base = noise.kink_base.get(name)
    if base is None:
        return np.asarray(reference + jump)
    other = base + jump
    return np.asarray(np.where(np.abs(reference - base) <= np.abs(reference - other), other, base))


def noise_allowance(noise: RoundingNoise | None, name: str) -> np.ndarray | float:
    """Per-entry allowance for a correct backend's rounding in its dtype, flips included."""
    return noise_floor(noise, name) + flip_allowance(noise, name)


def base_allowance(reference: Reference, name: str, tolerance: Tolerance) -> np.ndarray:
    """What an entry may differ by, without the kink flips: the check's sensitivity."""
    ref = reference.estimates[name]
    allowed = (
        tolerance.atol[name]
        + tolerance.rtol * np.abs(ref)
        + FD_ERROR_FACTOR * reference.error[name]
        + noise_floor(reference.noise, name)
    )
    return np.asarray(np.broadcast_to(allowed, ref.shape))


def judged(reference: Reference, name: str) -> np.ndarray:
    """The entries of `name` the reference judges: estimated, finite, not at an unresolved kink."""
    ref = reference.estimates[name]
    return np.asarray(reference.checked[name] & ~reference.kinks[name] & np.isfinite(ref))


def sensitivity(reference: Reference, name: str, tolerance: Tolerance) -> float | None:
    """The largest error the check lets pass at an entry (kink flips aside), as a fraction of
    the parameter's largest reference entry; None where the reference has no scale."""
    mask = judged(reference, name)
    if not mask.any():
        return None
    scale = float(np.abs(reference.estimates[name][mask]).max())
    if scale == 0:
        return None
    return float(base_allowance(reference, name, tolerance)[mask].max()) / scale


def compare_parameter(
    name: str, g: np.ndarray, reference: Reference, tolerance: Tolerance
) -> tuple[ParamResult, np.ndarray]:
    """Judge one gradient array entry by entry; also return the mask of failing entries."""
    g = np.asarray(g, dtype=np.float64)
    norm = scaled_norm(g)
    if name not in reference.estimates:
        return ParamResult(name, g.shape, norm, None, None, True, None), np.zeros(g.shape, bool)
    ref = reference.estimates[name]
    mask = judged(reference, name)
    abs_err = np.abs(g - ref)
    base = base_allowance(reference, name, tolerance)
    alternative = kink_alternative(reference.noise, name, ref)
    if alternative is not None:  # either side of the one unit at its kink, nothing between
        bad = mask & ~(abs_err <= base) & ~(np.abs(g - alternative) <= base)
    else:
        bad = mask & ~(abs_err <= base + flip_allowance(reference.noise, name))
    worst: tuple[int, ...] | None = None
    max_abs = max_rel = None
    atol = tolerance.atol[name]
    if mask.any():
        rel = relative_errors(g, np.where(mask, ref, 0.0), atol)
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
        sensitivity=sensitivity(reference, name, tolerance),
    )
    return result, bad


def judge_backend(
    name: str,
    kind: str,
    grads: Gradients,
    reference: Reference,
    tolerance: Tolerance,
    seconds: float,
    problem: AnyProblem | None = None,
    hint_rtol: float = 1e-5,
) -> tuple[BackendResult, dict[str, np.ndarray]]:
    """Compare every parameter and the loss of one backend; return its result and failed entries.

    With the `problem`, each failing parameter gets diagnose's best explanation as its hint
    (a model fits when its residual is within 10 x `hint_rtol`).
    """
    params, failed = [], {}
    hints = list(grads.notes)
    diagnoser = _diagnoser(problem, reference, hint_rtol)
    explained: dict[str, Explanation] = {}
    for pname, g in grads.by_name().items():
        param, failed[pname] = compare_parameter(pname, g, reference, tolerance)
        if not param.ok and diagnoser is not None:
            explanation = diagnoser.explain(pname, g, failed[pname])
            if explanation is not None:
                explained[pname] = explanation
                param = replace(param, hint=explanation.message)
        params.append(param)
    if diagnoser is not None:
        hints.extend(diagnoser.summary(explained))
    params, tensor_hints = _tensor_directions(params, grads, reference, tolerance)
    hints.extend(tensor_hints)
    directional = _directional_verdict(grads, reference, tolerance)
    if directional is not None:
        params = [_directional_sensitivity(p, grads, directional) for p in params]
    if directional is not None and not directional.ok:
        params = [_mark_directional(p, directional) for p in params]
        hints.append(directional.hint() or "")
    loss_noise = NOISE_FACTOR * reference.noise.loss if reference.noise is not None else 0.0
    # A loss computed in the backend's dtype is rounded at least once more than the reference.
    # The reference's loss is a float64 forward pass under either reference (never a
    # finite-difference estimate), so the gradients' rtol, which allows for the estimates'
    # error, has no part in it: 1e-3 of it let a float32 loss off by 0.1% pass.
    eps = float(np.finfo(np.dtype(problem.dtype if problem is not None else "float64")).eps)
    loss_rtol = LOSS_ULPS * eps
    loss_ok = grads.loss is None or bool(
        np.isclose(grads.loss, reference.loss, rtol=loss_rtol, atol=loss_noise)
    )
    if not loss_ok:
        hints.append(
            f"loss {grads.loss:.10g} differs from the float64 reference {reference.loss:.10g}"
        )
    if grads.dB is None and grads.named is None:
        hints.append("biases were not returned; only the weights were checked")
    if problem is not None:
        hints.extend(_narrow_type_hints(grads, params, problem.dtype))
    sensitivities = [p.sensitivity for p in params if p.sensitivity is not None]
    result = BackendResult(
        name=name,
        kind=kind,
        ok=loss_ok and all(p.ok for p in params) and (directional is None or directional.ok),
        error=None,
        loss=grads.loss,
        first_weight_grad=grads.first_entry(),
        params=tuple(params),
        hints=tuple(hints),
        seconds=seconds,
        gradients=grads,
        directional=directional,
        reference=REFERENCE_NAMES.get(reference.kind, reference.kind),
        sensitivity=max(sensitivities) if sensitivities else None,
    )
    return result, failed


def _narrow_type_hints(grads: Gradients, params: list[ParamResult], dtype: str) -> list[str]:
    """A failing gradient returned in a narrower type than the check's dtype: its rounding
    (float32 in a float64 check) or truncation (integers) alone can put it off, so say so."""
    named = grads.by_name()
    wide = np.dtype(dtype).itemsize
    narrow: dict[np.dtype, list[str]] = {}
    for param in params:
        got = np.asarray(named[param.name]).dtype
        if not param.ok and (got.kind != "f" or got.itemsize < wide):
            narrow.setdefault(got, []).append(param.name)
    hints = []
    for got, names in narrow.items():
        which = f"{', '.join(names)} came back as {got}"
        if got.kind != "f":
            hints.append(f"{which}: gradients are real numbers, and an integer type truncates them")
            continue
        other = f", or check in {got} (--dtype {got})" if got == np.float32 else ""
        hints.append(
            f"{which} while the check runs in {dtype}: {got} rounding alone puts entries "
            f"off; compute in {dtype}{other}"
        )
    return hints


def _tensor_directions(
    params: list[ParamResult], grads: Gradients, reference: Reference, tolerance: Tolerance
) -> tuple[list[ParamResult], list[str]]:
    """Sampled finite differences: each tensor along one random direction over all its entries."""
    fd = reference.fd
    if fd is None or fd.tensor_directions is None:
        return params, []
    named = {n: np.asarray(g, dtype=np.float64) for n, g in grads.by_name().items()}
    noise = {n: np.asarray(noise_allowance(reference.noise, n)) for n in named}
    verdicts = fd.tensor_directions.judge_tensors(
        named, tolerance.rtol, tolerance.atol, FD_ERROR_FACTOR, noise
    )
    out, hints = [], []
    for param in params:
        verdict = verdicts.get(param.name)
        param = _unsampled_sensitivity(param, named[param.name], verdict, reference)
        if verdict is not None and not verdict.ok:
            param = replace(
                param, ok=False, max_rel_err=max(param.max_rel_err or 0.0, verdict.rel_err)
            )
            hints.append(
                f"{param.name}: its sampled entries agree, but a random direction over all of "
                f"{param.name} does not (g·v = {verdict.projection:.6g}, finite differences "
                f"{verdict.derivative:.6g}): a mistake in the entries the sample left out"
            )
        out.append(param)
    return out, hints


def _unsampled_sensitivity(
    param: ParamResult, g: np.ndarray, verdict: TensorDirection | None, reference: Reference
) -> ParamResult:
    """The sensitivity of a sampled parameter, honest about the entries the sample left out:
    only the tensor's random direction sees them, and a mistake in one of them passes up to
    that direction's allowance (over 1e-5 of the scale where the sampled entries state 1e-5).
    The scale is the sampled entries' largest, or where they are all zero (dead units) the
    backend's own. Where no direction judged them (at a kink), nothing bounds a mistake."""
    checked = reference.checked.get(param.name)
    if checked is None or checked.all():
        return param
    mask = judged(reference, param.name)
    scale = float(np.abs(reference.estimates[param.name][mask]).max()) if mask.any() else 0.0
    scale = scale or (float(np.abs(g).max()) if g.size else 0.0)
    if scale == 0.0:
        return param
    if verdict is None:
        return replace(param, sensitivity=float("inf"))
    return replace(param, sensitivity=max(param.sensitivity or 0.0, verdict.allowed / scale))


def _directional_sensitivity(
    param: ParamResult, grads: Gradients, verdict: DirectionalVerdict
) -> ParamResult:
    """In directional mode no entry is judged alone: a mistake in one entry passes up to what
    a direction allows, as a fraction of the parameter's largest entry (the backend's own,
    the directional reference having none); unbounded where no direction was judged."""
    g = np.abs(np.asarray(grads.by_name()[param.name], dtype=np.float64))
    scale = float(g.max()) if g.size else 0.0
    if scale == 0.0:
        return param
    if verdict.allowed is None:
        return replace(param, sensitivity=float("inf"))
    return replace(param, sensitivity=verdict.allowed / scale)


def _directional_verdict(
    grads: Gradients, reference: Reference, tolerance: Tolerance
) -> DirectionalVerdict | None:
    """In directional mode: g.v against the FD derivative on every random direction."""
    if reference.fd is None or reference.fd.directional is None:
        return None
    named = {n: np.asarray(g, dtype=np.float64) for n, g in grads.by_name().items()}
    # The per-entry noise allowance of full mode, summed along each direction.
    noise = {n: np.asarray(noise_allowance(reference.noise, n)) for n in named}
    atol = tolerance.largest_atol
    return reference.fd.directional.judge(named, tolerance.rtol, atol, FD_ERROR_FACTOR, noise)


def _mark_directional(param: ParamResult, verdict: DirectionalVerdict) -> ParamResult:
    """The parameter bisection localised a failing direction to is marked failed."""
    if param.name != verdict.param:
        return param
    return replace(param, ok=False, worst_index=verdict.index, max_rel_err=verdict.param_rel_err)


def _diagnoser(problem: AnyProblem | None, reference: Reference, rtol: float) -> Diagnoser | None:
    """A Diagnoser against the reference's usable entries (checked, not at a kink)."""
    if problem is None or not reference.estimates:
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
