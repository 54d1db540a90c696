"""Finite differences: closed forms, the unbatched loop, torch autograd, kinks, modes."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from rich.console import Console
from typer.testing import CliRunner

from gradcheck_cli import cli
from gradcheck_cli.backends.numpy_backprop import NumpyBackprop
from gradcheck_cli.cli import application
from gradcheck_cli.fd import (
    DEFAULT_SAMPLES,
    FULL_MODE_MAX_PARAMETERS,
    central_difference,
    finite_differences,
    one_at_a_time,
    resolve_mode,
    rounding_error,
)
from gradcheck_cli.inputs.loading import make_problem
from gradcheck_cli.problem import Problem
from gradcheck_cli.verdict import CheckOptions, run_checks
from tests.helpers import EntryOff, ScaledBackend, random_problem, torch_by_name


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


# --- batched, kink-aware, error-estimated finite differences (issue #4) ---------------


ACTS = ("relu", "tanh", "sigmoid", "leaky-relu", "identity")
LOSSES = ("mse", "sse", "cross-entropy", "bce")
# Batched and one-at-a-time central differences differ only by the rounding of the
# loss evaluations; we saw at most 0.37 of the rounding bound, so 1 is the limit.
SAME_NUMBERS_IN_ROUNDING_BOUNDS = 1.0
# A placed pre-activation this far from zero: within the default step h = 1e-6.
KINK_DISTANCE = 3e-7
# float64 agreement between kink-resolved estimates and torch autograd.
KINK_RTOL = 1e-6
# Order 4 (Richardson, h = 1e-3) on smooth problems: relative agreement with torch,
# measured against max(|g|, 1e-3) so entries near zero do not dominate.
ORDER4_REL = 5e-9
runner = CliRunner()


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


@pytest.mark.parametrize("order", [2, 4])
@pytest.mark.parametrize("activation", ["tanh", "sigmoid", "relu"])
def test_error_estimate_bounds_the_actual_error(activation, order):
    problem = random_problem([4, 6, 5, 3], samples=9, seed=2, activation=activation)
    fd = finite_differences(problem, order=order)
    ref = torch_by_name(problem)
    for name in ref:
        assert np.all(np.abs(fd.estimates[name] - ref[name]) <= fd.error[name]), name


@pytest.mark.parametrize("loss", ["mse", "cross-entropy"])
def test_order_4_reaches_1e_10_level_agreement_on_smooth_problems(loss):
    problem = random_problem([4, 6, 5, 3], samples=9, seed=2, activation="tanh", loss=loss)
    fd2, fd4 = finite_differences(problem), finite_differences(problem, order=4)
    ref = torch_by_name(problem)

    def worst(fd):
        return max(
            float((np.abs(fd.estimates[n] - r) / np.maximum(np.abs(r), 1e-3)).max())
            for n, r in ref.items()
        )

    assert worst(fd4) < ORDER4_REL < worst(fd2)
    assert fd4.order == 4 and fd4.step == 1e-3


def kink_problem(activation: str) -> tuple[Problem, int]:
    """A ReLU-family MLP with pre-activation Z0[0, u] placed KINK_DISTANCE above zero."""
    base = random_problem([3, 4, 3, 1], samples=6, seed=5, activation=activation)
    u = 1
    biases = [b.copy() for b in base.biases]
    biases[0][u] = KINK_DISTANCE - base.X[0] @ base.weights[0][:, u]
    problem = make_problem(
        base.X, base.T, list(base.weights), biases, activation=activation, loss="mse"
    )
    return problem, u


@pytest.mark.parametrize("activation", ["relu", "leaky-relu"])
def test_kink_entries_are_detected_and_estimated_correctly(activation):
    problem, u = kink_problem(activation)
    fd = finite_differences(problem)
    ref = torch_by_name(problem)
    assert fd.kinks["B0"][u] and fd.unresolved_count == 0
    # Without kink handling the central difference at B0[u] is plainly wrong ...
    naive = one_at_a_time(problem)["B0"][u]
    assert abs(naive - ref["B0"][u]) > 1e-3 * abs(ref["B0"][u])
    # ... with it, every kink entry agrees with autograd.
    for name, mask in fd.kinks.items():
        np.testing.assert_allclose(fd.estimates[name][mask], ref[name][mask], rtol=KINK_RTOL)
    assert {"param": "B0", "index": [u], "resolved": True} in fd.kink_entries()


@pytest.mark.parametrize("activation", ["relu", "leaky-relu"])
def test_kink_case_passes_a_correct_backend_and_fails_a_wrong_one(activation):
    problem, u = kink_problem(activation)
    good = run_checks(problem, [NumpyBackprop()], CheckOptions(fd_mode="full"))
    assert good.ok and good.finite_difference is not None
    assert good.finite_difference.kinks >= 1
    fd_json = good.to_dict()["finite_difference"]
    assert fd_json["kink_entries"] and fd_json["kinks_by_param"]["B0"] >= 1
    g = NumpyBackprop().gradients(problem).by_name()["B0"][u]
    wrong = EntryOff("B0", (u,), 1e-3 * abs(g))
    bad = run_checks(problem, [wrong], CheckOptions(fd_mode="full"))
    assert not bad.ok
    (b0,) = [p for p in bad.backends[0].params if p.name == "B0"]
    assert not b0.ok and b0.worst_index == (u,)


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


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_directional_mode_localises_a_single_wrong_entry(activation):
    problem = random_problem([4, 6, 5, 2], samples=8, seed=4, activation=activation)
    options = CheckOptions(fd_mode="directional", fd_samples=6, seed=1)
    wrong = EntryOff("W1", (2, 3), 1e-3)
    report = run_checks(problem, [NumpyBackprop(), wrong], options)
    assert report.backend("numpy").ok
    result = report.backend("entry-off")
    assert not result.ok
    assert [(p.name, p.worst_index) for p in result.params if not p.ok] == [("W1", (2, 3))]
    assert any("W1[2, 3]" in h for h in result.hints)
    fd = report.to_dict()["finite_difference"]
    assert fd["mode"] == "directional" and fd["directions"] == 6 and fd["failed"] >= 1


def test_directional_derivatives_match_autograd_projections():
    problem = random_problem([4, 6, 5, 2], samples=8, seed=4, activation="sigmoid")
    fd = finite_differences(problem, mode="directional", samples=4, seed=2)
    assert fd.directional is not None
    ref = torch_by_name(problem)
    g = np.concatenate([ref[n].reshape(-1) for n in problem.parameter_names])
    lines = fd.directional.along(tuple(problem.parameter_names))
    projections = fd.directional.signs.astype(np.float64) @ g
    assert np.all(np.abs(lines.estimate - projections) <= lines.error)


def test_progress_reports_monotone_counts_up_to_the_total():
    calls: list[tuple[int, int]] = []
    problem = random_problem([4, 6, 5, 2], samples=8, seed=4)
    finite_differences(problem, progress=lambda done, total: calls.append((done, total)))
    assert calls
    dones = [d for d, _ in calls]
    assert dones == sorted(dones) and calls[-1][0] == calls[-1][1] >= 4 * problem.parameter_count


def test_auto_mode_is_full_up_to_the_threshold_then_samples():
    assert resolve_mode("auto", FULL_MODE_MAX_PARAMETERS) == "full"
    assert resolve_mode("auto", FULL_MODE_MAX_PARAMETERS + 1) == "sample"
    big = random_problem([200, 250, 1], samples=4, seed=0)
    assert big.parameter_count > FULL_MODE_MAX_PARAMETERS
    fd = finite_differences(big, mode="auto")
    assert (fd.mode, fd.requested, fd.checked_count) == ("sample", "auto", DEFAULT_SAMPLES)


def test_cli_directional_json_says_which_mode_ran():
    result = runner.invoke(cli.app, ["run", "--fd", "directional", "--fd-samples", "5", "--json"])
    assert result.exit_code == 0, result.output
    fd = json.loads(result.stdout)["finite_difference"]
    assert (fd["mode"], fd["directions"], fd["order"]) == ("directional", 5, 2)
    assert fd["checked"] == 5  # directional mode counts directions, not entries
    for key in ("kinks", "kink_entries", "max_error_estimate", "checked", "failed", "ok"):
        assert key in fd


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--fd-order", "3"], "--fd-order must be one of 2, 4"),
        (["--fd", "sample", "--fd-samples", "0"], "--fd-samples must be at least 1"),
        (["--fd-step", "-1"], "--fd-step must be positive"),
    ],
)
def test_cli_bad_fd_options_exit_2(args, message):
    result = runner.invoke(cli.app, ["run", *args])
    assert result.exit_code == 2
    assert message in result.stderr and "Traceback" not in result.output


def test_progress_bar_appears_on_stderr_only_after_the_delay(monkeypatch):
    buffer = io.StringIO()
    monkeypatch.setattr(application, "stderr", Console(file=buffer, force_terminal=True, width=100))
    with application.fd_progress(enabled=True) as update:
        assert update is not None
        update(1, 10)  # well within PROGRESS_DELAY_S: no bar yet
    assert buffer.getvalue() == ""
    monkeypatch.setattr(application, "PROGRESS_DELAY_S", 0.0)
    with application.fd_progress(enabled=True) as update:
        assert update is not None
        update(5, 10)
        update(10, 10)
    assert "finite differences" in buffer.getvalue()
    with application.fd_progress(enabled=False) as update:
        assert update is None


def test_directional_localised_entry_reports_the_per_entry_relative_error(exercise_problem):
    # Halving W3: the localised entry's relative error is |g - ref| / max(|g|, |ref|) = 0.5,
    # as in full mode (it used to be divided by the backend's own value: 1.0).
    from gradcheck_cli.backends import create_backend
    from gradcheck_cli.verdict import CheckOptions, run_checks

    report = run_checks(
        exercise_problem,
        [create_backend("numpy"), ScaledBackend("W3", 0.5)],
        CheckOptions(fd_mode="directional", seed=0),
    )
    wrong = [p for p in report.backend("scaled").params if not p.ok]
    assert [p.name for p in wrong] == ["W3"]
    assert wrong[0].max_rel_err == pytest.approx(0.5, rel=1e-3)
