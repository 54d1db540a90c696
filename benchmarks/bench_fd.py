"""Benchmark: our batched finite-difference check against torch.autograd.gradcheck.

    python benchmarks/bench_fd.py            # ~2-4 minutes on 2 cores
    python benchmarks/bench_fd.py --quick    # smaller repeats, no 1M directional case

For MLPs of about 100, 10k and 100k parameters (64 samples, ReLU, MSE, float64) it
times, in the same process and on the same problem:
  - ours: `finite_differences(problem)` in full mode (every entry, 4 loss evaluations
    per entry for the error estimate, kink detection and resolution);
  - torch.autograd.gradcheck, slow mode (one entry at a time) and fast mode (random
    projections), on the loss as a function of all parameters;
  - (small cases) the plain one-entry-at-a-time NumPy loop.
Accuracy: our estimates against torch autograd (float64), the number of entries our
verdict would fail for the correct gradient (false failures), and gradcheck's verdict.
Roofline: the machine's float64 GEMM rate is measured in the same run; we report the
share of it that our check's matrix products reach, and the time a full forward pass
per evaluation (the naive method's work) would need at that rate.
Then directional mode on a ~1M-parameter MLP, correct and with one wrong entry.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gradcheck_cli.backends.numpy_backprop import NumpyBackprop
from gradcheck_cli.fd import FiniteDifferences, engine, finite_differences, one_at_a_time
from gradcheck_cli.inputs.loading import make_problem
from gradcheck_cli.problem import Gradients, Problem
from gradcheck_cli.verdict import DEFAULT_TOLERANCES, FD_ERROR_FACTOR, CheckOptions, run_checks

SAMPLES = 64
CASES = {
    "~100": [4, 6, 6, 6, 1],
    "~10k": [32, 64, 64, 64, 1],
    "~100k": [64, 256, 256, 64, 1],
    "~10k, kink": [32, 64, 64, 64, 1],  # pre-activation Z0[0, 0] placed 1e-7 above zero
}
KINK_DISTANCE = 1e-7
# torch slow mode costs 2 full forward passes per entry: above this many entries we
# time gradcheck on a subset of the tensors (the others held fixed) and extrapolate.
# The subset takes whole tensors, smallest first, including a large one: gradcheck's
# cost per entry is a fixed overhead plus two forward passes, the same for any tensor.
TORCH_SLOW_MAX_ENTRIES = 12_000
TORCH_SLOW_SUBSET = 20_000
LOOP_MAX_ENTRIES = 12_000
EVALUATIONS_PER_ENTRY = 4  # +-h and +-h/2


def mlp(layers: list[int], samples: int = SAMPLES, seed: int = 0) -> Problem:
    """A random ReLU MLP with He-scaled weights and MSE loss."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((samples, layers[0]))
    T = rng.standard_normal((samples, layers[-1]))
    W = [rng.standard_normal((a, b)) * np.sqrt(2.0 / a) for a, b in zip(layers, layers[1:])]
    B = [0.1 * rng.standard_normal(b) for b in layers[1:]]
    return make_problem(X, T, W, B, activation="relu", loss="mse")


def with_kink(problem: Problem) -> Problem:
    """The same MLP with pre-activation Z0[0, 0] moved to KINK_DISTANCE above zero."""
    biases = [b.copy() for b in problem.biases]
    biases[0][0] = KINK_DISTANCE - problem.X[0] @ problem.weights[0][:, 0]
    return make_problem(problem.X, problem.T, list(problem.weights), biases, activation="relu")


def best_of(fn: Callable[[], object], repeats: int) -> float:
    """The fastest of `repeats` runs, in seconds."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def gemm_gflops() -> tuple[float, str]:
    """The best float64 GEMM rate over shapes like ours and a large square one."""
    rng = np.random.default_rng(0)
    best, where = 0.0, ""
    for m, k, n in ((16384, 64, 64), (16384, 256, 256), (16384, 256, 64), (1024, 1024, 1024)):
        a, b = rng.standard_normal((m, k)), rng.standard_normal((k, n))
        out = np.empty((m, n))
        seconds = best_of(partial(np.matmul, a, b, out=out), 5)
        rate = 2.0 * m * k * n / seconds / 1e9
        if rate > best:
            best, where = rate, f"{m}x{k} @ {k}x{n}"
    return best, where


class _CountingNumpy:
    """numpy, but counting the flops of the FD engine's matrix products (np.matmul)."""

    def __init__(self) -> None:
        self.flops = 0

    def __getattr__(self, name: str) -> object:
        return getattr(np, name)

    def matmul(self, a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        self.flops += 2 * a.shape[0] * a.shape[1] * b.shape[1]
        return np.matmul(a, b, out=out)


def engine_gemm_flops(problem: Problem) -> int:
    """Floating-point operations in the matrix products of one full FD check."""
    counter = _CountingNumpy()
    engine.np = counter  # type: ignore[assignment]
    try:
        finite_differences(problem)
    finally:
        engine.np = np
    return counter.flops


def naive_flops(layers: list[int], samples: int) -> float:
    """Flops of the naive method: one full forward pass per evaluation, 4 per entry."""
    sizes = list(zip(layers, layers[1:]))
    forward = sum(2.0 * samples * a * b for a, b in sizes)
    params = sum(a * b + b for a, b in sizes)
    return EVALUATIONS_PER_ENTRY * params * forward


def torch_loss(problem: Problem, grad_names: set[str]) -> tuple[Callable[..., torch.Tensor], list]:
    """The MLP's loss as a torch function of its parameter tensors (float64)."""
    X = torch.tensor(problem.X)
    T = torch.tensor(problem.T)
    k = problem.depth
    tensors = [
        torch.tensor(p, requires_grad=name in grad_names)
        for name, p in zip(problem.parameter_names, problem.parameters)
    ]

    def fn(*params: torch.Tensor) -> torch.Tensor:
        a = X
        for i in range(k):
            a = a @ params[i] + params[k + i]
            if i < k - 1:
                a = torch.relu(a)
        return ((a - T) ** 2).mean()

    return fn, tensors


def time_torch(problem: Problem, fast: bool) -> tuple[float, bool, str]:
    """(seconds for all parameters, gradcheck's verdict, note) of torch.autograd.gradcheck."""
    names = set(problem.parameter_names)
    note = ""
    total = problem.parameter_count
    if not fast and total > TORCH_SLOW_MAX_ENTRIES:
        chosen: set[str] = set()
        count = 0
        for name, p in sorted(
            zip(problem.parameter_names, problem.parameters), key=lambda x: x[1].size
        ):
            if count + p.size > TORCH_SLOW_SUBSET and chosen:
                continue
            chosen.add(name)
            count += p.size
        names = chosen
        note = f"extrapolated from {count:,} entries ({', '.join(sorted(names))})"
    fn, tensors = torch_loss(problem, names)
    fn(*tensors)  # warm-up
    start = time.perf_counter()
    passed = torch.autograd.gradcheck(fn, tensors, fast_mode=fast, raise_exception=False)
    seconds = time.perf_counter() - start
    if note:
        seconds *= total / sum(t.numel() for t in tensors if t.requires_grad)
    return seconds, bool(passed), note


def accuracy(problem: Problem, fd: FiniteDifferences) -> tuple[float, int]:
    """(max relative error against autograd, entries our verdict would fail)."""
    fn, tensors = torch_loss(problem, set(problem.parameter_names))
    loss = fn(*tensors)
    grads = torch.autograd.grad(loss, tensors)
    rtol, atol = DEFAULT_TOLERANCES["float64"]
    worst, false_failures = 0.0, 0
    for name, g in zip(problem.parameter_names, grads):
        ref = g.numpy()
        est, err = fd.estimates[name], fd.error[name]
        judged = ~fd.unresolved[name]
        rel = np.abs(est - ref) / np.maximum(np.abs(ref), 1e-3 * np.abs(ref).max() + 1e-300)
        worst = max(worst, float(rel[judged].max(initial=0.0)))
        allowed = atol + rtol * np.abs(est) + FD_ERROR_FACTOR * err
        false_failures += int((judged & (np.abs(ref - est) > allowed)).sum())
    return worst, false_failures


class OneWrongEntry(NumpyBackprop):
    """The NumPy backend with one entry of W1 moved by `delta`."""

    def __init__(self, delta: float) -> None:
        self.delta = delta
        self.name = f"W1[3, 5] off by {delta:g}"

    def gradients(self, problem: Problem) -> Gradients:
        g = super().gradients(problem)
        dW = [w.copy() for w in g.dW]
        dW[1][3, 5] += self.delta
        return Gradients(g.loss, tuple(dW), g.dB)


class DoubledOutputBias(NumpyBackprop):
    """The NumPy backend with the output bias gradient doubled (a lost mean factor)."""

    name = "output-bias gradient doubled"

    def gradients(self, problem: Problem) -> Gradients:
        g = super().gradients(problem)
        assert g.dB is not None
        return Gradients(g.loss, g.dW, (*g.dB[:-1], 2.0 * g.dB[-1]))


def main() -> None:
    """Run every case and print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats, skip the 1M case")
    parser.add_argument("--directional-only", action="store_true", help="only the 1M case")
    args = parser.parse_args()
    repeats = 1 if args.quick else 5
    torch.set_num_threads(torch.get_num_threads())
    peak, shape = gemm_gflops()
    print(
        f"machine: {platform.processor() or platform.machine()}, torch threads "
        f"{torch.get_num_threads()}, numpy {np.__version__}, torch {torch.__version__}"
    )
    print(f"float64 GEMM peak measured: {peak:.1f} GFLOP/s ({shape})")
    # Other processes share the cores: the load average says how much.
    print(f"load average at start: {os.getloadavg()[0]:.2f}\n")
    if not args.directional_only:
        table(peak, repeats)
    if not args.quick:
        directional()


def table(peak: float, repeats: int) -> None:
    """Full mode against torch.autograd.gradcheck on the three MLPs."""
    header = (
        "| MLP | params | ours full | torch slow | torch fast | slow/ours | fast/ours "
        "| NumPy loop | ours max rel err | false failures | kinks | gradcheck slow/fast verdict "
        "| GEMM GFLOP | roofline share | naive GFLOP |"
    )
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    notes = []
    for label, layers in CASES.items():
        problem = mlp(layers) if label != "~10k, kink" else with_kink(mlp(layers))
        fd = finite_differences(problem)
        ours = best_of(partial(finite_differences, problem), repeats)
        slow, slow_ok, note = time_torch(problem, fast=False)
        fast = min(time_torch(problem, fast=True)[0] for _ in range(repeats))
        fast_ok = time_torch(problem, fast=True)[1]
        loop = (
            f"{best_of(partial(one_at_a_time, problem), 1):.2f} s"
            if problem.parameter_count <= LOOP_MAX_ENTRIES
            else "—"
        )
        worst, false_failures = accuracy(problem, fd)
        gemm, naive = float(engine_gemm_flops(problem)), naive_flops(layers, SAMPLES)
        share = gemm / 1e9 / peak / ours
        if note:
            notes.append(f"{label}: torch slow mode {note}")
        arch = "-".join(map(str, layers)) + (" with a kink" if "kink" in label else "")
        print(
            f"| {arch} | {problem.parameter_count:,} | {ours:.3f} s | {slow:.2f} s | {fast:.3f} s "
            f"| {slow / ours:.1f}x | {fast / ours:.2f}x | {loop} | {worst:.1e} | {false_failures} "
            f"| {fd.kink_count} ({fd.unresolved_count} unjudged) "
            f"| {'pass' if slow_ok else 'FAIL'}/{'pass' if fast_ok else 'FAIL'} "
            f"| {gemm / 1e9:.2f} | {share:.0%} "
            f"| {naive / 1e9:.1f} ({naive / 1e9 / peak:.2f} s at peak) |"
        )
    print(f"\nload average after the table: {os.getloadavg()[0]:.2f}")
    for line in notes:
        print(f"\nnote: {line}")
    print(
        "\nours: 4 evaluations per entry (+-h, +-h/2), kink detection and resolution, "
        "error estimates. roofline share = (GEMM flops ours executes / peak) / our time; "
        "naive = one full forward per evaluation."
    )


def directional() -> None:
    """Directional mode on a ~1M-parameter MLP: a correct and two wrong gradients."""
    big = mlp([512, 1024, 512, 1], seed=1)
    g = NumpyBackprop().gradients(big)
    l2 = float(np.sqrt(sum(float((a * a).sum()) for a in (*g.dW, *(g.dB or ())))))
    print(f"\ndirectional mode, {big.parameter_count:,}-parameter MLP 512-1024-512-1, 64 samples:")
    print(f"  |g|_2 = {l2:.3g}: a wrong projection shows above rtol |g|_2 + atol sqrt(P)")
    for backend in (
        NumpyBackprop(),
        DoubledOutputBias(),
        OneWrongEntry(1e-2),
        OneWrongEntry(1e-3),
        OneWrongEntry(1e-4),
    ):
        options = CheckOptions(fd_mode="directional")
        start = time.perf_counter()
        report = run_checks(big, [backend], options)
        seconds = time.perf_counter() - start
        result = report.backends[0]
        fd_summary = report.finite_difference
        assert fd_summary is not None
        bad = [f"{p.name}{list(p.worst_index or ())}" for p in result.params if not p.ok]
        where = f"; localised to {', '.join(bad)}" if bad else ""
        print(
            f"  {backend.name}: {'ok' if result.ok else 'FAILED'} in {seconds:.2f} s "
            f"(finite differences {report.timings['finite_difference']:.2f} s, "
            f"{fd_summary.directions} directions, {fd_summary.failed} failed, "
            f"max rel err {fd_summary.max_rel_err:.1e}){where}"
        )


if __name__ == "__main__":
    main()
