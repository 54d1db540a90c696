"""inspect_problem: statistics of the loaded problem, without gradients."""

from __future__ import annotations

import numpy as np

from gradcheck_cli.inputs.inspection import inspect_problem
from gradcheck_cli.inputs.loading import make_problem


def test_dead_units_are_only_counted_for_piecewise_activations():
    rng = np.random.default_rng(0)
    X = np.abs(rng.standard_normal((4, 2)))
    W = [-np.ones((2, 3)), np.ones((3, 1))]  # X >= 0, so every hidden pre-activation is < 0
    B = [np.zeros(3), np.zeros(1)]
    T = np.zeros((4, 1))
    relu = inspect_problem(make_problem(X, T, W, B, activation="relu"))
    tanh = inspect_problem(make_problem(X, T, W, B, activation="tanh"))
    assert relu.hidden[0].dead_units == 3
    assert tanh.hidden[0].dead_units == 0
