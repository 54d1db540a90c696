"""How strict a check is: the options, tolerances by dtype, and each parameter's atol."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from ..errors import InputError
from ..fd import Progress
from ..problem import Gradients

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


def gradient_scale(estimates: Mapping[str, np.ndarray], gradients: dict[str, Gradients]) -> float:
    """The largest |entry| of the reference gradient (or, where the reference has no entries,
    as in directional mode, the median over backends of theirs); 1.0 for an all-zero gradient."""
    finite = [np.abs(a[np.isfinite(a)]).max() for a in estimates.values() if np.isfinite(a).any()]
    if finite:
        scale = float(max(finite))
    else:
        per_backend = [
            max(float(np.abs(np.asarray(g, np.float64)).max()) for g in grads.by_name().values())
            for grads in gradients.values()
        ]
        scale = float(np.median(per_backend)) if per_backend else 0.0
    return scale if scale > 0 else 1.0


def parameter_atols(
    options: CheckOptions, dtype: str, estimates: Mapping[str, np.ndarray], atol: float
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
    for name, estimate in estimates.items():
        finite = np.abs(estimate[np.isfinite(estimate)])
        if finite.size and finite.max() > 0:
            out[name] = min(atol, options.tolerances(dtype, float(finite.max()))[1])
    return out


def _validate_options(options: CheckOptions) -> None:
    """Nonsense settings are bad input: a NaN or negative tolerance would judge every
    entry (or none) without saying so, and a negative seed crashed NumPy's generator."""
    if options.fd_step is not None and not 0 < options.fd_step < np.inf:
        raise InputError(
            f"fd_step must be positive and finite, got {options.fd_step}", arguments=("fd_step",)
        )
    for name, value in (("rtol", options.rtol), ("atol", options.atol)):
        if value is not None and not 0 <= value < np.inf:
            raise InputError(f"{name} must be a finite number >= 0, got {value}", arguments=(name,))
    if options.seed < 0:
        raise InputError(f"seed must be >= 0, got {options.seed}", arguments=("seed",))
