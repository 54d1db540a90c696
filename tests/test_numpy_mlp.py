"""The hand-written activation and loss derivatives against torch autograd."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gradcheck_cli import numpy_mlp


@pytest.mark.parametrize("name", numpy_mlp.ACTIVATIONS)
def test_activation_derivative_matches_autograd(name):
    z = np.array([-3.0, -0.5, -1e-3, 2e-3, 0.7, 4.0])
    a = numpy_mlp.activate(z, name)
    zt = torch.tensor(z, requires_grad=True)
    at = {
        "relu": torch.relu,
        "tanh": torch.tanh,
        "sigmoid": torch.sigmoid,
        "identity": lambda x: x * 1.0,
        "leaky-relu": lambda x: torch.nn.functional.leaky_relu(x, 0.01),
    }[name](zt)
    at.sum().backward()
    np.testing.assert_allclose(a, at.detach().numpy(), rtol=1e-14)
    np.testing.assert_allclose(
        numpy_mlp.activation_derivative(z, a, name), zt.grad.numpy(), rtol=1e-12
    )


def test_sigmoid_is_stable_for_large_inputs():
    with np.errstate(over="raise"):
        s = numpy_mlp.sigmoid(np.array([-1000.0, 0.0, 1000.0]))
    np.testing.assert_array_equal(s, [0.0, 0.5, 1.0])


@pytest.mark.parametrize("loss", numpy_mlp.LOSSES)
def test_loss_gradient_matches_autograd(loss):
    rng = np.random.default_rng(1)
    Y = rng.standard_normal((5, 3)) * 4
    T = {
        "cross-entropy": rng.integers(0, 3, size=5),
        "bce": rng.uniform(size=(5, 3)),
    }.get(loss, rng.standard_normal((5, 3)))
    Yt = torch.tensor(Y, requires_grad=True)
    Tt = torch.tensor(T)
    F = torch.nn.functional
    value = {
        "mse": lambda: F.mse_loss(Yt, Tt),
        "sse": lambda: F.mse_loss(Yt, Tt, reduction="sum"),
        "cross-entropy": lambda: F.cross_entropy(Yt, Tt),
        "bce": lambda: F.binary_cross_entropy_with_logits(Yt, Tt),
    }[loss]()
    value.backward()
    assert numpy_mlp.loss_value(Y, T, loss) == pytest.approx(value.item(), rel=1e-13)
    np.testing.assert_allclose(
        numpy_mlp.loss_gradient(Y, T, loss), Yt.grad.numpy(), rtol=1e-12, atol=1e-15
    )


def test_cross_entropy_with_probabilities_matches_labels():
    rng = np.random.default_rng(2)
    Y = rng.standard_normal((4, 3))
    labels = np.array([0, 2, 1, 2])
    onehot = np.eye(3)[labels]
    assert numpy_mlp.loss_value(Y, labels, "cross-entropy") == pytest.approx(
        numpy_mlp.loss_value(Y, onehot, "cross-entropy"), rel=1e-14
    )
    np.testing.assert_allclose(
        numpy_mlp.loss_gradient(Y, labels, "cross-entropy"),
        numpy_mlp.loss_gradient(Y, onehot, "cross-entropy"),
    )
