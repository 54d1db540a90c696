"""The activation table's hand-written derivatives against torch autograd."""

from __future__ import annotations

import numpy as np
import pytest

from gradcheck_cli import nn
from gradcheck_cli.errors import InputError
from gradcheck_cli.nn.activations import sigmoid

torch = pytest.importorskip("torch")  # every test compares with torch autograd

TORCH = {
    "relu": torch.relu,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "identity": lambda x: x * 1.0,
    "leaky-relu": lambda x: torch.nn.functional.leaky_relu(x, 0.01),
}


@pytest.mark.parametrize("name", nn.ACTIVATIONS)
def test_activation_derivative_matches_autograd(name):
    z = np.array([-3.0, -0.5, -1e-3, 2e-3, 0.7, 4.0])
    act = nn.activation(name)
    a = act(z, 0.01)
    zt = torch.tensor(z, requires_grad=True)
    at = TORCH[name](zt)
    at.sum().backward()
    np.testing.assert_allclose(a, at.detach().numpy(), rtol=1e-14)
    np.testing.assert_allclose(act.derivative(z, a, 0.01), zt.grad.numpy(), rtol=1e-12)
    # Written from the output alone, the derivative is the same (at these z).
    np.testing.assert_allclose(act.from_output(a, 0.01), zt.grad.numpy(), rtol=1e-12)


@pytest.mark.parametrize("name", nn.ACTIVATIONS)
def test_in_place_forward_matches_forward(name):
    act = nn.activation(name)
    z = np.linspace(-2, 2, 9)
    if act.forward_inplace is not None:
        np.testing.assert_array_equal(act.forward_inplace(z.copy(), 0.01), act(z, 0.01))


@pytest.mark.parametrize("name", nn.ACTIVATIONS)
def test_kink_slopes_match_the_derivative_below_zero(name):
    act = nn.activation(name)
    if act.slope_below_kink is None:
        return
    z = np.array([-2.0, -0.1])
    np.testing.assert_allclose(act.derivative(z, act(z, 0.3), 0.3), act.slope_below_kink(0.3))


def test_sigmoid_is_stable_for_large_inputs():
    with np.errstate(over="raise"):
        s = sigmoid(np.array([-1000.0, 0.0, 1000.0]))
    np.testing.assert_array_equal(s, [0.0, 0.5, 1.0])


def test_an_unknown_activation_is_an_error_not_a_fallback():
    with pytest.raises(InputError, match="unknown activation 'swish'; choose from: relu"):
        nn.activation("swish")
