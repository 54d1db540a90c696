"""Whether the built-ins' float64 consensus has earned its place as the reference.

It has when the built-ins that form it agree with each other to rounding, and none of
them disagrees with finite differences beyond what finite differences can resolve. Where
finite differences cannot resolve a parameter (nearly converged networks, tiny
gradients), the consensus rests on the agreement of independent implementations (NumPy
by hand, torch autograd, torch modules), and the report says so.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence

import numpy as np

from ..problem import Gradients
from .judge import noise_allowance, relative_errors
from .policy import Tolerance
from .reference import Reference
from .result import BackendResult, Validation


def disagreements(
    float64_gradients: Mapping[str, Gradients],
    members: Sequence[str],
    consensus: Reference,
    tolerance: Tolerance,
) -> tuple[float | None, list[str]]:
    """The largest relative difference between two members, and every pair that differs by
    more than rounding (the consensus tolerance, with the float64 noise and kink flips)."""
    worst: float | None = None
    problems = []
    for a, b in itertools.combinations(members, 2):
        ga, gb = float64_gradients[a].by_name(), float64_gradients[b].by_name()
        for name in ga:
            if name not in gb or name not in consensus.estimates:
                continue
            x, y = np.asarray(ga[name], np.float64), np.asarray(gb[name], np.float64)
            rel = float(relative_errors(x, y, tolerance.atol[name]).max())
            worst = rel if worst is None else max(worst, rel)
            # Each may be off from the truth by the allowance: together by twice that.
            allowed = 2.0 * (
                tolerance.atol[name] + noise_allowance(consensus.noise, name)
            ) + tolerance.rtol * np.abs(consensus.estimates[name])
            over = np.abs(x - y) > allowed
            if over.any():
                index = tuple(int(i) for i in np.argwhere(over)[0])
                problems.append(
                    f"built-ins {a} and {b} disagree on {name}{list(index)} "
                    f"({x[index]:.6g} vs {y[index]:.6g}) beyond rounding"
                )
    return worst, problems


def validate(
    fd_results: Mapping[str, BackendResult] | None,
    float64_gradients: Mapping[str, Gradients],
    members: Sequence[str],
    consensus: Reference,
    consensus_tolerance: Tolerance,
) -> Validation:
    """The consensus of `members`, checked: every built-in's float64 result against finite
    differences (`fd_results`; None when they did not run) and the members against each
    other. A built-in that fails finite differences is left out of the consensus and puts
    the reference in doubt."""
    agreement, problems = disagreements(float64_gradients, members, consensus, consensus_tolerance)
    # Every built-in checked, the members and those left out for failing the check.
    checked = fd_results if fd_results is not None else {}
    for member, result in checked.items():
        for param in result.params:
            if not param.ok:
                where = f"{param.name}{list(param.worst_index or ())}"
                problems.append(
                    f"built-in {member} disagrees with finite differences on {param.name} "
                    f"(rel err {param.max_rel_err or 0.0:.2e}, worst at {where})"
                )
        if result.ok is False and all(p.ok for p in result.params):
            problems.append(
                f"built-in {member} disagrees with finite differences: " + "; ".join(result.hints)
            )
    return Validation(
        by="finite differences" if fd_results is not None else "agreement",
        members=tuple(members),
        ok=not problems,
        agreement=agreement,
        problems=tuple(problems),
    )
