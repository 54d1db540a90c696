"""Numerical gradients of the problem's loss by finite differences, always in float64.

Modes: `full` (every entry), `sample` (K entries, stratified over the tensors),
`directional` (K random signed directions; see fd.directional), `auto` (full up to
FULL_MODE_MAX_PARAMETERS parameters, else sample). Entries are evaluated in batches
(fd.engine); every estimate carries an error estimate, and entries whose
perturbation crosses a ReLU/leaky-ReLU kink are re-estimated (fd.lines.estimate_lines).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from .. import nn
from ..errors import InputError
from ..nn import network
from ..problem import AnyProblem, LayeredProblem
from .engine import EntryLosses
from .layered import LayeredEntryLosses
from .lines import Progress, estimate_lines

if TYPE_CHECKING:
    from .directional import DirectionalFD

# Default step rule: h_i = step * max(1, |theta_i|). For second-order central
# differences the error is ~h^2 f''' + eps |f| / h; 1e-6 keeps both near 1e-10 for
# O(1) losses and rarely crosses a ReLU kink. Order 4 (Richardson) has error
# ~h^4 + eps |f| / h, so a larger 1e-3 balances them near 1e-12 (absolute, for O(1)
# losses); the kinks it crosses more often are resolved like any other.
DEFAULT_FD_STEP = 1e-6
DEFAULT_STEPS = {2: 1e-6, 4: 1e-3}
FD_ORDERS = (2, 4)
FD_MODES = ("auto", "full", "sample", "directional", "off")
# `auto` checks every entry up to this many parameters (a full check of 50k
# parameters takes a few seconds on 2 cores), and samples above it.
FULL_MODE_MAX_PARAMETERS = 50_000
DEFAULT_SAMPLES = 1000
DEFAULT_DIRECTIONS = 16
# Entries listed by kink_entries() (the count is always complete).
MAX_LISTED_KINKS = 100


@dataclass(frozen=True, eq=False)
class FiniteDifferences:
    """Finite-difference estimates per parameter; NaN where an entry was not checked."""

    mode: str
    step: float
    loss: float
    estimates: dict[str, np.ndarray]
    checked: dict[str, np.ndarray]
    kinks: dict[str, np.ndarray]
    error: dict[str, np.ndarray]
    order: int = 2
    requested: str = "full"
    unresolved: dict[str, np.ndarray] = field(default_factory=dict)
    directional: DirectionalFD | None = field(default=None, repr=False)
    # Sample mode: one random direction over each whole tensor (DirectionalFD.judge_tensors).
    tensor_directions: DirectionalFD | None = field(default=None, repr=False)

    @property
    def checked_count(self) -> int:
        """Parameter entries with an estimate (directions, in directional mode)."""
        if self.directional is not None:
            return self.directional.count
        return int(sum(int(m.sum()) for m in self.checked.values()))

    @property
    def kink_count(self) -> int:
        """Checked entries (directions, in directional mode) whose perturbation crossed a kink."""
        if self.directional is not None:
            return self.directional.kink_count
        return int(sum(int(m.sum()) for m in self.kinks.values()))

    @property
    def unresolved_count(self) -> int:
        """Kink entries (directions) no smaller step or one-sided difference could estimate."""
        if self.directional is not None:
            return self.directional.unresolved_count
        return int(sum(int(m.sum()) for m in self.unresolved.values()))

    def kink_entries(self, limit: int = MAX_LISTED_KINKS) -> list[dict[str, object]]:
        """The first `limit` kink entries as {"param", "index", "resolved"}."""
        entries: list[dict[str, object]] = []
        for name, mask in self.kinks.items():
            unresolved = self.unresolved.get(name)
            for index in np.argwhere(mask):
                if len(entries) >= limit:
                    return entries
                key = tuple(int(i) for i in index)
                resolved = unresolved is None or not bool(unresolved[key])
                entries.append({"param": name, "index": list(key), "resolved": resolved})
        return entries

    @property
    def max_error(self) -> float | None:
        """The largest error estimate of a judged entry (or direction)."""
        if self.directional is not None:
            return self.directional.max_error
        errors = [
            float(e[self.checked[n] & ~self.unresolved[n]].max(initial=0.0))
            if n in self.unresolved
            else float(e[self.checked[n]].max(initial=0.0))
            for n, e in self.error.items()
        ]
        return max(errors) if errors else None


def central_difference(f: Callable[[float], float], x: float, step: float) -> float:
    """(f(x + h) - f(x - h)) / 2h for a scalar function."""
    return (f(x + step) - f(x - step)) / (2.0 * step)


def default_step(order: int) -> float:
    """The base step of the default step rule for this order."""
    return DEFAULT_STEPS[order]


def resolve_mode(mode: str, parameter_count: int) -> str:
    """The mode that runs: `auto` becomes full or sample by the parameter count."""
    if mode == "auto":
        return "full" if parameter_count <= FULL_MODE_MAX_PARAMETERS else "sample"
    return mode


def stratified_sample(problem: AnyProblem, samples: int, seed: int) -> dict[str, np.ndarray]:
    """Flat indices of `samples` entries: at least one per tensor, the rest by tensor size."""
    rng = np.random.default_rng(seed)
    sizes = np.array([p.size for p in problem.parameters])
    if samples >= sizes.sum():
        return {n: np.arange(p.size) for n, p in zip(problem.parameter_names, problem.parameters)}
    # One entry per tensor first (biases would otherwise rarely be drawn), then the
    # remaining budget proportionally to size, capped by each tensor's size.
    counts = np.ones(sizes.size, dtype=np.int64)
    budget = max(samples - sizes.size, 0)
    share = np.floor(budget * (sizes - 1) / max(int((sizes - 1).sum()), 1)).astype(np.int64)
    counts += np.minimum(share, sizes - 1)
    left = samples - int(counts.sum())
    for k in np.argsort(-sizes):  # hand out what rounding left over, largest tensors first
        if left <= 0:
            break
        extra = min(left, int(sizes[k] - counts[k]))
        counts[k] += extra
        left -= extra
    return {
        name: np.sort(rng.choice(size, size=int(count), replace=False))
        for name, size, count in zip(problem.parameter_names, sizes, counts)
    }


def _scatter(
    shape: tuple[int, ...], flat: np.ndarray, values: np.ndarray, fill: float | bool
) -> np.ndarray:
    """An array of `shape` holding `values` at the flat indices and `fill` elsewhere."""
    array = np.full(shape, fill, dtype=bool if isinstance(fill, bool) else np.float64)
    array.reshape(-1)[flat] = values
    return array


def finite_differences(
    problem: AnyProblem,
    step: float | None = None,
    *,
    mode: str = "full",
    order: int = 2,
    samples: int | None = None,
    seed: int = 0,
    progress: Progress | None = None,
) -> FiniteDifferences:
    """Finite-difference reference in `mode`, batched, with error estimates and kink handling."""
    if order not in FD_ORDERS:
        raise InputError(
            f"fd_order must be one of {', '.join(map(str, FD_ORDERS))}, got {order}",
            arguments=("fd_order",),
        )
    if step is not None and not 0 < step < np.inf:
        raise InputError(f"fd_step must be positive and finite, got {step}", arguments=("fd_step",))
    if samples is not None and samples < 1:
        raise InputError(f"fd_samples must be at least 1, got {samples}", arguments=("fd_samples",))
    base_step = step if step is not None else default_step(order)
    ran = resolve_mode(mode, problem.parameter_count)
    if ran == "directional":
        from .directional import DirectionalFD

        directional = DirectionalFD(
            problem, samples or DEFAULT_DIRECTIONS, seed, base_step, order, progress
        )
        return FiniteDifferences(
            mode=ran,
            step=base_step,
            loss=directional.f0,
            estimates={},
            checked={},
            kinks={},
            error={},
            order=order,
            requested=mode,
            directional=directional,
        )
    if ran == "full":
        chosen = {n: np.arange(p.size) for n, p in zip(problem.parameter_names, problem.parameters)}
    elif ran == "sample":
        chosen = stratified_sample(problem, samples or DEFAULT_SAMPLES, seed)
    else:
        raise InputError(
            f"unknown finite-difference mode {mode!r}; choose from {FD_MODES}", arguments=("fd",)
        )

    entries: EntryLosses | LayeredEntryLosses = (
        LayeredEntryLosses(problem, progress)
        if isinstance(problem, LayeredProblem)
        else EntryLosses(problem, progress)
    )
    entries.total = 4 * sum(idx.size for idx in chosen.values())
    estimates, error, checked, kinks, unresolved = {}, {}, {}, {}, {}
    for name, param in zip(problem.parameter_names, problem.parameters):
        flat = chosen[name]
        theta = np.asarray(param, dtype=np.float64).reshape(-1)[flat]
        steps = base_step * np.maximum(1.0, np.abs(theta))

        def evaluate(
            lines: np.ndarray, offsets: np.ndarray, name: str = name, flat: np.ndarray = flat
        ) -> tuple[np.ndarray, np.ndarray]:
            return entries.losses(name, flat[lines], offsets)

        lines = estimate_lines(evaluate, flat.size, steps, entries.noise, order)
        estimates[name] = _scatter(param.shape, flat, lines.estimate, np.nan)
        error[name] = _scatter(param.shape, flat, lines.error, np.nan)
        checked[name] = _scatter(param.shape, flat, np.ones(flat.size, dtype=bool), False)
        kinks[name] = _scatter(param.shape, flat, lines.kink, False)
        unresolved[name] = _scatter(param.shape, flat, lines.unresolved, False)
    tensor_directions = None
    if ran == "sample":
        from .directional import DirectionalFD

        tensor_directions = DirectionalFD(problem, 1, seed, base_step, order)
    return FiniteDifferences(
        mode=ran,
        step=base_step,
        loss=entries.f0,
        estimates=estimates,
        checked=checked,
        kinks=kinks,
        error=error,
        order=order,
        requested=mode,
        unresolved=unresolved,
        tensor_directions=tensor_directions,
    )


def one_at_a_time(problem: AnyProblem, step: float = DEFAULT_FD_STEP) -> dict[str, np.ndarray]:
    """Plain central differences, one entry and two full forward passes at a time (slow).

    The unbatched reference the batched code is tested against; h_i = step * max(1, |theta_i|).
    """
    if isinstance(problem, LayeredProblem):
        return _layered_one_at_a_time(problem, step)
    weights = [np.array(w, dtype=np.float64) for w in problem.weights]
    biases = [np.array(b, dtype=np.float64) for b in problem.biases]

    def loss() -> float:
        return nn.network_loss(
            problem.X,
            problem.T,
            weights,
            biases,
            problem.activation,
            problem.loss,
            problem.negative_slope,
        )

    estimates = {}
    for name, array in zip(problem.parameter_names, [*weights, *biases]):
        estimate = np.empty_like(array)
        flat = array.reshape(-1)  # a view: writing it perturbs the live parameter
        out = estimate.reshape(-1)
        for j in range(flat.size):
            original = flat[j]
            h = step * max(1.0, abs(original))
            flat[j] = original + h
            plus = loss()
            flat[j] = original - h
            minus = loss()
            flat[j] = original
            out[j] = (plus - minus) / (2.0 * h)
        estimates[name] = estimate
    return estimates


def _layered_one_at_a_time(problem: LayeredProblem, step: float) -> dict[str, np.ndarray]:
    """one_at_a_time for a layered problem: two full forward passes per entry."""
    params = {n: np.array(p, dtype=np.float64) for n, p in problem.params.items()}

    def loss() -> float:
        return network.network_loss(problem.layers, params, problem.X, problem.T, problem.loss)

    estimates = {}
    for name, array in params.items():
        estimate = np.empty_like(array)
        flat = array.reshape(-1)  # a view: writing it perturbs the live parameter
        for j in range(flat.size):
            original = flat[j]
            h = step * max(1.0, abs(original))
            flat[j] = original + h
            plus = loss()
            flat[j] = original - h
            minus = loss()
            flat[j] = original
            estimate.reshape(-1)[j] = (plus - minus) / (2.0 * h)
        estimates[name] = estimate
    return estimates
