"""Finite differences on layered problems: the batched engine against the plain loop, error
bars that hold against torch autograd, kinks (ReLU sides, max-pool argmaxes) found and
resolved, batch norm's coupled rows, and the sample and directional modes."""

from __future__ import annotations

import numpy as np
import pytest

from gradcheck_cli.fd import finite_differences, one_at_a_time
from gradcheck_cli.nn import network
from tests.layered_helpers import bn_net, conv_net, every_layer_net, problem_of, torch_gradients

torch = pytest.importorskip("torch")  # every test compares with torch autograd
nn = torch.nn


@pytest.mark.parametrize(
    "net, loss", [(conv_net, "cross-entropy"), (bn_net, "mse"), (every_layer_net, "mse")]
)
def test_batched_estimates_match_the_plain_loop(net, loss):
    model, X, T = net(1)
    problem = problem_of(model, X, T, loss)
    fd = finite_differences(problem, mode="full")
    plain = one_at_a_time(problem)
    # The loop differences two full losses: its own rounding is ~eps |f| / h.
    rounding = 10 * np.finfo(float).eps * abs(problem.float64_loss()) / 1e-6
    for name in problem.parameter_names:
        scale = np.abs(plain[name]).max()
        assert np.abs(fd.estimates[name] - plain[name]).max() <= 1e-7 * scale + rounding, name
    assert fd.checked_count == problem.parameter_count


@pytest.mark.parametrize("order", [2, 4])
@pytest.mark.parametrize(
    "net, loss", [(conv_net, "cross-entropy"), (bn_net, "mse"), (every_layer_net, "bce")]
)
def test_error_estimates_bound_the_actual_error(net, loss, order):
    model, X, T = net(4)
    if loss == "bce":
        T = 1.0 / (1.0 + np.exp(-T))
    problem = problem_of(model, X, T, loss)
    fd = finite_differences(problem, mode="full", order=order)
    _, exact = torch_gradients(model, X, T, loss)
    zero = problem.zero_gradients()
    for name in problem.parameter_names:
        if name in zero:
            continue
        judged = ~fd.unresolved[name]
        actual = np.abs(fd.estimates[name] - exact[name])[judged]
        assert np.all(actual <= fd.error[name][judged]), name


def _relu_at_kink(distance: float):  # type: ignore[no-untyped-def]
    """The conv net with one conv output `distance` above zero (a ReLU unit at its kink)."""
    model, X, T = conv_net(0)
    problem = problem_of(model, X, T, "cross-entropy")
    outputs, _ = network.forward(problem.layers, problem.params, problem.X)
    Z = outputs[0]
    n, o, h, w = 2, 1, 3, 4
    with torch.no_grad():
        model[0].bias[o] -= float(Z[n, o, h, w]) - distance
    return model, X, T


def test_a_relu_unit_at_its_kink_is_found_and_resolved():
    model, X, T = _relu_at_kink(1e-9)
    problem = problem_of(model, X, T, "cross-entropy")
    fd = finite_differences(problem, mode="full")
    assert fd.kink_count > 0 and fd.unresolved_count == 0
    _, exact = torch_gradients(model, X, T, "cross-entropy")
    for name in problem.parameter_names:
        actual = np.abs(fd.estimates[name] - exact[name])
        assert np.all(actual <= fd.error[name]), name


def test_a_max_pool_argmax_switch_is_a_kink():
    # Conv2d(2, 1, 1) then MaxPool2d(2): two positions of one window 1e-9 apart.
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(2, 1, 1), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(1, 2))
    rng = np.random.default_rng(0)
    X = rng.standard_normal((3, 2, 2, 2))
    w = model[0].weight.detach().double().numpy().reshape(2)
    b = float(model[0].bias.detach())
    out = np.einsum("nchw,c->nhw", X, w) + b
    X[0, :, 1, :] -= 10 * np.sign(w)[:, None]  # the bottom row well below the top
    top = float(np.einsum("c,c->", X[0, :, 0, 0], w)) + b
    X[0, 1, 0, 1] = (top - 1e-9 - b - w[0] * X[0, 0, 0, 1]) / w[1]
    assert out.shape == (3, 2, 2)
    problem = problem_of(model, X, rng.integers(0, 2, 3), "cross-entropy")
    fd = finite_differences(problem, mode="full")
    assert fd.kinks["0.weight"].any() and fd.unresolved_count == 0
    _, exact = torch_gradients(model, X, problem.T, "cross-entropy")
    actual = np.abs(fd.estimates["0.weight"] - exact["0.weight"])
    assert np.all(actual <= fd.error["0.weight"])


def test_batch_norm_couples_the_rows():
    # Moving the first layer's weight moves every row's output through the batch statistics:
    # the estimates only match autograd when each perturbed copy has its own statistics.
    model, X, T = bn_net(2)
    problem = problem_of(model, X, T, "mse")
    fd = finite_differences(problem, mode="full")
    _, exact = torch_gradients(model, X, T, "mse")
    scale = np.abs(exact["0.weight"]).max()
    assert np.abs(fd.estimates["0.weight"] - exact["0.weight"]).max() < 1e-7 * scale


@pytest.mark.parametrize("mode", ["sample", "directional"])
def test_sample_and_directional_modes_run_on_layered_problems(mode):
    model, X, T = conv_net(3)
    problem = problem_of(model, X, T, "cross-entropy")
    fd = finite_differences(problem, mode=mode, samples=40, seed=1)
    assert fd.checked_count == 40  # entries, or directions
    if mode == "sample":
        assert fd.tensor_directions is not None
        _, exact = torch_gradients(model, X, T, "cross-entropy")
        for name in problem.parameter_names:
            checked = fd.checked[name]
            assert np.all(
                np.abs(fd.estimates[name] - exact[name])[checked] <= fd.error[name][checked]
            )
