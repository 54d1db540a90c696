"""Judging one backend: shapes, per-entry relative errors, and small mistakes caught."""

from __future__ import annotations

import numpy as np
import pytest

from gradcheck_cli.backends.base import Backend
from gradcheck_cli.backends.numpy_backprop import NumpyBackprop
from gradcheck_cli.problem import Gradients, Problem
from gradcheck_cli.verdict import relative_errors, run_checks
from gradcheck_cli.verdict.judge import scaled_norm
from tests.helpers import ScaledBackend


class WrongShapeBackend(Backend):
    name = "wrong-shape"

    def gradients(self, problem: Problem) -> Gradients:
        g = NumpyBackprop().gradients(problem)
        return Gradients(g.loss, (g.dW[0].T, *g.dW[1:]), g.dB)


def test_wrong_shape_is_a_precise_failure(exercise_problem):
    report = run_checks(exercise_problem, [WrongShapeBackend()])
    assert report.backend("wrong-shape").error == "DW[0] has shape (6, 4); expected (4, 6)"


def test_a_small_error_in_a_bias_still_fails(exercise_problem):
    report = run_checks(exercise_problem, [ScaledBackend("B3", 1.001)])
    assert not report.ok
    assert [p.name for p in report.backend("scaled").params if not p.ok] == ["B3"]


def test_relative_errors_of_two_exact_zeros_is_zero():
    values = np.array([0.0, 1.0, 0.0])
    reference = np.array([0.0, 1.5, 2.0])
    assert relative_errors(values, reference, 0.0).tolist() == [0.0, 0.5 / 1.5, 1.0]


def test_a_norm_near_the_float64_limit_does_not_overflow():
    # 3e300 and 4e300: the plain norm squares them to inf; the answer is 5e300.
    assert scaled_norm(np.array([3e300, 4e300])) == pytest.approx(5e300)
    assert scaled_norm(np.array([3.0, -4.0])) == pytest.approx(5.0)
    assert scaled_norm(np.zeros(3)) == 0.0
