"""What a check cannot resolve: reported as notes, or failed as inconclusive, never a quiet pass."""

from __future__ import annotations

import pytest

from gradcheck_cli.backends import create_backend
from gradcheck_cli.inputs.loading import make_problem
from gradcheck_cli.outputs.verdicts import unresolved_text
from gradcheck_cli.verdict import CheckOptions, run_checks
from tests.helpers import ScaledBackend, builtin_backends, near_convergence, network_output


def test_float32_noise_that_hides_mistakes_is_reported(exercise_problem):
    # 1e-6 from convergence, float32 rounding is tens of percent of the gradient: a
    # float32 check cannot see a factor 1.2 there, and must say so rather than pass quietly.
    p = exercise_problem
    near = make_problem(p.X, network_output(p) + 1e-6, p.weights, p.biases, dtype="float32")
    notes = run_checks(near, [create_backend("numpy")]).notes
    assert any("rerun with --dtype float64" in n for n in notes), notes
    plain = run_checks(p.with_dtype("float32"), [create_backend("numpy")])
    assert plain.notes == () and plain.backend("numpy").hints == ()


@pytest.mark.torch
def test_gradients_too_small_for_finite_differences_are_reported(exercise_problem):
    # Weights 1e-4: the gradient of W2 (~1e-11) is far below what central differences
    # resolve (~eps |loss| / h = 1e-10); a mistake there could not be seen, and the report
    # must say so instead of passing quietly.
    p = exercise_problem
    tiny = make_problem(p.X, p.T, [w * 1e-4 for w in p.weights], [b * 1e-4 for b in p.biases])
    notes = run_checks(tiny, [create_backend("numpy"), create_backend("torch-functional")]).notes
    # Said once for the run, not once per backend.
    assert [n for n in notes if "too small for finite differences" in n and "W2 (" in n] == [
        notes[0]
    ], notes
    assert run_checks(p, [create_backend("numpy")]).notes == ()


def test_a_reference_that_cannot_see_a_factor_2_is_inconclusive_not_a_pass(exercise_problem):
    # float32 with residuals of 1e-7: rounding alone is off by more than the gradient, so a
    # half-MSE gradient would pass. The run must fail as inconclusive and say why.
    problem = near_convergence(exercise_problem.with_dtype("float32"), 1e-7)
    report = run_checks(problem, [create_backend("numpy"), ScaledBackend("W1", 0.5)])
    assert not report.ok
    assert report.unresolved
    assert all(info["cause"] == "float32 rounding" for info in report.unresolved.values())
    assert all(info["hidden"] >= 0.5 for info in report.unresolved.values())
    assert "rerun with --dtype float64" in unresolved_text(report)
    assert report.to_dict()["unresolved"] == report.unresolved
    # The same problem in float64 is fully checked, and the mistake is caught.
    exact = run_checks(
        problem.with_dtype("float64"), [create_backend("numpy"), ScaledBackend("W1", 0.5)]
    )
    assert exact.unresolved == {}
    assert exact.backend("numpy").ok and not exact.backend("scaled").ok


def test_a_step_too_small_for_the_reference_is_inconclusive(exercise_problem):
    # h = 1e-15: the finite-difference estimate is rounding noise, larger than the gradient.
    report = run_checks(
        exercise_problem, [ScaledBackend("W1", 0.5)], CheckOptions(fd_mode="full", fd_step=1e-15)
    )
    assert not report.ok
    assert {info["cause"] for info in report.unresolved.values()} == {"finite differences"}
    assert "rerun with a larger --fd-step" in unresolved_text(report)


@pytest.mark.torch
def test_a_fully_resolved_run_has_no_unresolved_parameters(exercise_problem):
    report = run_checks(exercise_problem, builtin_backends())
    assert report.ok and report.unresolved == {}
