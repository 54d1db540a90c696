"""run_checks: correct backends pass, a wrong or raising one fails alone, in every dtype,
activation and loss."""

from __future__ import annotations

import pytest

import gradcheck_cli
from gradcheck_cli.backends import backend_names, create_backend
from gradcheck_cli.verdict import run_checks
from tests.helpers import (
    ACTIVATION_LOSS_LAYERS,
    ACTIVATION_LOSS_PAIRS,
    RaisingBackend,
    ScaledBackend,
    builtin_backends,
    random_problem,
)


@pytest.mark.torch
def test_builtins_pass_on_exercise_problem(exercise_problem):
    report = run_checks(exercise_problem, builtin_backends())
    assert report.ok
    assert report.finite_difference is not None
    assert report.finite_difference.checked == exercise_problem.parameter_count == 121
    assert all(r.ok and r.error is None for r in report.backends)
    # Cross-backend differences are at float64 rounding level.
    assert max(report.agreement.values()) < 1e-12
    assert set(report.agreement) == {
        "numpy~torch-functional",
        "numpy~torch-sequential",
        "torch-functional~torch-sequential",
    }


@pytest.mark.torch
def test_a_wrong_gradient_fails_and_names_the_parameter(exercise_problem):
    report = run_checks(exercise_problem, [*builtin_backends(), ScaledBackend("W1", 2.0)])
    assert not report.ok
    wrong = report.backend("scaled")
    assert not wrong.ok
    assert [p.name for p in wrong.params if not p.ok] == ["W1"]
    assert all(r.ok for r in report.backends if r.name != "scaled")
    assert report.finite_difference is not None and report.finite_difference.failed > 0


def test_raising_backend_is_reported_and_others_still_run(exercise_problem):
    report = run_checks(exercise_problem, [RaisingBackend(), create_backend("numpy")])
    failed = report.backend("raising")
    assert not failed.ok and failed.error == "ZeroDivisionError: boom"
    assert failed.traceback is not None and "ZeroDivisionError" in failed.traceback
    assert report.backend("numpy").ok
    assert not report.ok


@pytest.mark.torch
@pytest.mark.parametrize("activation, loss", ACTIVATION_LOSS_PAIRS)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_backends_agree_with_finite_differences(activation, loss, dtype):
    problem = random_problem(
        ACTIVATION_LOSS_LAYERS, samples=8, seed=5, activation=activation, loss=loss, dtype=dtype
    )
    report = run_checks(problem, [create_backend(n) for n in backend_names()])
    assert report.ok, [
        (b.name, b.hints, [p.name for p in b.params if not p.ok]) for b in report.backends
    ]
    assert report.to_dict()["problem"]["dtype"] == dtype


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("factor", [2.0, 1.01, -1.0])
def test_a_wrong_gradient_fails_in_either_dtype(dtype, factor, exercise_problem):
    problem = exercise_problem.with_dtype(dtype)
    report = run_checks(problem, [create_backend("numpy"), ScaledBackend("W2", factor)])
    assert report.backend("numpy").ok
    assert not report.backend("scaled").ok
    assert [p.name for p in report.backend("scaled").params if not p.ok] == ["W2"]


def test_directional_mode_says_how_likely_a_cancelling_mistake_goes_unseen():
    # Random signs: a mistake of +a and -a in two entries cancels in g.v with probability 1/2
    # per direction, 2**-16 over the default 16.
    report = gradcheck_cli.check(backends=["numpy"], fd="directional")
    assert report.ok
    notes = [n for n in report.notes if "random sign directions" in n]
    assert notes == [
        "16 random sign directions: a mistake that cancels in g.v (+a and -a in two entries) "
        "goes unseen by each with probability up to 1/2, by all 16 with up to 2e-05 (more "
        "directions: --fd-samples)"
    ]
    full = gradcheck_cli.check(backends=["numpy"], fd="full")
    assert not any("random sign directions" in n for n in full.notes)
