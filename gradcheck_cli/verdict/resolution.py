"""What a check cannot resolve: per parameter, the size of a mistake that could go unseen."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .policy import FD_ERROR_FACTOR, HIDDEN_ERROR_HINT, NOISE_FACTOR
from .reference import Reference


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
