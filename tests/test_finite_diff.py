"""Finite differences against derivatives known in closed form."""

from __future__ import annotations

import numpy as np
import pytest

from gradcheck_cli.finite_diff import central_difference, finite_differences
from gradcheck_cli.loading import make_problem


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


def test_finite_differences_leave_the_problem_untouched(exercise_problem):
    before = [p.copy() for p in exercise_problem.parameters]
    finite_differences(exercise_problem)
    for a, b in zip(before, exercise_problem.parameters):
        np.testing.assert_array_equal(a, b)
