"""The measured float32 rounding noise that widens the verdict for float32 backends."""

from __future__ import annotations

import numpy as np
import torch

from gradcheck_cli.loading import make_problem
from gradcheck_cli.precision import rounding_noise


def test_float64_has_no_noise(exercise_problem):
    noise = rounding_noise(exercise_problem)
    assert noise.loss == 0.0
    assert set(noise.params.values()) == {0.0}


def _torch_float32_error(problem) -> float:
    """Largest |float32 - float64| gradient difference by torch autograd (independent of us)."""
    grads = {}
    for dtype in (torch.float32, torch.float64):
        W = [torch.tensor(w, dtype=dtype, requires_grad=True) for w in problem.weights]
        B = [torch.tensor(b, dtype=dtype, requires_grad=True) for b in problem.biases]
        A = torch.tensor(problem.X, dtype=dtype)
        for i, (w, b) in enumerate(zip(W, B)):
            A = A @ w + b
            if i < len(W) - 1:
                A = torch.relu(A)
        ((A - torch.tensor(problem.T, dtype=dtype)) ** 2).mean().backward()
        grads[dtype] = [p.grad.double().numpy() for p in W + B]
    return max(
        float(np.abs(a - b).max()) for a, b in zip(grads[torch.float32], grads[torch.float64])
    )


def test_float32_noise_is_the_size_of_torchs_float32_error(exercise_problem):
    # Near convergence (targets 1e-4 from the output) float32 loses digits to cancellation;
    # the measured noise must grow with it, as torch's own float32 error does.
    p = exercise_problem
    near = make_problem(p.X, _output(p) + 1e-4, p.weights, p.biases)
    for problem in (p, near):
        noise = max(rounding_noise(problem.with_dtype("float32")).params.values())
        torch_error = _torch_float32_error(problem)
        assert noise > 0
        # Same order of magnitude as an independent float32 implementation's error.
        assert torch_error / 30 < noise < torch_error * 30


def _output(problem) -> np.ndarray:
    A = problem.X
    for i, (w, b) in enumerate(zip(problem.weights, problem.biases)):
        A = A @ w + b
        if i < problem.depth - 1:
            A = np.maximum(A, 0)
    return A
