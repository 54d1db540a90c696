"""Directional finite differences: the gradient projected on K random signed directions.

The cost is a few forward passes per direction, whatever the parameter count. When a
backend's projection g.v disagrees with the numerical directional derivative, the
direction is restricted to one tensor at a time, then bisected within the worst
tensor, to localise the wrong entry.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from .. import nn
from ..nn import network
from ..problem import AnyProblem, LayeredProblem, Problem
from .engine import evaluation_noise
from .layered import layered_evaluation_noise
from .lines import LineEstimates, Progress, estimate_lines


@dataclass(frozen=True)
class DirectionalVerdict:
    """How one backend's gradient fared on the random directions."""

    directions: int
    failed: tuple[int, ...]  # indices of the directions that failed
    max_rel_err: float | None
    param: str | None = None  # where bisection localised the mistake
    index: tuple[int, ...] | None = None  # the entry, when bisection got down to one
    param_rel_err: float | None = None
    # The largest |g.v - d| a direction allows: a mistake of this size in one entry can pass
    # on every direction (None where no direction was judged).
    allowed: float | None = None

    @property
    def ok(self) -> bool:
        """No direction failed."""
        return not self.failed

    def hint(self) -> str | None:
        """One line on what failed and where, or None when all directions passed."""
        if self.ok:
            return None
        text = f"{len(self.failed)} of {self.directions} random directions disagree"
        if self.param is None:
            return text + " (the mistake is spread over tensors; not localised)"
        where = self.param if self.index is None else f"{self.param}{list(self.index)}"
        return text + f"; bisection localises it to {where}"


@dataclass(frozen=True)
class TensorDirection:
    """One tensor's gradient projected on a random direction, against finite differences."""

    ok: bool
    projection: float  # g . v
    derivative: float  # the finite-difference derivative along v
    rel_err: float
    # What |g.v - d| may reach and pass: a mistake of this size in one entry the sample left
    # out can pass unseen (the sampled entries' own allowance aside).
    allowed: float = 0.0


class DirectionalFD:
    """Directional derivatives of the loss along seeded random sign vectors."""

    def __init__(
        self,
        problem: AnyProblem,
        count: int,
        seed: int,
        step: float,
        order: int,
        progress: Progress | None = None,
    ) -> None:
        """Draw the directions and evaluate the unperturbed loss and activation patterns."""
        self.problem, self.count, self.step, self.order = problem, count, step, order
        self.names = problem.parameter_names
        self.theta = np.concatenate(
            [np.asarray(p, dtype=np.float64).reshape(-1) for p in problem.parameters]
        )
        bounds = np.cumsum([0] + [p.size for p in problem.parameters])
        self.slices = {n: slice(int(a), int(b)) for n, a, b in zip(self.names, bounds, bounds[1:])}
        # int8 signs: 1M parameters x 16 directions is 16 MB, not 128.
        rng = np.random.default_rng(seed)
        bits = rng.integers(0, 2, size=(count, self.theta.size), dtype=np.int8)
        self.signs = (2 * bits - 1).astype(np.int8)
        self.kinky = isinstance(problem, Problem) and nn.activation(problem.activation).has_kink
        self.progress, self.done = progress, 0
        self.f0, _ = self._loss_at(self.theta, reference=True)
        self._cache: dict[tuple[str, ...], LineEstimates] = {}
        self.max_error: float | None = None
        # The derivatives along the full directions, now: this is the reference's cost.
        self.along(tuple(self.names))

    @property
    def kink_count(self) -> int:
        """Directions whose perturbation crossed an activation kink."""
        return int(self.along(tuple(self.names)).kink.sum())

    @property
    def unresolved_count(self) -> int:
        """Directions with no kink-free estimate (not judged)."""
        return int(self.along(tuple(self.names)).unresolved.sum())

    def _forward(self, params: list[np.ndarray]) -> tuple[float, list[np.ndarray]]:
        """The loss at these parameters (in `names` order) and the kink patterns."""
        p = self.problem
        T = np.asarray(p.T, dtype=np.float64) if np.asarray(p.T).dtype.kind == "f" else p.T
        if isinstance(p, LayeredProblem):
            X = np.asarray(p.X, dtype=np.float64)
            outputs, caches = network.forward(p.layers, dict(zip(self.names, params)), X)
            patterns = [q for q in network.kink_patterns(caches) if q is not None]
            return nn.loss(p.loss).value(outputs[-1], T), patterns
        k = p.depth
        Z, _ = nn.forward(p.X, params[:k], params[k:], p.activation, p.negative_slope)
        return nn.loss(p.loss).value(Z[-1], T), [z > 0 for z in Z[:-1]]

    def _loss_at(self, theta: np.ndarray, reference: bool = False) -> tuple[float, bool]:
        """Loss at the flat parameter vector theta, and whether an activation pattern changed."""
        p = self.problem
        params = [theta[self.slices[n]].reshape(a.shape) for n, a in zip(self.names, p.parameters)]
        loss, patterns = self._forward(params)
        if reference:
            self.patterns = patterns
            if isinstance(p, LayeredProblem):
                self.kinky = bool(patterns)
                self.noise = layered_evaluation_noise(p)
            else:
                self.noise = evaluation_noise(p)
            return loss, False
        crossed = self.kinky and any(
            bool((now != pattern).any()) for now, pattern in zip(patterns, self.patterns)
        )
        return loss, crossed

    def _estimate(self, directions: Sequence[np.ndarray]) -> LineEstimates:
        """Kink-aware derivatives of the loss along each (float64, flat) direction."""

        def evaluate(lines: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            losses, crossed = np.empty(lines.size), np.zeros(lines.size, dtype=bool)
            for r, (line, offset) in enumerate(zip(lines, offsets)):
                loss, crossed[r] = self._loss_at(self.theta + offset * directions[line])
                losses[r] = loss - self.f0
                self.done += 1
                if self.progress is not None:
                    self.progress(self.done, max(self.done, 4 * self.count))
            return losses, crossed

        steps = np.full(len(directions), self.step)
        return estimate_lines(evaluate, len(directions), steps, self.noise, self.order)

    def _direction(self, k: int, names: Sequence[str], part: slice | None = None) -> np.ndarray:
        """Direction k restricted to the tensors `names` (and to `part` of a single tensor)."""
        v = np.zeros(self.theta.size)
        for n in names:
            s = self.slices[n]
            if part is not None:
                s = slice(s.start + part.start, s.start + part.stop)
            v[s] = self.signs[k, s]
        return v

    def along(self, names: tuple[str, ...]) -> LineEstimates:
        """Directional derivatives along every direction restricted to `names` (cached)."""
        if names not in self._cache:
            self._cache[names] = self._estimate(
                [self._direction(k, names) for k in range(self.count)]
            )
            judged = self._cache[names].error[~self._cache[names].unresolved]
            if judged.size:
                self.max_error = max(self.max_error or 0.0, float(judged.max()))
        return self._cache[names]

    def _excess(
        self,
        grads: dict[str, np.ndarray],
        k: int,
        parts: Sequence[tuple[str, slice]],
        rtol: float,
        atol: float,
        error_factor: float,
        noise: dict[str, np.ndarray],
    ) -> list[tuple[float, float]]:
        """(excess ratio, rel err) of g.v against the FD derivative for each restricted part."""
        directions = [self._direction(k, [n], part) for n, part in parts]
        fd = self._estimate(directions)
        out = []
        for r, (n, part) in enumerate(parts):
            g = np.asarray(grads[n], dtype=np.float64).reshape(-1)[part]
            signs = self.signs[k, self.slices[n]][part]
            slack = _rss(noise[n].reshape(-1)[part]) if n in noise else 0.0
            out.append(
                self._compare(g, signs, fd, r, rtol, atol, error_factor, slack)
                if not fd.unresolved[r]
                else (0.0, 0.0)
            )
        return out

    @staticmethod
    def _compare(
        g: np.ndarray,
        signs: np.ndarray,
        fd: LineEstimates,
        r: int,
        rtol: float,
        atol: float,
        error_factor: float,
        slack: float = 0.0,
    ) -> tuple[float, float]:
        """(|g.v - d| / allowed, relative error) for line r; `slack` is the root-sum-square
        of the per-entry rounding-noise allowance (float32) on the entries of the line."""
        gv = float(g @ signs)
        # Per-entry errors e_i within atol + rtol |g_i|, summed with independent random
        # signs, add up like a random walk: to sqrt(sum e_i^2) <= atol sqrt(n) + rtol |g|_2.
        # (The worst case, rtol |g|_1, would hide a wrong entry among a million.) The same
        # holds for the per-entry float32 noise allowance: it adds its root-sum-square.
        scale = float(np.linalg.norm(g))
        allowed = DirectionalFD.allowance(g, fd, r, rtol, atol, error_factor, slack)
        d = float(fd.estimate[r])
        diff = abs(gv - d)
        # Relative to the larger of the two sides, as per entry (|g - ref| / max(|g|, |ref|)):
        # for a localised single entry this is exactly the per-entry relative error.
        size = max(scale, abs(d), atol * np.sqrt(g.size), 1e-300)
        return diff / max(allowed, 1e-300), diff / size

    @staticmethod
    def allowance(
        g: np.ndarray,
        fd: LineEstimates,
        r: int,
        rtol: float,
        atol: float,
        error_factor: float,
        slack: float = 0.0,
    ) -> float:
        """What |g.v - d| may reach on line r and pass (see _compare)."""
        scale = float(np.linalg.norm(g))
        return float(
            atol * np.sqrt(g.size) + rtol * scale + error_factor * float(fd.error[r]) + slack
        )

    def judge_tensors(
        self,
        grads: dict[str, np.ndarray],
        rtol: float,
        atol: Mapping[str, float],
        error_factor: float,
        noise: Mapping[str, np.ndarray] | None = None,
    ) -> dict[str, TensorDirection]:
        """Direction 0 restricted to each tensor in turn: g.v against the FD derivative.

        Checks every entry of a tensor at once, so that a mistake in the entries a sample
        left out (a tensor doubled, with the sample in dead units) cannot pass unseen.
        """
        out = {}
        for name in self.names:
            if name not in grads:
                continue
            fd = self.along((name,))
            g = np.asarray(grads[name], dtype=np.float64).reshape(-1)
            slack = (
                _rss(np.broadcast_to(noise[name], np.shape(grads[name])).reshape(-1))
                if (noise is not None and name in noise)
                else 0.0
            )
            signs = self.signs[0, self.slices[name]]
            if fd.unresolved[0]:
                continue
            ratio, rel = self._compare(g, signs, fd, 0, rtol, atol[name], error_factor, slack)
            out[name] = TensorDirection(
                ok=ratio <= 1.0,
                projection=float(g @ signs),
                derivative=float(fd.estimate[0]),
                rel_err=rel,
                allowed=self.allowance(g, fd, 0, rtol, atol[name], error_factor, slack),
            )
        return out

    def judge(
        self,
        grads: dict[str, np.ndarray],
        rtol: float,
        atol: float,
        error_factor: float,
        noise: dict[str, np.ndarray] | None = None,
    ) -> DirectionalVerdict:
        """Compare g.v with the FD derivative on every direction; localise the first failure.

        `noise`: per parameter, the per-entry allowance for the backends' rounding noise
        (float32; an array of the parameter's shape, or broadcastable to it).
        """
        names = tuple(n for n in self.names if n in grads)
        noise = {
            n: np.broadcast_to(np.asarray(a, np.float64), np.shape(grads[n]))
            for n, a in (noise or {}).items()
            if n in grads
        }
        fd = self.along(names)
        g = np.concatenate([np.asarray(grads[n], np.float64).reshape(-1) for n in names])
        slack = _rss(np.concatenate([np.zeros(0), *(noise[n].reshape(-1) for n in noise)]))
        ratios, rels, allowed = [], [], []
        for k in range(self.count):
            signs = np.concatenate([self.signs[k, self.slices[n]] for n in names])
            ratio, rel = (
                (0.0, 0.0)
                if fd.unresolved[k]
                else self._compare(g, signs, fd, k, rtol, atol, error_factor, slack)
            )
            ratios.append(ratio)
            rels.append(rel)
            if not fd.unresolved[k]:
                allowed.append(self.allowance(g, fd, k, rtol, atol, error_factor, slack))
        failed = tuple(k for k, ratio in enumerate(ratios) if ratio > 1.0)
        verdict = DirectionalVerdict(
            self.count,
            failed,
            max(rels) if rels else None,
            allowed=max(allowed) if allowed else None,
        )
        if not failed:
            return verdict
        return self._localise(
            grads,
            names,
            failed[int(np.argmax([ratios[k] for k in failed]))],
            verdict,
            rtol,
            atol,
            error_factor,
            noise,
        )

    def _localise(
        self,
        grads: dict[str, np.ndarray],
        names: tuple[str, ...],
        k: int,
        verdict: DirectionalVerdict,
        rtol: float,
        atol: float,
        error_factor: float,
        noise: dict[str, np.ndarray],
    ) -> DirectionalVerdict:
        """Restrict direction k to each tensor, then bisect the worst one down to an entry."""
        whole = [(n, slice(0, self.slices[n].stop - self.slices[n].start)) for n in names]
        per_tensor = self._excess(grads, k, whole, rtol, atol, error_factor, noise)
        worst = int(np.argmax([ratio for ratio, _ in per_tensor]))
        if per_tensor[worst][0] <= 1.0:
            return verdict  # the disagreement only shows when tensors add up
        name, part = whole[worst]
        rel = per_tensor[worst][1]
        while part.stop - part.start > 1:
            mid = (part.start + part.stop) // 2
            halves = [slice(part.start, mid), slice(mid, part.stop)]
            results = self._excess(
                grads, k, [(name, h) for h in halves], rtol, atol, error_factor, noise
            )
            best = int(np.argmax([ratio for ratio, _ in results]))
            if results[best][0] <= 1.0:
                break  # neither half fails alone: stop at the smallest failing range
            part, rel = halves[best], results[best][1]
        shape = next(p.shape for n, p in zip(self.names, self.problem.parameters) if n == name)
        index = (
            tuple(int(i) for i in np.unravel_index(part.start, shape))
            if part.stop - part.start == 1
            else None
        )
        return DirectionalVerdict(
            verdict.directions,
            verdict.failed,
            verdict.max_rel_err,
            name,
            index,
            rel,
            verdict.allowed,
        )


def _rss(values: np.ndarray) -> float:
    """Root-sum-square: what per-entry allowances add up to along a random-sign direction."""
    return float(np.sqrt(np.sum(np.square(values))))
