"""Judging one backend: shapes, per-entry relative errors, and small mistakes caught."""

from __future__ import annotations

import numpy as np
import pytest

import gradcheck_cli
from gradcheck_cli.backends.base import Backend
from gradcheck_cli.backends.numpy_backprop import NumpyBackprop
from gradcheck_cli.problem import Gradients, Problem
from gradcheck_cli.verdict import relative_errors, run_checks
from gradcheck_cli.verdict.judge import scaled_norm
from tests.helpers import ScaledBackend, my_backprop


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


def test_a_gradient_in_a_narrow_type_fails_with_a_hint_that_says_so():
    """float16 rounding (1e-3) fails a float64 check, integers truncate: the hint names the
    type; float32 in a float64 check is within its tolerance and passes, without a hint."""

    def cast(dtype):
        def returned(W, B, A, Y, T):
            DW, DB = my_backprop(W, B, A, Y, T)
            return [d.astype(dtype) for d in DW], [d.astype(dtype) for d in DB]

        returned.__name__ = f"as_{np.dtype(dtype).name}"
        return returned

    report = gradcheck_cli.check(
        cast(np.float16), cast(np.int64), cast(np.float32), backends=["numpy"]
    )
    half, whole, single = (report.backend(n) for n in ("as_float16", "as_int64", "as_float32"))
    assert not half.ok and not whole.ok and single.ok
    assert any(
        "came back as float16 while the check runs in float64: float16 rounding alone" in h
        for h in half.hints
    ), half.hints
    assert any("came back as int64: gradients are real numbers" in h for h in whole.hints)
    assert not any("came back as" in h for h in single.hints)
