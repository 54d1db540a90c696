"""run_checks: verdicts, references, agreement and the report's JSON form."""

from __future__ import annotations

import numpy as np
import pytest

from gradcheck_cli.backends import backend_names, create_backend
from gradcheck_cli.backends.base import Backend
from gradcheck_cli.backends.numpy_backprop import NumpyBackprop
from gradcheck_cli.errors import InputError
from gradcheck_cli.inputs.loading import make_problem
from gradcheck_cli.outputs.verdicts import unresolved_text
from gradcheck_cli.problem import Gradients, Problem
from gradcheck_cli.verdict import CheckOptions, run_checks
from tests.helpers import (
    RaisingBackend,
    ScaledBackend,
    builtin_backends,
    near_convergence,
    near_kink_float32,
    network_output,
    random_problem,
    zero_row_problem,
)


class WrongShapeBackend(Backend):
    name = "wrong-shape"

    def gradients(self, problem: Problem) -> Gradients:
        g = NumpyBackprop().gradients(problem)
        return Gradients(g.loss, (g.dW[0].T, *g.dW[1:]), g.dB)


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


def test_a_wrong_gradient_fails_and_names_the_parameter(exercise_problem):
    report = run_checks(exercise_problem, [*builtin_backends(), ScaledBackend("W1", 2.0)])
    assert not report.ok
    wrong = report.backend("scaled")
    assert not wrong.ok
    assert [p.name for p in wrong.params if not p.ok] == ["W1"]
    assert all(r.ok for r in report.backends if r.name != "scaled")
    assert report.finite_difference is not None and report.finite_difference.failed > 0


def test_a_small_error_in_a_bias_still_fails(exercise_problem):
    report = run_checks(exercise_problem, [ScaledBackend("B3", 1.001)])
    assert not report.ok
    assert [p.name for p in report.backend("scaled").params if not p.ok] == ["B3"]


def test_raising_backend_is_reported_and_others_still_run(exercise_problem):
    report = run_checks(exercise_problem, [RaisingBackend(), create_backend("numpy")])
    failed = report.backend("raising")
    assert not failed.ok and failed.error == "ZeroDivisionError: boom"
    assert failed.traceback is not None and "ZeroDivisionError" in failed.traceback
    assert report.backend("numpy").ok
    assert not report.ok


def test_wrong_shape_is_a_precise_failure(exercise_problem):
    report = run_checks(exercise_problem, [WrongShapeBackend()])
    assert report.backend("wrong-shape").error == "DW[0] has shape (6, 4); expected (4, 6)"


def test_fd_off_uses_consensus_and_outvotes_one_wrong_backend(exercise_problem):
    report = run_checks(
        exercise_problem,
        [create_backend("numpy"), create_backend("torch-functional"), ScaledBackend("W0", -1.0)],
        CheckOptions(fd_mode="off"),
    )
    assert report.finite_difference is None
    assert report.reference_name.startswith("consensus of")
    assert report.backend("numpy").ok and report.backend("torch-functional").ok
    assert not report.backend("scaled").ok
    assert report.to_dict()["finite_difference"] == {"mode": "off"}


def test_fd_off_with_one_backend_is_a_usage_error(exercise_problem):
    with pytest.raises(InputError, match="nothing to compare"):
        run_checks(exercise_problem, [create_backend("numpy")], CheckOptions(fd_mode="off"))


def test_json_has_every_design_key(exercise_problem):
    d = run_checks(exercise_problem, builtin_backends()).to_dict()
    assert {"ok", "problem", "backends", "agreement", "finite_difference", "timings"} <= set(d)
    assert d["problem"] == {
        "layers": [4, 6, 6, 6, 1],
        "samples": 20,
        "activation": "relu",
        "loss": "mse",
        "dtype": "float64",
        "parameters": 121,
    }
    b = d["backends"][0]
    assert {"name", "kind", "ok", "error", "loss", "first_weight_grad", "params", "hints"} <= set(b)
    p = b["params"][0]
    assert set(p) == {
        "name",
        "shape",
        "norm",
        "max_abs_err",
        "max_rel_err",
        "ok",
        "worst_index",
        "hint",
    }
    assert set(d["finite_difference"]) >= {
        "mode",
        "step",
        "checked",
        "failed",
        "kinks",
        "max_rel_err",
        "ok",
    }
    assert set(d["timings"]) == {"load", "backends", "finite_difference"}


def test_first_weight_grad_is_dE_dW0_00(exercise_problem):
    report = run_checks(exercise_problem, [create_backend("numpy")])
    fd = report.finite_difference
    assert fd is not None
    assert report.backend("numpy").first_weight_grad == pytest.approx(
        float(fd.estimates["W0"][0, 0]), rel=1e-6
    )
    assert np.isfinite(report.backend("numpy").loss)


def test_float32_unit_at_a_kink_does_not_hide_a_wrong_gradient(exercise_problem):
    # Z0[2, 0] = 1e-9: float32 puts this ReLU unit on the other side of its kink, which
    # moves W0[:, 0] by up to 2e-2. That jump used to count as float32 noise for every entry
    # of W0 (10 x 2e-2 allowed), so W0 doubled passed; it is now allowed at those entries only.
    problem = near_kink_float32(exercise_problem)
    for factor in (2.0, 1.01):
        report = run_checks(problem, [*builtin_backends(), ScaledBackend("W0", factor)])
        assert all(report.backend(n).ok for n in backend_names()), factor
        assert [p.name for p in report.backend("scaled").params if not p.ok] == ["W0"], factor


def test_float32_near_convergence_passes_in_directional_mode_too(exercise_problem):
    # Targets 1e-5 from the output: float32 loses digits to cancellation in Y - T. Full mode
    # allows the measured noise per entry; directional mode ignored it and failed correct
    # float32 backends. It now sums the same per-entry allowance along each direction.
    p = exercise_problem
    near = make_problem(p.X, network_output(p) + 1e-5, p.weights, p.biases, dtype="float32")
    options = CheckOptions(fd_mode="directional", seed=0)
    report = run_checks(near, [*builtin_backends(), ScaledBackend("W1", 2.0)], options)
    assert [r.name for r in report.backends if not r.ok] == ["scaled"]


def test_float32_noise_that_hides_mistakes_is_reported(exercise_problem):
    # 1e-6 from convergence, float32 rounding is tens of percent of the gradient: a
    # float32 check cannot see a factor 1.2 there, and must say so rather than pass quietly.
    p = exercise_problem
    near = make_problem(p.X, network_output(p) + 1e-6, p.weights, p.biases, dtype="float32")
    notes = run_checks(near, [create_backend("numpy")]).notes
    assert any("rerun with --dtype float64" in n for n in notes), notes
    plain = run_checks(p.with_dtype("float32"), [create_backend("numpy")])
    assert plain.notes == () and plain.backend("numpy").hints == ()


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
    # relu'(0) = 1 is as right as 0. That convention used to fail on B0; a real mistake in
    # B0 (or elsewhere) still fails.
    problem = zero_row_problem(exercise_problem)
    backends = [*builtin_backends(), ReluStepAtZeroBackend(), ScaledBackend("B0", 2.0)]
    report = run_checks(problem, backends)
    assert [r.name for r in report.backends if not r.ok] == ["scaled"]
    assert [p.name for p in report.backend("scaled").params if not p.ok] == ["B0"]
    assert not run_checks(problem, [ScaledBackend("W1", 1.01)]).ok


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


def test_default_atol_scales_with_each_parameter_vanishing_gradients():
    # A 10-layer sigmoid network in float32: W0's gradient is ~1e-6 of the last layers'.
    # With one atol of 1e-5 x the largest entry overall, W0 doubled passed; each parameter's
    # default atol now scales with its own largest entry.
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


def test_a_fully_resolved_run_has_no_unresolved_parameters(exercise_problem):
    report = run_checks(exercise_problem, builtin_backends())
    assert report.ok and report.unresolved == {}
