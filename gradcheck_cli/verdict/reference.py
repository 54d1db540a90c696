"""What backends are judged against: finite differences, or the built-ins' consensus."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..backends.base import Backend
from ..errors import InputError
from ..fd import FiniteDifferences, finite_differences
from ..problem import Gradients, Problem
from .policy import CheckOptions
from .precision import RoundingNoise


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
        raise InputError(
            "fd off with a single backend leaves nothing to compare it with", arguments=("fd",)
        )
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
