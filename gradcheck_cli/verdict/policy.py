"""How strict a check is: the options, the tolerances of each reference, and their names."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from ..errors import InputError
from ..fd import Progress

# Tolerances against finite differences, by the dtype the backends compute in. An entry
# passes when |g - ref| <= atol + rtol |ref| + FD_ERROR_FACTOR x (estimated error of ref)
# (+ the rounding-noise allowances below). The default atol is relative to each
# parameter's scale (its largest reference entry): a fixed atol would wave a factor-2
# mistake through on a nearly converged network whose gradient entries are all tiny.
# float64: central differences with h = 1e-6 agree with exact gradients to ~1e-9
# relative on smooth problems; 1e-5 leaves a wide margin while any structural mistake
# is off by far more. float32: a float32 backprop through a few layers carries ~1e-6
# relative rounding error; 1e-3 and 1e-5 x scale still catch every structural mistake.
DEFAULT_TOLERANCES: dict[str, tuple[float, float]] = {
    "float64": (1e-5, 1e-8),
    "float32": (1e-3, 1e-5),
}
# Against the built-ins' float64 consensus (exact up to rounding) a correct backend differs
# only by its own rounding: atol = factor x the parameter's scale, no rtol, plus the
# rounding noise measured on the problem (precision.py), which is what widens it near
# convergence. float64 backprops of a few layers agree to ~1e-13 x scale; float32 code
# differs from float64 by its measured noise, allowed ten times over on top of this floor.
CONSENSUS_ATOL: dict[str, float] = {"float64": 1e-9, "float32": 1e-6}
FD_ERROR_FACTOR = 3.0
# A correct backend may differ from float64 by a few times the rounding noise measured
# with the NumPy backprop (other backends sum in other orders): allow 10x.
NOISE_FACTOR = 10.0
# Where a ReLU unit within rounding of zero changes side, a correct backend may sit on
# either side: allow the measured per-entry jump, twice over.
KINK_FLIP_FACTOR = 2.0
# When what a check allows for a parameter exceeds this fraction of its largest reference
# entry, mistakes of that size there can go unseen: the report notes it.
HIDDEN_ERROR_HINT = 0.1
# Where a check could miss a mistake of half a parameter's largest entry (a missing factor
# 2 of the square, a half-MSE), it has not verified that parameter: the run is
# inconclusive and fails (exit 1) instead of claiming agreement.
UNRESOLVED_FRACTION = 0.5
# What judges the user's functions: the built-ins' float64 consensus (validated by finite
# differences) where at least two built-ins run, else finite differences; or either on request.
REFERENCES = ("auto", "fd", "backends")
# Base finite-difference steps outside this range cannot give a meaningful estimate in
# float64 (below: rounding swamps the change; above: truncation and kinks everywhere).
FD_STEP_RANGE = (1e-12, 1e-1)


@dataclass(frozen=True)
class CheckOptions:
    """How to check: tolerances (None = the defaults), the reference, finite differences."""

    rtol: float | None = None
    atol: float | None = None
    fd_mode: str = "auto"
    fd_step: float | None = None  # None: the default step rule of fd.numerical
    fd_samples: int | None = None  # entries (sample) or directions (directional)
    fd_order: int = 2
    seed: int = 0
    reference: str = "auto"
    progress: Progress | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Tolerance:
    """How far a backend may stray from one reference: rtol x |ref| + atol of each parameter."""

    rtol: float
    atol: Mapping[str, float]

    @property
    def largest_atol(self) -> float:
        """The largest atol in force (what the JSON's `tolerances.atol` shows)."""
        return max(self.atol.values(), default=0.0)


def parameter_scales(estimates: Mapping[str, np.ndarray]) -> dict[str, float]:
    """Each parameter's largest finite |reference entry| (0.0 where all are zero or unknown)."""
    out = {}
    for name, estimate in estimates.items():
        finite = np.abs(estimate[np.isfinite(estimate)])
        out[name] = float(finite.max()) if finite.size else 0.0
    return out


def tolerance(
    options: CheckOptions,
    kind: str,
    dtype: str,
    estimates: Mapping[str, np.ndarray],
    fallback: Mapping[str, np.ndarray] | None = None,
) -> Tolerance:
    """The tolerance of backends computing in `dtype` against a reference of `kind`
    ("fd" or "consensus") with these estimates.

    The default atol is the factor x each parameter's own largest entry: rounding errors
    scale with each parameter's magnitude, and one global atol would let a factor 2 through
    on early layers with vanishing gradients. A parameter whose reference is all zero gets
    the factor x the largest entry of any parameter. An explicit atol is absolute. A
    reference without per-entry estimates (directional) takes the scales of `fallback`.
    """
    if kind == "consensus":
        rtol, factor = (options.rtol or 0.0), CONSENSUS_ATOL[dtype]
    else:
        default_rtol, factor = DEFAULT_TOLERANCES[dtype]
        rtol = options.rtol if options.rtol is not None else default_rtol
    scales = parameter_scales(estimates if estimates or fallback is None else fallback)
    overall = max(scales.values(), default=0.0) or 1.0
    atol = {
        name: options.atol if options.atol is not None else factor * (scale or overall)
        for name, scale in scales.items()
    }
    return Tolerance(rtol, atol)


def validate_options(options: CheckOptions) -> None:
    """Nonsense settings are bad input: a NaN or negative tolerance would judge every entry
    (or none) without saying so, and a step outside FD_STEP_RANGE no entry at all."""
    low, high = FD_STEP_RANGE
    if options.fd_step is not None and not low <= options.fd_step <= high:
        raise InputError(
            f"fd_step must be between {low:g} and {high:g} (a base step: each entry moves "
            f"by it x max(1, |theta|)), got {options.fd_step:g}",
            arguments=("fd_step",),
        )
    for name, value in (("rtol", options.rtol), ("atol", options.atol)):
        if value is not None and not 0 <= value < np.inf:
            raise InputError(f"{name} must be a finite number >= 0, got {value}", arguments=(name,))
    if options.seed < 0:
        raise InputError(f"seed must be >= 0, got {options.seed}", arguments=("seed",))
    if options.reference not in REFERENCES:
        raise InputError(
            f"unknown reference {options.reference!r}; choose from: {', '.join(REFERENCES)}",
            arguments=("reference",),
        )
