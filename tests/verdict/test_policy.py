"""Tolerances: by dtype, each parameter's atol scaled to its own gradient, and their validation."""

from __future__ import annotations

import numpy as np
import pytest

from gradcheck_cli import load_problem
from gradcheck_cli.backends import create_backend
from gradcheck_cli.errors import InputError
from gradcheck_cli.inputs.loading import make_problem
from gradcheck_cli.verdict import CheckOptions, run_checks
from gradcheck_cli.verdict.policy import tolerance
from tests.helpers import ScaledBackend, builtin_backends, random_problem


def test_float32_uses_float32_tolerances(exercise_problem):
    estimates = {"W0": np.array([[2.0, -1.0]]), "B0": np.array([0.5])}
    default = tolerance(CheckOptions(), "fd", "float32", estimates)
    assert default.rtol == 1e-3 and default.atol == {"W0": 2e-5, "B0": 5e-6}
    assert tolerance(CheckOptions(rtol=1e-2), "fd", "float32", estimates).rtol == 1e-2
    assert tolerance(CheckOptions(atol=1e-7), "fd", "float32", estimates).atol == {
        "W0": 1e-7,
        "B0": 1e-7,
    }
    # Against the float64 consensus: no rtol, a rounding-level atol per parameter.
    consensus = tolerance(CheckOptions(), "consensus", "float64", estimates)
    assert consensus.rtol == 0.0 and consensus.atol == {"W0": 2e-9, "B0": 5e-10}
    report = run_checks(exercise_problem.with_dtype("float32"), [create_backend("numpy")])
    largest = max(float(np.abs(a).max()) for a in report.reference.values())
    assert report.rtol == 1e-3
    assert report.atol == pytest.approx(1e-5 * largest)


@pytest.mark.torch
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_a_factor_2_fails_even_when_the_gradient_is_tiny(dtype, exercise_problem):
    # Targets 1e-4 from the network's output: a nearly converged network whose gradient
    # entries are ~1e-5, below a fixed float32 atol of 1e-5. The atol scales with them.
    p = exercise_problem
    Y = torch_reference_output(p)
    T = Y + 1e-4 * np.random.default_rng(0).standard_normal(Y.shape)
    problem = make_problem(p.X, T, p.weights, p.biases, dtype=dtype)
    report = run_checks(problem, [create_backend("numpy"), ScaledBackend("W1", 2.0)])
    assert max(float(np.abs(a).max()) for a in report.reference.values()) < 1e-4
    assert report.backend("numpy").ok
    assert [q.name for q in report.backend("scaled").params if not q.ok] == ["W1"]


def torch_reference_output(problem):
    """The network output Y by torch, independently of the package."""
    import torch

    A = torch.tensor(problem.X)
    for i, (w, b) in enumerate(zip(problem.weights, problem.biases)):
        A = A @ torch.tensor(w) + torch.tensor(b)
        if i < problem.depth - 1:
            A = torch.relu(A)
    return A.numpy()


@pytest.mark.torch
def test_default_atol_scales_with_each_parameter_vanishing_gradients():
    # A 10-layer sigmoid network in float32: W0's gradient is ~1e-6 of the last layers'.
    # One atol of 1e-5 x the largest entry overall would let W0 doubled pass, so each
    # parameter's default atol scales with its own largest entry.
    problem = random_problem(
        [5] + [8] * 9 + [1], samples=16, seed=6, activation="sigmoid", dtype="float32"
    )
    report = run_checks(problem, [*builtin_backends(), ScaledBackend("W0", 2.0)])
    assert [r.name for r in report.backends if not r.ok] == ["scaled"]
    assert [p.name for p in report.backend("scaled").params if not p.ok] == ["W0"]
    # An explicit --atol stays absolute, for every parameter.
    loose = run_checks(problem, [ScaledBackend("W0", 2.0)], CheckOptions(atol=1e-3))
    assert loose.backend("scaled").ok
    # ...and then W0 cannot be verified at all: the run says so and fails as inconclusive.
    assert not loose.ok and "W0" in loose.unresolved


def test_run_checks_refuses_nan_tolerance_from_the_library():
    problem = load_problem()
    with pytest.raises(InputError, match=r"^rtol must be a finite number"):
        run_checks(problem, [create_backend("numpy")], CheckOptions(rtol=float("nan")))
