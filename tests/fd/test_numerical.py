"""Finite differences by mode: closed forms, sampled entries, and the automatic choice."""

from __future__ import annotations

import numpy as np
import pytest

from gradcheck_cli.backends.numpy_backprop import NumpyBackprop
from gradcheck_cli.fd import (
    DEFAULT_SAMPLES,
    FULL_MODE_MAX_PARAMETERS,
    central_difference,
    finite_differences,
    resolve_mode,
)
from gradcheck_cli.inputs.loading import make_problem
from gradcheck_cli.verdict import CheckOptions, run_checks
from tests.helpers import ScaledBackend, random_problem, torch_by_name


def test_central_difference_of_known_functions():
    assert central_difference(np.sin, 0.3, 1e-5) == pytest.approx(np.cos(0.3), rel=1e-9)
    assert central_difference(np.exp, 1.0, 1e-5) == pytest.approx(np.e, rel=1e-9)
    # Exact (up to rounding) for a quadratic: central differences have no h^2 term there.
    assert central_difference(lambda x: 3 * x * x - x, 2.0, 1e-3) == pytest.approx(11.0, rel=1e-10)


def test_linear_regression_gradient_matches_closed_form():
    # One linear layer with MSE: dL/dW = 2 X^T (XW + b - T) / (N * out);
    # dL/db = the column sums of the same residual.
    rng = np.random.default_rng(3)
    X, T = rng.standard_normal((9, 3)), rng.standard_normal((9, 2))
    W, b = rng.standard_normal((3, 2)), rng.standard_normal(2)
    problem = make_problem(X, T, [W], [b], activation="identity")
    fd = finite_differences(problem)
    residual = 2 * (X @ W + b - T) / T.size
    np.testing.assert_allclose(fd.estimates["W0"], X.T @ residual, rtol=1e-8)
    np.testing.assert_allclose(fd.estimates["B0"], residual.sum(axis=0), rtol=1e-8)
    assert fd.checked_count == 8 and fd.kink_count == 0
    assert fd.loss == pytest.approx(((X @ W + b - T) ** 2).mean())


@pytest.mark.torch
def test_sample_mode_covers_every_tensor_and_is_seeded():
    problem = random_problem([5, 7, 6, 2], samples=8, seed=1)
    tensors = len(problem.parameter_names)
    fd = finite_differences(problem, mode="sample", samples=tensors, seed=3)
    assert fd.mode == "sample" and fd.checked_count == tensors
    assert all(int(m.sum()) == 1 for m in fd.checked.values())  # biases included
    fd30 = finite_differences(problem, mode="sample", samples=30, seed=3)
    assert fd30.checked_count == 30 and all(m.any() for m in fd30.checked.values())
    again = finite_differences(problem, mode="sample", samples=30, seed=3)
    other = finite_differences(problem, mode="sample", samples=30, seed=4)
    same = [np.array_equal(fd30.checked[n], again.checked[n]) for n in problem.parameter_names]
    assert all(same)
    assert not all(np.array_equal(fd30.checked[n], other.checked[n]) for n in fd30.checked)
    ref = torch_by_name(problem)
    for name, mask in fd30.checked.items():
        assert np.all(np.isnan(fd30.estimates[name][~mask]))
        assert np.all(
            np.abs(fd30.estimates[name][mask] - ref[name][mask]) <= fd30.error[name][mask]
        )


def test_sample_mode_catches_a_wrong_bias_with_one_entry_per_tensor():
    problem = random_problem([5, 7, 6, 2], samples=8, seed=1)
    options = CheckOptions(fd_mode="sample", fd_samples=len(problem.parameter_names))
    report = run_checks(problem, [NumpyBackprop(), ScaledBackend("B2", 2.0)], options)
    assert report.backend("numpy").ok and not report.backend("scaled").ok
    assert [p.name for p in report.backend("scaled").params if not p.ok] == ["B2"]
    assert report.to_dict()["finite_difference"]["mode"] == "sample"


def test_auto_mode_is_full_up_to_the_threshold_then_samples():
    assert resolve_mode("auto", FULL_MODE_MAX_PARAMETERS) == "full"
    assert resolve_mode("auto", FULL_MODE_MAX_PARAMETERS + 1) == "sample"
    big = random_problem([200, 250, 1], samples=4, seed=0)
    assert big.parameter_count > FULL_MODE_MAX_PARAMETERS
    fd = finite_differences(big, mode="auto")
    assert (fd.mode, fd.requested, fd.checked_count) == ("sample", "auto", DEFAULT_SAMPLES)
