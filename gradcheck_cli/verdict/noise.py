"""What rounding noise is, as the verdict uses it (`RoundingNoise`), and the constants its
measurements share: precision.py measures it for the MLP, layered_precision.py for layered
networks."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# A low-precision unit counts as at its kink within this many times the largest
# rounding error measured in its layer (relative to the size of its terms).
KINK_MARGIN = 10.0
# float64 noise: backprops at inputs moved by up to PERTURBATION_ULPS ulps (seeded).
PERTURBATIONS = 2
PERTURBATION_ULPS = 4.0


@dataclass(frozen=True)
class RoundingNoise:
    """The rounding noise of a dtype: the largest difference per parameter a correct backend
    may show (float32: against float64; float64: between two float64 implementations), and
    of the loss."""

    params: dict[str, float]
    loss: float
    # Per entry, how far the gradient moves (in float64) when the ReLU units at their kink
    # (within the dtype's rounding of z = 0) take the other side; absent when there are none.
    kink_flips: dict[str, np.ndarray] = field(default_factory=dict)
    # With exactly one unit at its kink a correct gradient is one of two values per entry:
    # the reference, or the reference plus this (signed) jump. With more, any mix is.
    kink_jumps: dict[str, np.ndarray] = field(default_factory=dict)
    kink_units: int = 0
    # Per parameter, a bound on the rounding of dLoss/dY carried back (nn.gradient_rounding):
    # what a correct implementation may differ by that no measurement here samples.
    bounds: dict[str, float] = field(default_factory=dict)
    # The float64 gradient on the NumPy forward's side of the kinks (kink_jumps is measured
    # from it): the reference (a median of backends) may sit on either side.
    kink_base: dict[str, np.ndarray] = field(default_factory=dict)
