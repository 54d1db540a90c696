"""Benchmark: time to a verdict on a ~1M-parameter ReLU MLP (64 samples), one wrong entry.

    python benchmarks/bench_scale.py            # ~1-2 minutes on 2 cores

Side by side, each a whole process (imports included), best of --repeats runs:
  - `python -c "import torch"`: the yardstick (the issue asks for at most 3x it);
  - `gradcheck run` with default options, for a correct user gradient and for one whose
    largest W1 entry is off by 1e-3 or by 1e-6 (relative): verdict, exit code, seconds;
  - torch.autograd.gradcheck fast mode on the same loss, with the user's gradient as the
    backward of a torch.autograd.Function, for the same three gradients;
  - torch.autograd.gradcheck slow mode, extrapolated from its time on a 2,000-entry subset.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
LAYERS = [512, 1024, 512, 1]
SAMPLES = 64

USERS = """
import numpy as np


def correct(X, T, W, B):
    A = [X]
    for i in range(len(W) - 1):
        A.append(np.maximum(0, A[-1] @ W[i] + B[i]))
    Y = A[-1] @ W[-1] + B[-1]
    delta = 2 * (Y - T) / Y.size
    DW, DB = [None] * len(W), [None] * len(W)
    for i in reversed(range(len(W))):
        DW[i] = A[i].T @ delta
        DB[i] = delta.sum(axis=0)
        if i > 0:
            delta = (delta @ W[i].T) * (A[i] > 0)
    return DW, DB


def _off(X, T, W, B, relative):
    DW, DB = correct(X, T, W, B)
    i, j = np.unravel_index(np.argmax(np.abs(DW[1])), DW[1].shape)
    DW[1][i, j] *= 1 + relative
    return DW, DB


def off_1e3(X, T, W, B):
    return _off(X, T, W, B, 1e-3)


def off_1e6(X, T, W, B):
    return _off(X, T, W, B, 1e-6)
"""

TORCH_CHECK = """
import sys, time
import numpy as np
import torch
sys.path.insert(0, {folder!r})
import users
data = np.load({data!r})
k = {depth}
W = [data[f"W{{i}}"] for i in range(k)]
B = [data[f"B{{i}}"] for i in range(k)]
DW, DB = getattr(users, {function!r})(data["X"], data["T"], W, B)
grads = [torch.from_numpy(np.asarray(g)) for g in (*DW, *DB)]
X, T = torch.from_numpy(data["X"]), torch.from_numpy(data["T"])


class Loss(torch.autograd.Function):
    @staticmethod
    def forward(ctx, *params):
        A = X
        for i in range(k):
            A = A @ params[i] + params[k + i]
            if i < k - 1:
                A = torch.relu(A)
        return ((A - T) ** 2).mean()

    @staticmethod
    def backward(ctx, grad_output):
        return tuple(grad_output * g for g in grads)


params = [torch.from_numpy(p).requires_grad_() for p in (*W, *B)]
subset = {subset}
if subset:  # slow mode on the first `subset` entries of W0 only (the rest held fixed)
    w0 = params[0].detach().reshape(-1)[:subset].clone().requires_grad_()
    rest = [p.detach() for p in params]

    def f(part):
        full = torch.cat([part, rest[0].reshape(-1)[subset:]]).reshape(rest[0].shape)
        return Loss.apply(full, *rest[1:])

    params, fn = [w0], f
else:
    fn = Loss.apply
start = time.perf_counter()
ok = torch.autograd.gradcheck(fn, params, fast_mode=not subset, raise_exception=False)
print(ok, time.perf_counter() - start)
"""


def best(command: list[str], repeats: int) -> tuple[float, int, str]:
    """Fastest wall time of `command` over `repeats` runs, its exit code and last line."""
    times, code, last = [], 0, ""
    for _ in range(repeats):
        start = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
        times.append(time.perf_counter() - start)
        code = done.returncode
        lines = [line for line in done.stdout.splitlines() if line.strip()]
        last = lines[-1] if lines else done.stderr.strip()[-200:]
    return min(times), code, last


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="gradcheck-scale-"))
    rng = np.random.default_rng(1)
    W = [rng.standard_normal((a, b)) * np.sqrt(2.0 / a) for a, b in zip(LAYERS, LAYERS[1:])]
    B = [0.1 * rng.standard_normal(b) for b in LAYERS[1:]]
    data = folder / "big.npz"
    arrays = {f"W{i}": w for i, w in enumerate(W)} | {f"B{i}": b for i, b in enumerate(B)}
    X, T = rng.standard_normal((SAMPLES, LAYERS[0])), rng.standard_normal((SAMPLES, 1))
    np.savez(data, X=X, T=T, **arrays)
    (folder / "users.py").write_text(textwrap.dedent(USERS))
    count = sum(w.size for w in W) + sum(b.size for b in B)
    print(f"MLP {'-'.join(map(str, LAYERS))}, {count:,} parameters, {SAMPLES} samples, ReLU, MSE")
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}\n")

    torch_import, _, _ = best([sys.executable, "-c", "import torch"], args.repeats)
    print(f'python -c "import torch": {torch_import:.2f} s (3x = {3 * torch_import:.2f} s)\n')
    print(
        "| gradient | gradcheck run | exit | ratio to import torch | torch fast | torch verdict |"
    )
    print("|---|---|---|---|---|---|")
    gradcheck = [sys.executable, "-m", "gradcheck_cli", "run", "--data", str(data)]
    for function in ("correct", "off_1e3", "off_1e6"):
        ours, code, _ = best(
            [*gradcheck, "--user", f"{folder / 'users.py'}:{function}"], args.repeats
        )
        script = TORCH_CHECK.format(
            folder=str(folder), data=str(data), depth=len(W), function=function, subset=0
        )
        fast, _, line = best([sys.executable, "-c", script], args.repeats)
        verdict = (
            "pass" if line.startswith("True") else "FAIL" if line.startswith("False") else line
        )
        print(
            f"| {function} | {ours:.2f} s | {code} | {ours / torch_import:.1f}x "
            f"| {fast:.2f} s | {verdict} |"
        )
    subset = 2000
    script = TORCH_CHECK.format(
        folder=str(folder), data=str(data), depth=len(W), function="correct", subset=subset
    )
    _, _, line = best([sys.executable, "-c", script], 1)
    seconds = float(line.split()[1])
    print(
        f"\ntorch slow mode: {seconds:.1f} s for {subset:,} entries, so about "
        f"{seconds * count / subset / 3600:.1f} hours for all {count:,} (extrapolated)"
    )
    print(
        "gradcheck: every entry of the user's gradient against the built-ins' float64 "
        "consensus; the built-ins validated by sampled finite differences plus one random "
        "direction per tensor."
    )


if __name__ == "__main__":
    main()
