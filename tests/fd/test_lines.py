"""Line estimates: error estimates that bound the actual error, order 4, and kinks."""

from __future__ import annotations

import numpy as np
import pytest

from gradcheck_cli.backends.numpy_backprop import NumpyBackprop
from gradcheck_cli.fd import finite_differences, one_at_a_time
from gradcheck_cli.inputs.loading import make_problem
from gradcheck_cli.problem import Problem
from gradcheck_cli.verdict import CheckOptions, run_checks
from tests.helpers import EntryOff, random_problem, torch_by_name

# A placed pre-activation this far from zero: within the default step h = 1e-6.
KINK_DISTANCE = 3e-7
# float64 agreement between kink-resolved estimates and torch autograd.
KINK_RTOL = 1e-6
# Order 4 (Richardson, h = 1e-3) on smooth problems: relative agreement with torch,
# measured against max(|g|, 1e-3) so entries near zero do not dominate.
ORDER4_REL = 5e-9


@pytest.mark.torch
@pytest.mark.parametrize("order", [2, 4])
@pytest.mark.parametrize("activation", ["tanh", "sigmoid", "relu"])
def test_error_estimate_bounds_the_actual_error(activation, order):
    problem = random_problem([4, 6, 5, 3], samples=9, seed=2, activation=activation)
    fd = finite_differences(problem, order=order)
    ref = torch_by_name(problem)
    for name in ref:
        assert np.all(np.abs(fd.estimates[name] - ref[name]) <= fd.error[name]), name


@pytest.mark.torch
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


@pytest.mark.torch
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
