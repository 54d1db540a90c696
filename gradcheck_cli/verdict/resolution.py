"""What a check cannot resolve: per parameter, the size of a mistake that could go unseen.

Three things can hide a mistake: the rounding noise allowed for the backends' dtype, the
error of a finite-difference reference (atol + 3 x its error estimate), and ReLU units at
their kink, whose side a correct backend may pick either way (the per-entry flips); in
directional mode, what a random direction allows (it sees a parameter only through g.v). Where
any of them could hide half of a parameter's largest entry (a missing factor 2), that
parameter is not verified and the run is inconclusive.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .judge import flip_allowance, judged, kink_alternative, noise_floor
from .policy import FD_ERROR_FACTOR, HIDDEN_ERROR_HINT, UNRESOLVED_FRACTION, Tolerance
from .reference import FD, Reference

CAUSE_FD = "finite differences"
CAUSE_KINKS = "ReLU kinks"
CAUSE_ZERO = "zero gradient"
CAUSE_DIRECTIONS = "random directions"


def percent(fraction: float) -> str:
    """A fraction as a percentage, capped where the number stops meaning anything."""
    return f"{fraction:.0%}" if fraction < 10 else "over 1000%"


def rounding_cause(dtype: str) -> str:
    """The cause named when a dtype's rounding noise hides mistakes."""
    return f"{dtype} rounding"


@dataclass(frozen=True)
class Resolution:
    """How large a mistake in one parameter could go unseen, as fractions of its largest
    reference entry: through the rounding-noise allowance, through the reference's own
    floor (atol + 3 x the estimate's error), and whether only kink entries could show one."""

    size: float
    noise: float
    floor: float
    kinks_only: bool = False

    @property
    def worst(self) -> float:
        """The larger of the two fractions (1.0 where only kink entries could show a mistake)."""
        return max(self.noise, self.floor, 1.0 if self.kinks_only else 0.0)


def resolutions(reference: Reference, tolerance: Tolerance) -> dict[str, Resolution]:
    """The Resolution of every parameter that has per-entry reference values and a scale."""
    out = {}
    for name, ref in reference.estimates.items():
        mask = judged(reference, name)
        if not mask.any():
            continue
        size = float(np.abs(ref[mask]).max())
        if size == 0:
            continue
        noise = noise_floor(reference.noise, name)
        floor = tolerance.atol[name]
        if reference.kind == FD:
            floor += FD_ERROR_FACTOR * float(reference.error[name][mask].max())
        # Entries that can show a mistake: their flip allowance is under half their size,
        # or (one unit at its kink) neither of their two values is near zero.
        alternative = kink_alternative(reference.noise, name, ref)
        if alternative is not None:
            hidden = np.abs(alternative) < UNRESOLVED_FRACTION * np.abs(ref)
        else:
            flips = np.broadcast_to(flip_allowance(reference.noise, name), ref.shape)
            hidden = flips >= UNRESOLVED_FRACTION * np.abs(ref)
        visible = mask & (np.abs(ref) > 0) & ~hidden
        out[name] = Resolution(size, noise / size, floor / size, kinks_only=not visible.any())
    return out


def unresolved(
    resolution: dict[str, Resolution], dtype: str, reference: Reference
) -> dict[str, dict[str, Any]]:
    """The parameters the check has not verified, with the cause and the fraction hidden."""
    out: dict[str, dict[str, Any]] = {}
    for name, r in resolution.items():
        if r.worst < UNRESOLVED_FRACTION:
            continue
        if r.kinks_only and max(r.noise, r.floor) < UNRESOLVED_FRACTION:
            cause = CAUSE_KINKS
        elif r.noise >= r.floor:
            cause = rounding_cause(dtype)
        else:
            cause = CAUSE_FD if reference.kind == FD else "atol"
        out[name] = {"cause": cause, "hidden": r.worst}
    return out


def all_zero(reference: Reference) -> bool:
    """Whether every gradient entry of the reference is exactly zero (an exact minimum)."""
    return bool(reference.estimates) and all(
        not np.any(a[np.isfinite(a)]) for a in reference.estimates.values()
    )


def resolution_notes(resolution: dict[str, Resolution], dtype: str) -> list[str]:
    """Notes on parameters where the check could miss mistakes of over 10% (the same for
    every backend, so said once per report)."""
    return _precision_note(resolution, dtype) + _floor_note(resolution)


def _precision_note(resolution: dict[str, Resolution], dtype: str) -> list[str]:
    """Say so when the dtype's measured rounding noise is large enough to hide a mistake."""
    hidden = [
        f"{n} {percent(r.noise)}" for n, r in resolution.items() if r.noise > HIDDEN_ERROR_HINT
    ]
    if not hidden:
        return []
    fix = "--dtype float64" if dtype != "float64" else "parameters farther from convergence"
    return [
        f"{dtype} rounding on this problem (measured) is large enough to hide errors up to "
        f"{', '.join(hidden)} of each parameter's largest entry (a nearly converged network "
        f"loses digits to cancellation in Y - T); check with {fix} to see them"
    ]


def _floor_note(resolution: dict[str, Resolution]) -> list[str]:
    """Say so when a parameter's gradient is too small for the reference to check."""
    hidden = [
        f"{name} (largest entry {r.size:.1e}, errors up to {r.floor * r.size:.1e} unseen)"
        for name, r in resolution.items()
        if r.floor > HIDDEN_ERROR_HINT
    ]
    if not hidden:
        return []
    return [
        "too small for finite differences to check (atol + 3 x the estimate's error is over "
        f"10% of the gradient): {', '.join(hidden)}; compare the backends directly with "
        "--fd off and a smaller --atol"
    ]


def validation_notes(resolution: dict[str, Resolution]) -> list[str]:
    """Where finite differences could not check the built-ins, the consensus that judged the
    user's functions rests on the built-ins' agreement: say so."""
    weak = [
        f"{name} (errors up to {percent(r.floor)} of its largest entry unseen)"
        for name, r in resolution.items()
        if r.floor > HIDDEN_ERROR_HINT
    ]
    if not weak:
        return []
    return [
        "finite differences cannot check the built-ins closely on "
        f"{', '.join(weak)}; there the reference rests on the agreement of independent "
        "built-in backends"
    ]


def directional_unresolved(
    allowed: Sequence[float], scales: Mapping[str, np.ndarray]
) -> dict[str, dict[str, Any]]:
    """Directional mode judges whole directions, never one parameter alone: a mistake in one
    entry moves g.v by at most its own size, so it passes on every direction up to what a
    direction `allowed`. Where that reaches UNRESOLVED_FRACTION of a parameter's largest entry
    (`scales`: the validated float64 gradients), that parameter is not verified."""
    if not allowed:
        return {}
    limit = max(allowed)
    out: dict[str, dict[str, Any]] = {}
    for name, g in scales.items():
        finite = np.abs(g[np.isfinite(g)])
        scale = float(finite.max()) if finite.size else 0.0
        if scale > 0.0 and limit >= UNRESOLVED_FRACTION * scale:
            out[name] = {"cause": CAUSE_DIRECTIONS, "hidden": limit / scale}
    return out
