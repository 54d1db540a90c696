"""Every activation x loss: the three backends against an independent torch reference and
finite differences, in float64 and float32; the loss-specific validation of T."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from gradcheck_cli import cli
from gradcheck_cli.backends import backend_names, create_backend
from gradcheck_cli.errors import InputError
from gradcheck_cli.inputs.loading import make_problem
from tests.helpers import (
    ACTIVATION_LOSS_LAYERS,
    ACTIVATION_LOSS_PAIRS,
    random_problem,
    torch_reference,
)

# float64 implementations of the same network differ only by rounding.
FLOAT64_AGREEMENT_RTOL = 1e-10
FLOAT64_AGREEMENT_ATOL = 1e-12
# A float32 backprop of a 3-layer net carries ~1e-6 relative rounding error per entry,
# more where terms cancel; measured worst case here ~1e-4 of the largest entry.
FLOAT32_AGREEMENT_RTOL = 1e-3
FLOAT32_AGREEMENT_ATOL = 1e-5


@pytest.mark.parametrize("activation, loss", ACTIVATION_LOSS_PAIRS)
def test_backends_match_torch_reference_float64(activation, loss):
    problem = random_problem(
        ACTIVATION_LOSS_LAYERS, samples=8, seed=11, activation=activation, loss=loss
    )
    want_loss, dW, dB = torch_reference(problem)
    for name in backend_names():
        grads = create_backend(name).gradients(problem)
        assert grads.loss == pytest.approx(want_loss, rel=FLOAT64_AGREEMENT_RTOL), name
        assert grads.dB is not None
        for got, want in zip([*grads.dW, *grads.dB], [*dW, *dB]):
            np.testing.assert_allclose(
                got, want, rtol=FLOAT64_AGREEMENT_RTOL, atol=FLOAT64_AGREEMENT_ATOL, err_msg=name
            )


@pytest.mark.parametrize("activation, loss", ACTIVATION_LOSS_PAIRS)
def test_float32_backends_compute_in_float32(activation, loss):
    problem = random_problem(
        ACTIVATION_LOSS_LAYERS, samples=8, seed=3, activation=activation, loss=loss
    )
    _, dW, dB = torch_reference(problem)  # float64 reference
    for name in backend_names():
        grads = create_backend(name).gradients(problem.with_dtype("float32"))
        assert grads.dB is not None
        for got, want in zip([*grads.dW, *grads.dB], [*dW, *dB]):
            assert got.dtype == np.float32, name
            np.testing.assert_allclose(
                got, want, rtol=FLOAT32_AGREEMENT_RTOL, atol=FLOAT32_AGREEMENT_ATOL, err_msg=name
            )


def test_leaky_relu_slope_is_used_by_every_backend():
    base = random_problem(ACTIVATION_LOSS_LAYERS, samples=8, seed=2, activation="leaky-relu")
    problem = make_problem(
        base.X, base.T, base.weights, base.biases, activation="leaky-relu", negative_slope=0.3
    )
    _, dW, _ = torch_reference(problem)
    _, dW_default, _ = torch_reference(base)
    assert not np.allclose(dW[0], dW_default[0])  # the slope matters on this problem
    for name in backend_names():
        np.testing.assert_allclose(create_backend(name).gradients(problem).dW[0], dW[0], rtol=1e-10)


def test_cross_entropy_accepts_class_probabilities():
    rng = np.random.default_rng(4)
    base = random_problem(ACTIVATION_LOSS_LAYERS, samples=6, seed=4, loss="cross-entropy")
    probabilities = rng.dirichlet(np.ones(3), size=6)
    problem = make_problem(base.X, probabilities, base.weights, base.biases, loss="cross-entropy")
    _, dW, _ = torch_reference(problem)
    for name in backend_names():
        np.testing.assert_allclose(create_backend(name).gradients(problem).dW[1], dW[1], rtol=1e-10)


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


def test_cli_activation_loss_and_dtype(tmp_path):
    problem = random_problem([3, 4, 3], samples=6, seed=8, loss="cross-entropy")
    path = tmp_path / "ce.npz"
    arrays = {"X": problem.X, "T": problem.T}
    arrays.update({f"W{i}": w for i, w in enumerate(problem.weights)})
    arrays.update({f"B{i}": b for i, b in enumerate(problem.biases)})
    np.savez(path, **arrays)
    args = ["run", "--json", "--data", str(path), "--activation", "tanh", "--loss", "cross-entropy"]
    result = CliRunner().invoke(cli.app, [*args, "--dtype", "float32"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["problem"]["activation"] == "tanh"
    assert report["problem"]["loss"] == "cross-entropy"
    assert report["problem"]["dtype"] == "float32"
    assert report["tolerances"]["rtol"] == 1e-3
    assert 0 < report["tolerances"]["atol"] < 1e-5  # 1e-5 x the largest gradient entry (< 1)


def test_cli_unknown_activation_is_usage_error():
    result = CliRunner().invoke(cli.app, ["run", "--activation", "gelu"])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
