"""The loss table's values, gradients and per-row shares against torch autograd."""

from __future__ import annotations

import numpy as np
import pytest

from gradcheck_cli import nn
from gradcheck_cli.errors import InputError

torch = pytest.importorskip("torch")  # every test compares with torch autograd


def _targets(loss, rng, shape):
    return {
        "cross-entropy": rng.integers(0, shape[1], size=shape[0]),
        "bce": rng.uniform(size=shape),
    }.get(loss, rng.standard_normal(shape))


@pytest.mark.parametrize("loss", nn.LOSSES)
def test_loss_gradient_matches_autograd(loss):
    rng = np.random.default_rng(1)
    Y = rng.standard_normal((5, 3)) * 4
    T = _targets(loss, rng, (5, 3))
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
    table = nn.loss(loss)
    assert table.value(Y, T) == pytest.approx(value.item(), rel=1e-13)
    np.testing.assert_allclose(table.gradient(Y, T), Yt.grad.numpy(), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("loss", nn.LOSSES)
def test_row_shares_sum_to_the_loss(loss):
    rng = np.random.default_rng(3)
    Y = rng.standard_normal((6, 2))
    T = _targets(loss, rng, (6, 2))
    table = nn.loss(loss)
    rows = table.rows(Y, T, 6)
    assert rows.shape == (6,)
    assert rows.sum() == pytest.approx(table.value(Y, T), rel=1e-13)


def test_cross_entropy_with_probabilities_matches_labels():
    rng = np.random.default_rng(2)
    Y = rng.standard_normal((4, 3))
    labels = np.array([0, 2, 1, 2])
    onehot = np.eye(3)[labels]
    ce = nn.loss("cross-entropy")
    assert ce.value(Y, labels) == pytest.approx(ce.value(Y, onehot), rel=1e-14)
    np.testing.assert_allclose(ce.gradient(Y, labels), ce.gradient(Y, onehot))


def test_an_unknown_loss_is_an_error_not_a_fallback():
    with pytest.raises(InputError, match="unknown loss 'hinge'; choose from: mse"):
        nn.loss("hinge")
