"""Loading and validation: every input format gives the same problem; targets must fit the loss."""

from __future__ import annotations

import numpy as np
import pytest

from gradcheck_cli.backends import create_backend
from gradcheck_cli.errors import InputError
from gradcheck_cli.inputs import loading
from gradcheck_cli.inputs.loading import load_problem, make_problem
from tests.helpers import arrays, assert_same_arrays, torch_reference, write_every_format

# numpy backprop against torch autograd in float64: only summation order differs.
REFERENCE_RTOL = 1e-10
REFERENCE_ATOL = 1e-13


@pytest.mark.torch
def test_every_format_loads_the_same_problem_and_gradients(tmp_path):
    named = arrays()
    expected_loss, expected_dW, expected_dB = torch_reference(
        loading.make_problem(
            named["X"], named["T"], [named["W0"], named["W1"]], [named["B0"], named["B1"]]
        )
    )
    gradients = {}
    for label, files in write_every_format(tmp_path, named).items():
        problem = load_problem(**files)
        assert_same_arrays(problem, named)
        grads = create_backend("numpy").gradients(problem)
        gradients[label] = grads
        assert grads.loss is not None
        np.testing.assert_allclose(grads.loss, expected_loss, rtol=REFERENCE_RTOL)
        for got, want in zip(grads.dW, expected_dW):
            np.testing.assert_allclose(got, want, rtol=REFERENCE_RTOL, atol=REFERENCE_ATOL)
        assert grads.dB is not None
        for got, want in zip(grads.dB, expected_dB):
            np.testing.assert_allclose(got, want, rtol=REFERENCE_RTOL, atol=REFERENCE_ATOL)
    first = gradients.pop("one npz")
    for label, grads in gradients.items():  # identical, not merely close: the inputs are identical
        assert grads.loss == first.loss, label
        assert all(np.array_equal(a, b) for a, b in zip(grads.dW, first.dW)), label
        assert grads.dB is not None and first.dB is not None
        assert all(np.array_equal(a, b) for a, b in zip(grads.dB, first.dB)), label


@pytest.mark.parametrize(
    "loss, T, message",
    [
        ("cross-entropy", np.array([0, 1, 3, 2]), r"T\[2\] = 3 is not a class label in 0..2"),
        ("cross-entropy", np.array([0, -1, 1, 2]), r"T\[1\] = -1 is not a class label"),
        ("cross-entropy", np.array([0.0, 1.5, 1.0, 2.0]), "labels T must be whole numbers"),
        ("cross-entropy", np.full((4, 2), 0.5), r"cross-entropy expects labels \(4,\)"),
        ("cross-entropy", np.full((4, 3), 0.5), "rows summing to 1"),
        ("bce", np.full((4, 3), 1.5), r"bce targets T must lie in \[0, 1\]"),
        ("mse", np.zeros((4, 2)), r"T has shape \(4, 2\) but the network outputs \(4, 3\)"),
        ("mse", np.zeros((5, 3)), "X has 4 rows but T has 5"),
    ],
)
def test_targets_that_do_not_fit_the_loss_are_input_errors(loss, T, message):
    rng = np.random.default_rng(0)
    W = [rng.standard_normal((2, 3))]
    with pytest.raises(InputError, match=message):
        make_problem(rng.standard_normal((4, 2)), T, W, [np.zeros(3)], loss=loss)
