"""What backends are judged against: finite differences, or the built-ins' float64 consensus."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ..fd import FiniteDifferences, finite_differences
from ..problem import Gradients, Problem
from .policy import CheckOptions
from .precision import RoundingNoise

FD = "fd"
CONSENSUS = "consensus"


@dataclass(frozen=True, eq=False)
class Reference:
    """Estimates per parameter, how far to trust each entry, and the rounding noise allowed."""

    kind: str  # FD or CONSENSUS
    name: str
    estimates: dict[str, np.ndarray]
    error: dict[str, np.ndarray]  # estimated absolute error of each estimate
    checked: dict[str, np.ndarray]  # entries that have an estimate
    kinks: dict[str, np.ndarray]  # kink entries with no kink-free estimate: not judged
    loss: float
    # The measured rounding noise of the dtype judged against it (see precision.py).
    noise: RoundingNoise | None = None
    fd: FiniteDifferences | None = None
    members: tuple[str, ...] = ()  # the built-ins a consensus is the median of
    seconds: float = 0.0


def fd_reference(problem: Problem, options: CheckOptions) -> Reference:
    """Finite differences in float64, in the mode the options ask for."""
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
        kind=FD,
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


def consensus(gradients: Mapping[str, Gradients], names: Sequence[str]) -> dict[str, np.ndarray]:
    """Elementwise median of the backends `names` (robust to one wrong backend among three)."""
    by_param: dict[str, list[np.ndarray]] = {}
    for name in names:
        for pname, g in gradients[name].by_name().items():
            by_param.setdefault(pname, []).append(np.asarray(g, dtype=np.float64))
    return {p: np.median(np.stack(gs), axis=0) for p, gs in by_param.items()}


def consensus_reference(
    problem: Problem, float64_gradients: Mapping[str, Gradients], members: Sequence[str]
) -> Reference:
    """The float64 consensus of the built-ins `members`: exact up to their rounding."""
    estimates = consensus(float64_gradients, members)
    return Reference(
        kind=CONSENSUS,
        name="consensus of " + ", ".join(members),
        estimates=estimates,
        error={n: np.zeros_like(a) for n, a in estimates.items()},
        checked={n: np.ones(a.shape, dtype=bool) for n, a in estimates.items()},
        kinks={n: np.zeros(a.shape, dtype=bool) for n, a in estimates.items()},
        loss=problem.float64_loss(),
        members=tuple(members),
    )
