"""The measured rounding noise (float32 against float64; float64 between implementations)
and the kink flips that widen the verdict, allowed entry by entry so that they never hide a
wrong gradient."""

from __future__ import annotations

import numpy as np
import pytest

from gradcheck_cli.backends import backend_names
from gradcheck_cli.backends.base import Backend
from gradcheck_cli.backends.numpy_backprop import NumpyBackprop
from gradcheck_cli.inputs.loading import make_problem
from gradcheck_cli.problem import Gradients, Problem
from gradcheck_cli.verdict import CheckOptions, run_checks
from gradcheck_cli.verdict.judge import noise_floor
from gradcheck_cli.verdict.precision import rounding_noise
from tests.helpers import (
    ScaledBackend,
    builtin_backends,
    near_convergence,
    near_kink_float32,
    network_output,
    torch_by_name,
    zero_row_problem,
)

torch = pytest.importorskip("torch")  # the float32 errors are measured against torch's


@pytest.mark.parametrize("distance", [None, 1e-4, 1e-9])
def test_float64_noise_covers_an_independent_float64_implementation(exercise_problem, distance):
    # Two correct float64 implementations (ours, torch autograd) differ by rounding: at an
    # ordinary point by ~1e-16 of the gradient, near convergence by far more (Y - T cancels
    # digits). The measured noise, allowed ten times over, must cover that difference, and
    # stay at rounding level (far below any mistake).
    p = exercise_problem if distance is None else near_convergence(exercise_problem, distance)
    noise = rounding_noise(p)
    ours = NumpyBackprop().gradients(p).by_name()
    for name, theirs in torch_by_name(p).items():
        difference = float(np.abs(ours[name] - theirs).max())
        scale = float(np.abs(theirs).max())
        assert difference <= noise_floor(noise, name) + 1e-15 * scale, name
        assert noise.params[name] < 1e-6 * scale, name


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
    near = make_problem(p.X, network_output(p) + 1e-4, p.weights, p.biases)
    for problem in (p, near):
        noise = max(rounding_noise(problem.with_dtype("float32")).params.values())
        torch_error = _torch_float32_error(problem)
        assert noise > 0
        # Same order of magnitude as an independent float32 implementation's error.
        assert torch_error / 30 < noise < torch_error * 30


def test_a_kink_flip_in_float32_is_per_entry_not_noise_of_the_whole_tensor(exercise_problem):
    problem = near_kink_float32(exercise_problem)
    noise = rounding_noise(problem)
    # The flip stays out of the per-tensor noise: W0's noise is rounding (~1e-8), as on the
    # unperturbed problem, not the 2e-2 jump of the flipped unit.
    plain = rounding_noise(exercise_problem.with_dtype("float32"))
    assert noise.params["W0"] < 10 * plain.params["W0"]
    # The jump itself, per entry: relu'(Z0[2, 0]) goes from 1 to 0, so dW0[:, 0] loses
    # X[2, :] * dL/dA1[2, 0] and dB0[0] loses dL/dA1[2, 0]; the rest moves by ~1e-11 only
    # (A1[2, 0] = 1e-9 becomes 0 in the forward pass).
    dA = float(_torch_dloss_dA1(problem)[2, 0])
    expected = np.zeros(problem.weights[0].shape)
    expected[:, 0] = np.abs(problem.X[2] * dA)
    np.testing.assert_allclose(noise.kink_flips["W0"], expected, rtol=1e-4, atol=1e-9)
    assert noise.kink_flips["B0"][0] == pytest.approx(abs(dA), rel=1e-4)
    assert noise.kink_flips["B0"][1:].max() < 1e-9
    assert max(noise.kink_flips[n].max() for n in ("W1", "W2", "W3", "B1", "B2", "B3")) < 1e-9


def test_no_kink_flip_without_a_unit_near_a_kink(exercise_problem):
    assert rounding_noise(exercise_problem.with_dtype("float32")).kink_flips == {}


def _torch_dloss_dA1(problem) -> np.ndarray:
    """dLoss/dA1 (the first hidden layer's output) by torch autograd, float64, mse."""
    X = torch.tensor(problem.X)
    W = [torch.tensor(w) for w in problem.weights]
    B = [torch.tensor(b) for b in problem.biases]
    A1 = torch.relu(X @ W[0] + B[0]).requires_grad_(True)
    A = A1
    for i in range(1, len(W)):
        A = A @ W[i] + B[i]
        if i < len(W) - 1:
            A = torch.relu(A)
    ((A - torch.tensor(problem.T).reshape(A.shape)) ** 2).mean().backward()
    assert A1.grad is not None
    return A1.grad.numpy()


def test_float64_units_exactly_at_a_kink_get_their_flip_per_entry(exercise_problem):
    problem = zero_row_problem(exercise_problem)
    noise = rounding_noise(problem)
    # float64: rounding noise at the level of the float64 unit roundoff, and the flips.
    assert all(v < 1e-14 for v in noise.params.values())
    assert noise.kink_units == 6  # Z0[5, j] for the six units j of layer 0
    # relu'(0) is 0 or 1 by convention: dB0[j] moves by dL/dA1[5, j] (torch, float64); dW0
    # does not move, X[5] being 0.
    np.testing.assert_allclose(
        noise.kink_flips["B0"], np.abs(_torch_dloss_dA1(problem)[5]), rtol=1e-9
    )
    assert not noise.kink_flips["W0"].any()


def test_float32_unit_at_a_kink_does_not_hide_a_wrong_gradient(exercise_problem):
    # Z0[2, 0] = 1e-9: float32 puts this ReLU unit on the other side of its kink, which
    # moves W0[:, 0] by up to 2e-2. That jump is allowed at those entries only: as float32
    # noise for every entry of W0 (10 x 2e-2 allowed), it would let W0 doubled pass.
    problem = near_kink_float32(exercise_problem)
    for factor in (2.0, 1.01):
        report = run_checks(problem, [*builtin_backends(), ScaledBackend("W0", factor)])
        assert all(report.backend(n).ok for n in backend_names()), factor
        assert [p.name for p in report.backend("scaled").params if not p.ok] == ["W0"], factor


def test_float32_near_convergence_passes_in_directional_mode_too(exercise_problem):
    # Targets 1e-5 from the output: float32 loses digits to cancellation in Y - T. Full mode
    # allows the measured noise per entry; directional mode sums the same per-entry allowance
    # along each direction, or it would fail correct float32 backends.
    p = exercise_problem
    near = make_problem(p.X, network_output(p) + 1e-5, p.weights, p.biases, dtype="float32")
    options = CheckOptions(fd_mode="directional", seed=0)
    report = run_checks(near, [*builtin_backends(), ScaledBackend("W1", 2.0)], options)
    assert [r.name for r in report.backends if not r.ok] == ["scaled"]


class ReluStepAtZeroBackend(Backend):
    """Hand-written backprop (MSE, ReLU) with the other convention relu'(0) = 1 (Z >= 0)."""

    name = "relu'(0)=1"
    kind = "user"

    def gradients(self, problem: Problem) -> Gradients:
        A, Z = [problem.X], []
        for i, (w, b) in enumerate(zip(problem.weights, problem.biases)):
            Z.append(A[-1] @ w + b)
            if i < problem.depth - 1:
                A.append(np.maximum(Z[-1], 0.0))
        delta = 2.0 * (Z[-1] - problem.T.reshape(Z[-1].shape)) / Z[-1].size
        dW, dB = [], []
        for i in reversed(range(problem.depth)):
            dW.insert(0, A[i].T @ delta)
            dB.insert(0, delta.sum(axis=0))
            if i > 0:
                delta = (delta @ problem.weights[i].T) * (Z[i - 1] >= 0)
        return Gradients(None, tuple(dW), tuple(dB))


def test_relu_derivative_convention_at_an_exact_zero_is_not_a_failure(exercise_problem):
    # A zero input row and zero first-layer biases put Z0[5, :] exactly at the kink, where
    # relu'(0) = 1 is as right as 0: that convention passes on B0, while a real mistake in
    # B0 (or elsewhere) fails.
    problem = zero_row_problem(exercise_problem)
    backends = [*builtin_backends(), ReluStepAtZeroBackend(), ScaledBackend("B0", 2.0)]
    report = run_checks(problem, backends)
    assert [r.name for r in report.backends if not r.ok] == ["scaled"]
    assert [p.name for p in report.backend("scaled").params if not p.ok] == ["B0"]
    assert not run_checks(problem, [ScaledBackend("W1", 1.01)]).ok
