"""Directional mode: projections of the gradient, and a wrong entry localised from them."""

from __future__ import annotations

import numpy as np
import pytest

from gradcheck_cli.backends import create_backend
from gradcheck_cli.backends.numpy_backprop import NumpyBackprop
from gradcheck_cli.fd import finite_differences
from gradcheck_cli.verdict import CheckOptions, run_checks
from tests.helpers import EntryOff, ScaledBackend, random_problem, torch_by_name


@pytest.mark.torch
def test_directional_derivatives_match_autograd_projections():
    problem = random_problem([4, 6, 5, 2], samples=8, seed=4, activation="sigmoid")
    fd = finite_differences(problem, mode="directional", samples=4, seed=2)
    assert fd.directional is not None
    ref = torch_by_name(problem)
    g = np.concatenate([ref[n].reshape(-1) for n in problem.parameter_names])
    lines = fd.directional.along(tuple(problem.parameter_names))
    projections = fd.directional.signs.astype(np.float64) @ g
    assert np.all(np.abs(lines.estimate - projections) <= lines.error)


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


def test_directional_localised_entry_reports_the_per_entry_relative_error(exercise_problem):
    # Halving W3: the localised entry's relative error is |g - ref| / max(|g|, |ref|) = 0.5,
    # as in full mode (divided by the backend's own value alone, it would be 1.0).
    report = run_checks(
        exercise_problem,
        [create_backend("numpy"), ScaledBackend("W3", 0.5)],
        CheckOptions(fd_mode="directional", seed=0),
    )
    wrong = [p for p in report.backend("scaled").params if not p.ok]
    assert [p.name for p in wrong] == ["W3"]
    assert wrong[0].max_rel_err == pytest.approx(0.5, rel=1e-3)
