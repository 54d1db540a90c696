"""The MLP's mathematics in NumPy: activations, losses, their derivatives, the forward pass.

Shared by the hand-written NumPy backend and the finite-difference reference.
Every formula here is written out by hand (no autograd), so the torch backends
are an independent check of it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

ACTIVATIONS = ("relu", "tanh", "sigmoid", "leaky-relu", "identity")
LOSSES = ("mse", "sse", "cross-entropy", "bce")
# Activations with a kink at zero: finite differences across it are unreliable.
PIECEWISE_ACTIVATIONS = ("relu", "leaky-relu")
DEFAULT_NEGATIVE_SLOPE = 0.01


def sigmoid(z: np.ndarray) -> np.ndarray:
    """Logistic function, stable for large |z| (no overflow in exp)."""
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def activate(
    z: np.ndarray, name: str, negative_slope: float = DEFAULT_NEGATIVE_SLOPE
) -> np.ndarray:
    """Apply the hidden-layer activation `name` elementwise."""
    if name == "relu":
        return np.maximum(z, 0.0)
    if name == "leaky-relu":
        return np.where(z > 0, z, negative_slope * z)
    if name == "tanh":
        return np.tanh(z)
    if name == "sigmoid":
        return sigmoid(z)
    if name == "identity":
        return z
    raise ValueError(f"unknown activation {name!r}")


def activation_derivative(
    z: np.ndarray, a: np.ndarray, name: str, negative_slope: float = DEFAULT_NEGATIVE_SLOPE
) -> np.ndarray:
    """d act(z) / dz, given the pre-activation z and the activation a = act(z)."""
    if name == "relu":
        return (z > 0).astype(z.dtype)
    if name == "leaky-relu":
        return np.where(z > 0, 1.0, negative_slope).astype(z.dtype)
    if name == "tanh":
        return 1.0 - a * a
    if name == "sigmoid":
        return a * (1.0 - a)
    if name == "identity":
        return np.ones_like(z)
    raise ValueError(f"unknown activation {name!r}")


def forward(
    X: np.ndarray,
    weights: Sequence[np.ndarray],
    biases: Sequence[np.ndarray],
    activation: str,
    negative_slope: float = DEFAULT_NEGATIVE_SLOPE,
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Run the forward pass; return pre-activations [Z0..Zk] and inputs [X, A1..Ak].

    The network output is Zs[-1] (the last layer has no activation).
    """
    inputs = [X]
    pre_activations = []
    last = len(weights) - 1
    for i, (w, b) in enumerate(zip(weights, biases)):
        z = inputs[-1] @ w + b
        pre_activations.append(z)
        if i < last:
            inputs.append(activate(z, activation, negative_slope))
    return pre_activations, inputs


def _log_softmax(Y: np.ndarray) -> np.ndarray:
    shifted = Y - Y.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def _class_targets(Y: np.ndarray, T: np.ndarray) -> np.ndarray:
    """Cross-entropy targets as an (N, C) array of class probabilities."""
    if T.ndim == 1:
        onehot = np.zeros_like(Y)
        onehot[np.arange(Y.shape[0]), T.astype(np.int64)] = 1.0
        return onehot
    return T.astype(Y.dtype, copy=False)


def loss_value(Y: np.ndarray, T: np.ndarray, name: str) -> float:
    """The scalar loss of output Y against targets T."""
    if name == "mse":
        return float(((Y - T) ** 2).mean())
    if name == "sse":
        return float(((Y - T) ** 2).sum())
    if name == "cross-entropy":
        return float(-(_class_targets(Y, T) * _log_softmax(Y)).sum() / Y.shape[0])
    if name == "bce":
        # log(1 + exp(-|y|)) + max(y, 0) - y t : the stable form of BCE on logits.
        terms = np.maximum(Y, 0.0) - Y * T + np.log1p(np.exp(-np.abs(Y)))
        return float(terms.mean())
    raise ValueError(f"unknown loss {name!r}")


def loss_gradient(Y: np.ndarray, T: np.ndarray, name: str) -> np.ndarray:
    """dLoss/dY, same shape as Y."""
    if name == "mse":
        return 2.0 * (Y - T) / Y.size
    if name == "sse":
        return 2.0 * (Y - T)
    if name == "cross-entropy":
        P = _class_targets(Y, T)
        softmax = np.exp(_log_softmax(Y))
        return (softmax * P.sum(axis=1, keepdims=True) - P) / Y.shape[0]
    if name == "bce":
        return (sigmoid(Y) - T) / Y.size
    raise ValueError(f"unknown loss {name!r}")


def network_loss(
    X: np.ndarray,
    T: np.ndarray,
    weights: Sequence[np.ndarray],
    biases: Sequence[np.ndarray],
    activation: str,
    loss: str,
    negative_slope: float = DEFAULT_NEGATIVE_SLOPE,
) -> float:
    """Loss of the whole network at the given parameters."""
    pre_activations, _ = forward(X, weights, biases, activation, negative_slope)
    return loss_value(pre_activations[-1], T, loss)
