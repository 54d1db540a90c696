"""What backends are judged against: finite differences, or the built-ins' float64 consensus."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from ..fd import FiniteDifferences, finite_differences
from ..problem import AnyProblem, Gradients, LayeredProblem
from .noise import RoundingNoise
from .policy import CheckOptions

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


def exactly_zero(problem: AnyProblem, reference: Reference) -> Reference:
    """The reference with the gradients that are zero by the network's structure (a bias
    right before a batch norm) set to exactly 0: computed, they are rounding noise (FD: its
    quotient by h), which would judge a correct backend's own noise against it and leave
    the parameter 'unresolved', while any nonzero mistake there shows against 0."""
    if not isinstance(problem, LayeredProblem):
        return reference
    zero = [n for n in problem.zero_gradients() if n in reference.estimates]
    if not zero:
        return reference
    estimates, error = dict(reference.estimates), dict(reference.error)
    for name in zero:
        estimates[name] = np.where(np.isfinite(estimates[name]), 0.0, estimates[name])
        error[name] = np.zeros_like(error[name])
    return replace(reference, estimates=estimates, error=error)


def fd_reference(problem: AnyProblem, options: CheckOptions) -> Reference:
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
    reference = Reference(
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
    return exactly_zero(problem, reference)


def consensus(gradients: Mapping[str, Gradients], names: Sequence[str]) -> dict[str, np.ndarray]:
    """Elementwise median of the backends `names` (robust to one wrong backend among three)."""
    by_param: dict[str, list[np.ndarray]] = {}
    for name in names:
        for pname, g in gradients[name].by_name().items():
            by_param.setdefault(pname, []).append(np.asarray(g, dtype=np.float64))
    return {p: np.median(np.stack(gs), axis=0) for p, gs in by_param.items()}


def consensus_reference(
    problem: AnyProblem, float64_gradients: Mapping[str, Gradients], members: Sequence[str]
) -> Reference:
    """The float64 consensus of the built-ins `members`: exact up to their rounding."""
    estimates = consensus(float64_gradients, members)
    reference = Reference(
        kind=CONSENSUS,
        name="consensus of " + ", ".join(members),
        estimates=estimates,
        error={n: np.zeros_like(a) for n, a in estimates.items()},
        checked={n: np.ones(a.shape, dtype=bool) for n, a in estimates.items()},
        kinks={n: np.zeros(a.shape, dtype=bool) for n, a in estimates.items()},
        loss=problem.float64_loss(),
        members=tuple(members),
    )
    return exactly_zero(problem, reference)
