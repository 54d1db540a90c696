"""The batched engine: the numbers of the one-at-a-time loop, progress, inputs left alone."""

from __future__ import annotations

import numpy as np
import pytest

from gradcheck_cli.fd import finite_differences, one_at_a_time, rounding_error
from tests.helpers import random_problem

ACTS = ("relu", "tanh", "sigmoid", "leaky-relu", "identity")
LOSSES = ("mse", "sse", "cross-entropy", "bce")
# Batched and one-at-a-time central differences differ only by the rounding of the
# loss evaluations; we saw at most 0.37 of the rounding bound, so 1 is the limit.
SAME_NUMBERS_IN_ROUNDING_BOUNDS = 1.0


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("activation", ACTS)
def test_batched_equals_one_at_a_time(activation, loss):
    for seed in range(2):
        problem = random_problem(
            [3, 5, 4, 3], samples=6, seed=seed, activation=activation, loss=loss
        )
        fd = finite_differences(problem)
        loop = one_at_a_time(problem)
        assert fd.checked_count == problem.parameter_count
        for name, param in zip(problem.parameter_names, problem.parameters):
            steps = 1e-6 * np.maximum(1.0, np.abs(param))
            bound = SAME_NUMBERS_IN_ROUNDING_BOUNDS * rounding_error(fd.loss, steps)
            assert np.all(np.abs(fd.estimates[name] - loop[name]) <= bound), name


def test_progress_reports_monotone_counts_up_to_the_total():
    calls: list[tuple[int, int]] = []
    problem = random_problem([4, 6, 5, 2], samples=8, seed=4)
    finite_differences(problem, progress=lambda done, total: calls.append((done, total)))
    assert calls
    dones = [d for d, _ in calls]
    assert dones == sorted(dones) and calls[-1][0] == calls[-1][1] >= 4 * problem.parameter_count


def test_finite_differences_leave_the_problem_untouched(exercise_problem):
    before = [p.copy() for p in exercise_problem.parameters]
    finite_differences(exercise_problem)
    for a, b in zip(before, exercise_problem.parameters):
        np.testing.assert_array_equal(a, b)
