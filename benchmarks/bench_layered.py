"""Benchmark: full finite differences on a LeNet-sized CNN against torch.autograd.gradcheck.

    python benchmarks/bench_layered.py               # ~1-3 minutes on 2 cores
    python benchmarks/bench_layered.py --torch-all   # gradcheck on every entry (hours)

The network is LeNet-5 on 16 images 28x28 (Conv2d(1,6,5,padding=2)-ReLU-MaxPool2d(2)-
Conv2d(6,16,5)-ReLU-MaxPool2d(2)-Flatten-Linear(400,120)-ReLU-Linear(120,84)-ReLU-
Linear(84,10), cross-entropy, float64, 61,706 parameters). In the same process it times:
  - ours: `finite_differences(problem)` in full mode (every entry, 4 loss evaluations per
    entry for the error estimate, ReLU and max-pool kinks detected and resolved);
  - torch.autograd.gradcheck in slow mode (fast_mode=False: a central difference per entry,
    two forward passes each) on the loss as a function of the parameters. Every entry costs
    the same two forward passes, so by default it runs on a subset of whole tensors (the
    others held fixed) and the time is extrapolated per entry; --torch-all runs them all;
  - then the whole verdict (`run_checks` with the three built-ins, full mode).
Accuracy: our estimates against torch autograd (max relative error, relative to each
parameter's largest entry), entries beyond our error estimate, and false failures of the
correct gradient.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.func import functional_call

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gradcheck_cli.backends import backend_names, create_backend
from gradcheck_cli.fd import finite_differences
from gradcheck_cli.inputs import make_layered_problem
from gradcheck_cli.inputs.models import layers_of_model
from gradcheck_cli.verdict import CheckOptions, run_checks

SAMPLES = 16
# The tensors gradcheck's slow mode times by default: the smallest ones and the output
# layer (1,000 entries); its cost per entry is two forward passes whatever the tensor.
TORCH_SUBSET = ("0.weight", "0.bias", "3.bias", "7.bias", "9.bias", "11.weight", "11.bias")


def lenet(seed: int) -> tuple[nn.Sequential, np.ndarray, np.ndarray]:
    """LeNet-5 with random weights, 16 random images 28x28 and class labels."""
    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(400, 120),
        nn.ReLU(),
        nn.Linear(120, 84),
        nn.ReLU(),
        nn.Linear(84, 10),
    )
    rng = np.random.default_rng(seed)
    return model, rng.standard_normal((SAMPLES, 1, 28, 28)), rng.integers(0, 10, SAMPLES)


def torch_slow(
    model: nn.Module, X: np.ndarray, T: np.ndarray, names: list[str]
) -> tuple[float, bool]:
    """Seconds of gradcheck's slow mode over the tensors `names`, and its verdict."""
    net = model.double()
    fixed = {n: p.detach().clone() for n, p in net.named_parameters()}
    x, t = torch.tensor(X), torch.tensor(T)

    def loss(*tensors: torch.Tensor) -> torch.Tensor:
        params = dict(fixed)
        params.update(zip(names, tensors))
        return nn.functional.cross_entropy(functional_call(net, params, (x,)), t)

    inputs = tuple(fixed[n].clone().requires_grad_(True) for n in names)
    start = time.perf_counter()
    try:
        ok = torch.autograd.gradcheck(
            loss, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, fast_mode=False, raise_exception=False
        )
    finally:
        seconds = time.perf_counter() - start
    return seconds, bool(ok)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--torch-all", action="store_true", help="gradcheck every entry")
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    model, X, T = lenet(args.seed)
    layers, params = layers_of_model(model)
    problem = make_layered_problem(X, T, layers, params, loss="cross-entropy")
    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch "
        f"{torch.__version__}, numpy {np.__version__}"
    )
    print(
        f"LeNet-5, {SAMPLES} images 28x28, cross-entropy, float64: "
        f"{problem.parameter_count:,} parameters"
    )

    start = time.perf_counter()
    fd = finite_differences(problem, mode="full")
    ours = time.perf_counter() - start
    print(
        f"ours, full finite differences: {ours:.1f} s "
        f"({fd.checked_count:,} entries, {fd.kink_count} kinks, {fd.unresolved_count} unjudged)"
    )

    exact = create_backend("torch-functional").gradients(problem).by_name()
    worst, beyond = 0.0, 0
    for name, estimate in fd.estimates.items():
        judged = ~fd.unresolved[name]
        error = np.abs(estimate - exact[name])
        worst = max(worst, float(error[judged].max() / np.abs(exact[name]).max()))
        beyond += int((error[judged] > fd.error[name][judged]).sum())
    print(
        f"  max error against torch autograd {worst:.1e} of each parameter's largest entry; "
        f"{beyond} entries beyond their error estimate"
    )

    names = problem.parameter_names if args.torch_all else list(TORCH_SUBSET)
    entries = sum(problem.params[n].size for n in names)
    seconds, verdict = torch_slow(model, X, T, names)
    per_entry = seconds / entries
    total = per_entry * problem.parameter_count
    how = (
        "measured" if args.torch_all else f"extrapolated from {entries:,} entries ({seconds:.1f} s)"
    )
    print(
        f"torch.autograd.gradcheck slow mode: {total:.0f} s ({how}; "
        f"{per_entry * 1e3:.1f} ms per entry), verdict {'pass' if verdict else 'FAIL'}"
    )
    print(f"ratio: ours is {total / ours:.0f}x faster (goal: at least 10x)")

    start = time.perf_counter()
    report = run_checks(
        problem, [create_backend(n) for n in backend_names()], CheckOptions(fd_mode="full")
    )
    whole = time.perf_counter() - start
    failed = report.finite_difference.failed if report.finite_difference else None
    print(
        f"whole verdict (3 built-ins, full finite differences): {whole:.1f} s, "
        f"{'ok' if report.ok else 'FAILED'}, {failed} entries failed (false failures)"
    )


if __name__ == "__main__":
    main()
