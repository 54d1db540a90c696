"""Benchmark of verdict quality: false alarms and misses over random problems and mistakes.

    python benchmarks/bench_verdicts.py                 # 150 problems, ~2 minutes on 2 cores
    python benchmarks/bench_verdicts.py --problems 40 --torch   # also torch.autograd.gradcheck

Each problem is a random MLP (1-5 layers, widths 1-8, every activation x loss pair, float64
and float32) at an ordinary point, next to a ReLU kink, or nearly converged. A careful
user's gradient function (torch autograd in the problem's dtype, written here, independent
of gradcheck) is checked as given (a non-zero exit is a false alarm) and with one mistake at
a time (exit 0 is a miss):
  - one entry off by 1e-1, 1e-2, 1e-3, 1e-4 of its parameter's largest entry,
  - a whole parameter times 1.01, times 2, times -1, zeroed, or transposed (square ones).
With --torch, torch.autograd.gradcheck judges the same function on the float64 problems
(the user's gradient as the backward of a torch.autograd.Function, the loss as forward).
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import gradcheck_cli
from gradcheck_cli.inputs import make_problem
from gradcheck_cli.nn import ACTIVATIONS, LOSSES
from gradcheck_cli.problem import Problem

POINTS = ("ordinary", "kink", "converged")
ENTRY_ERRORS = (1e-1, 1e-2, 1e-3, 1e-4)
WHOLE = ("x1.01", "x2", "sign", "zero", "transpose")


def random_problem(rng: np.random.Generator, index: int) -> tuple[Problem, str]:
    """Problem number `index`: its activation, loss, dtype and point cycle with the index."""
    pairs = [(a, loss) for a in ACTIVATIONS for loss in LOSSES]
    activation, loss = pairs[index % len(pairs)]
    dtype = ("float64", "float32")[(index // len(pairs)) % 2]
    point = POINTS[(index // (2 * len(pairs))) % len(POINTS)]
    depth = int(rng.integers(1, 6))
    outputs = int(rng.integers(2, 5)) if loss == "cross-entropy" else int(rng.integers(1, 5))
    widths = [int(rng.integers(1, 9)) for _ in range(depth)] + [outputs]
    samples = int(rng.integers(2, 17))
    X = rng.standard_normal((samples, widths[0]))
    W = [rng.standard_normal((a, b)) / np.sqrt(a) for a, b in zip(widths[:-1], widths[1:])]
    B = [0.1 * rng.standard_normal(b) for b in widths[1:]]
    Y = _forward(X, W, B, activation)
    if point == "kink" and depth >= 2:
        # Put one hidden pre-activation at (or within rounding of) zero.
        layer = int(rng.integers(0, depth - 1))
        Z = _forward(X, W[: layer + 1], B[: layer + 1], activation)
        row, unit = int(rng.integers(samples)), int(rng.integers(Z.shape[1]))
        B[layer][unit] -= Z[row, unit] - rng.choice([0.0, 1e-12, -1e-12, 1e-9])
        Y = _forward(X, W, B, activation)
    if point == "converged":
        if loss in ("mse", "sse"):
            residual = 10.0 ** rng.uniform(-6, -3)  # of the outputs' size
            T = Y + residual * np.abs(Y).max() * rng.standard_normal(Y.shape)
        else:
            W[-1], B[-1] = 30 * W[-1], 30 * B[-1]  # confident outputs
            Y = _forward(X, W, B, activation)
            T = Y.argmax(axis=1) if loss == "cross-entropy" else (Y > 0).astype(float)
    elif loss == "cross-entropy":
        T = rng.integers(0, outputs, size=samples)
    elif loss == "bce":
        T = rng.uniform(0, 1, size=(samples, outputs))
    else:
        T = rng.standard_normal((samples, outputs))
    problem = make_problem(X, T, W, B, activation=activation, loss=loss, dtype=dtype)
    return problem, point


def _forward(
    X: np.ndarray, W: list[np.ndarray], B: list[np.ndarray], activation: str
) -> np.ndarray:
    """The output of the MLP (W, B): the pre-activation of its last layer."""
    A = X
    for i, (w, b) in enumerate(zip(W, B)):
        A = A @ w + b
        if i < len(W) - 1:
            A = TORCH_ACT[activation](torch.from_numpy(A)).numpy()
    return A


TORCH_ACT: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "relu": torch.relu,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "leaky-relu": lambda z: torch.nn.functional.leaky_relu(z, 0.01),
    "identity": lambda z: z,
}


def torch_loss(problem: Problem, params: list[torch.Tensor], dtype: torch.dtype) -> torch.Tensor:
    """The problem's loss written with torch (independent of gradcheck's backends)."""
    k = problem.depth
    A = torch.tensor(problem.X, dtype=dtype)
    for i in range(k):
        A = A @ params[i] + params[k + i]
        if i < k - 1:
            A = TORCH_ACT[problem.activation](A)
    F = torch.nn.functional
    if problem.loss == "cross-entropy":
        T = torch.tensor(problem.T)
        return F.cross_entropy(A, T if T.dtype == torch.int64 else T.to(dtype))
    T = torch.tensor(problem.T, dtype=dtype)
    if problem.loss == "bce":
        return F.binary_cross_entropy_with_logits(A, T)
    return F.mse_loss(A, T, reduction="mean" if problem.loss == "mse" else "sum")


def careful_user(problem: Problem) -> list[np.ndarray]:
    """The gradient a careful user computes: autograd in the problem's dtype."""
    dtype = torch.float64 if problem.dtype == "float64" else torch.float32
    params = [torch.tensor(p, dtype=dtype, requires_grad=True) for p in problem.parameters]
    torch_loss(problem, params, dtype).backward()
    return [p.grad.numpy().astype(np.float64) for p in params]  # type: ignore[union-attr]


def mutate(
    grads: list[np.ndarray], kind: str, rng: np.random.Generator
) -> tuple[list[np.ndarray], int, float] | None:
    """The gradient with one mistake of `kind`, the parameter it is in, and its size (the
    largest change of an entry, as a fraction of that parameter's largest entry); None when
    it would change nothing."""
    out = [g.copy() for g in grads]
    candidates = [i for i, g in enumerate(grads) if np.abs(g).max() > 0]
    if kind == "transpose":
        square = [i for i in candidates if grads[i].ndim == 2 and len(set(grads[i].shape)) == 1]
        candidates = [i for i in square if not np.allclose(grads[i], grads[i].T)]
    if not candidates:
        return None
    p = int(rng.choice(candidates))
    scale = float(np.abs(grads[p]).max())
    if kind.startswith("entry"):
        flat = out[p].reshape(-1)
        flat[int(rng.integers(flat.size))] += float(kind.split()[1]) * scale * rng.choice([-1, 1])
    elif kind == "x1.01":
        out[p] *= 1.01
    elif kind == "x2":
        out[p] *= 2.0
    elif kind == "sign":
        out[p] *= -1.0
    elif kind == "zero":
        out[p][...] = 0.0
    elif kind == "transpose":
        out[p] = out[p].T.copy()
    return out, p, float(np.abs(out[p] - grads[p]).max()) / scale


def as_function(problem: Problem, grads: list[np.ndarray]) -> Callable[..., Any]:
    """A user function in the general form returning `grads` (in the problem's dtype)."""
    k = problem.depth
    dtype = np.dtype(problem.dtype)

    def user(X, T, W, B):  # type: ignore[no-untyped-def]
        return [g.astype(dtype) for g in grads[:k]], [g.astype(dtype) for g in grads[k:]]

    return user


def ours(problem: Problem, grads: list[np.ndarray]) -> tuple[str, dict[str, float]]:
    """gradcheck's verdict on the user function returning `grads`: "pass" (exit 0),
    "inconclusive" or "fail" (exit 1), and the sensitivity it reported per parameter."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = gradcheck_cli.check(as_function(problem, grads), problem=problem)
    user = report.backend("user")
    # No stated sensitivity (a reference that is exactly zero): nothing is claimed there.
    sensitivity = {
        p.name: p.sensitivity if p.sensitivity is not None else np.inf for p in user.params
    }
    if report.ok:
        return "pass", sensitivity
    failed = any(not r.ok for r in report.backends)
    validation_failed = report.validation is not None and not report.validation.ok
    return ("fail" if failed or validation_failed else "inconclusive"), sensitivity


def torch_verdict(problem: Problem, grads: list[np.ndarray]) -> tuple[str, dict[str, float]]:
    """torch.autograd.gradcheck's verdict on the loss with the user's gradient as backward."""

    class Loss(torch.autograd.Function):
        @staticmethod
        def forward(ctx, *params):  # type: ignore[no-untyped-def]
            return torch_loss(problem, list(params), torch.float64)

        @staticmethod
        def backward(ctx, grad_output):  # type: ignore[no-untyped-def]
            return tuple(grad_output * torch.tensor(g) for g in grads)

    params = [torch.tensor(p, requires_grad=True) for p in problem.parameters]
    try:
        ok = bool(torch.autograd.gradcheck(Loss.apply, params, raise_exception=False))
    except Exception:
        ok = False
    return ("pass" if ok else "fail"), {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", type=int, default=150)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--torch", action="store_true", help="also run torch.autograd.gradcheck")
    parser.add_argument(
        "--dtype", choices=("float64", "float32"), help="only problems of one dtype"
    )
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    kinds = [f"entry {e:g}" for e in ENTRY_ERRORS] + list(WHOLE)
    tally: Counter[tuple[str, str, str]] = Counter()  # (checker, dtype, outcome)
    examples: list[str] = []
    start = time.perf_counter()
    for index in range(args.problems):
        problem, point = random_problem(rng, index)
        if args.dtype is not None and problem.dtype != args.dtype:
            continue
        correct = careful_user(problem)
        label = f"#{index} {problem.describe()} at a {point} point"
        checkers: list[tuple[str, Callable[..., tuple[str, dict[str, float]]]]] = [("ours", ours)]
        if args.torch and problem.dtype == "float64":
            checkers.append(("torch", torch_verdict))
        for name, checker in checkers:
            tally[name, problem.dtype, "problems"] += 1
            status, sensitivity = checker(problem, correct)
            if status != "pass":
                tally[name, problem.dtype, status] += 1
                examples.append(f"{name} {status} on a correct gradient: {label}")
            for k, kind in enumerate(kinds):
                mutation = mutate(correct, kind, np.random.default_rng([args.seed, index, k]))
                if mutation is None:
                    continue
                wrong, param, size = mutation
                tally[name, problem.dtype, f"{kind} tried"] += 1
                if checker(problem, wrong)[0] != "pass":
                    continue
                pname = problem.parameter_names[param]
                if size <= sensitivity.get(pname, 0.0):
                    # Below the sensitivity the report stated for that parameter.
                    tally[name, problem.dtype, f"{kind} below"] += 1
                else:
                    tally[name, problem.dtype, f"{kind} missed"] += 1
                    examples.append(f"{name} missed {kind} in {pname}: {label}")
    seconds = time.perf_counter() - start
    print(f"{args.problems} problems in {seconds:.0f} s (seed {args.seed})\n")
    print(
        "| checker | dtype | problems | false alarms | inconclusive | " + " | ".join(kinds) + " |"
    )
    print("|---|---|---|---|---|" + "---|" * len(kinds))
    for name in ("ours", "torch"):
        for dtype in ("float64", "float32"):
            n = tally[name, dtype, "problems"]
            if not n:
                continue
            cells = [f"{tally[name, dtype, 'fail']}", f"{tally[name, dtype, 'inconclusive']}"]
            for k in kinds:
                below = tally[name, dtype, f"{k} below"]
                cells.append(
                    f"{tally[name, dtype, f'{k} missed']}/{tally[name, dtype, f'{k} tried']}"
                    + (f" (+{below} below)" if below else "")
                )
            print(f"| {name} | {dtype} | {n} | " + " | ".join(cells) + " |")
    print(
        "\nmisses are 'missed/tried'; entry errors are relative to the parameter's largest entry;"
        " '+n below': passed, but smaller than the sensitivity the report stated for it"
    )
    for line in examples[:40]:
        print(line)


if __name__ == "__main__":
    main()
