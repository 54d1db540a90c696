"""The MLP: forward pass, loss, and backpropagation through the activation and loss tables.

Layer i maps A[i] (N, in_i) to A[i+1] = act(A[i] @ W[i] + B[i]); the last layer has no
activation. Arrays keep the dtype they come in (float32 backprop stays float32).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from .activations import DEFAULT_NEGATIVE_SLOPE, activation
from .losses import loss as loss_named

# local_derivative(i) -> the factor that turns dLoss/dA[i] into dLoss/dZ[i-1] (act'(Z[i-1])).
LocalDerivative = Callable[[int], np.ndarray]


def forward(
    X: np.ndarray,
    weights: Sequence[np.ndarray],
    biases: Sequence[np.ndarray],
    activation_name: str,
    negative_slope: float = DEFAULT_NEGATIVE_SLOPE,
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Run the forward pass; return pre-activations [Z0..Zk] and inputs [X, A1..Ak].

    The network output is Zs[-1] (the last layer has no activation).
    """
    act = activation(activation_name)
    inputs = [X]
    pre_activations = []
    last = len(weights) - 1
    for i, (w, b) in enumerate(zip(weights, biases)):
        z = inputs[-1] @ w + b
        pre_activations.append(z)
        if i < last:
            inputs.append(act.forward(z, negative_slope))
    return pre_activations, inputs


def network_loss(
    X: np.ndarray,
    T: np.ndarray,
    weights: Sequence[np.ndarray],
    biases: Sequence[np.ndarray],
    activation_name: str,
    loss_name: str,
    negative_slope: float = DEFAULT_NEGATIVE_SLOPE,
) -> float:
    """Loss of the whole network at the given parameters."""
    pre_activations, _ = forward(X, weights, biases, activation_name, negative_slope)
    return loss_named(loss_name).value(pre_activations[-1], T)


def output_magnitude(
    X: np.ndarray,
    weights: Sequence[np.ndarray],
    biases: Sequence[np.ndarray],
    activation_name: str,
    negative_slope: float = DEFAULT_NEGATIVE_SLOPE,
) -> np.ndarray:
    """How large the terms are that are summed into each output, through every layer.

    |X| @ |W0| + |B0|, passed through |act'| and the next layer's |W| likewise: eps times
    this bounds (to first order, up to a factor of the depth) the rounding error of Y.
    """
    act = activation(activation_name)
    Zs, As = forward(X, weights, biases, activation_name, negative_slope)
    magnitude = np.abs(X)
    for i, (w, b) in enumerate(zip(weights, biases)):
        size = magnitude @ np.abs(w) + np.abs(b)
        if i == len(weights) - 1:
            return np.asarray(size)
        magnitude = np.abs(act.derivative(Zs[i], As[i + 1], negative_slope)) * size
    raise ValueError("a network has at least one layer")


# Rounding of one evaluated loss, in units of eps x the magnitudes involved: the loss's own
# terms, and the outputs' rounding (depth x eps x their magnitude) times |dL/dY|.
ROUNDING_ULPS = 4.0


def loss_rounding(
    X: np.ndarray,
    T: np.ndarray,
    weights: Sequence[np.ndarray],
    biases: Sequence[np.ndarray],
    activation_name: str,
    loss_name: str,
    negative_slope: float,
    eps: float,
) -> float:
    """A bound on the rounding error of evaluating the loss (or a change of it) with unit
    roundoff eps/2: from the magnitudes actually summed, not from the loss, which nearly
    converged is tiny while the outputs that produce it (and their rounding) are not."""
    loss = loss_named(loss_name)
    Zs, _ = forward(X, weights, biases, activation_name, negative_slope)
    Y = Zs[-1]
    magnitude = output_magnitude(X, weights, biases, activation_name, negative_slope)
    outputs = len(weights) * float((np.abs(loss.gradient(Y, T)) * magnitude).sum())
    return ROUNDING_ULPS * eps * (abs(loss.magnitude(Y, T)) + outputs)


def gradient_rounding(
    X: np.ndarray,
    T: np.ndarray,
    weights: Sequence[np.ndarray],
    biases: Sequence[np.ndarray],
    activation_name: str,
    loss_name: str,
    negative_slope: float,
    eps: float,
) -> tuple[list[float], list[float]]:
    """Per layer, a bound on how far rounding dLoss/dY (eps x the size of its terms) moves
    the largest entry of dW and dB: that rounding carried back through |W| and |act'|.

    Nearly converged, dLoss/dY is a difference of nearly equal numbers (Y - T, softmax - P,
    sigmoid - T): its absolute rounding stays while it shrinks, and every gradient inherits
    it, in any correct implementation.
    """
    act = activation(activation_name)
    Zs, As = forward(X, weights, biases, activation_name, negative_slope)
    delta = ROUNDING_ULPS * eps * loss_named(loss_name).gradient_magnitude(Zs[-1], T)
    dW, dB = [0.0] * len(weights), [0.0] * len(weights)
    for i in reversed(range(len(weights))):
        dW[i] = float((np.abs(As[i]).T @ delta).max())
        dB[i] = float(delta.sum(axis=0).max())
        if i > 0:
            local = np.abs(act.derivative(Zs[i - 1], As[i], negative_slope))
            delta = (delta @ np.abs(weights[i]).T) * local
    return dW, dB


def backward(
    inputs: Sequence[np.ndarray],
    Y: np.ndarray,
    T: np.ndarray,
    weights: Sequence[np.ndarray],
    loss_name: str,
    local_derivative: LocalDerivative,
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The chain rule from the output back: (dW, dB) in the dtype of `Y`."""
    delta = loss_named(loss_name).gradient(Y, T).astype(Y.dtype)  # dLoss/dZ_k
    dW: list[np.ndarray] = [np.empty(0)] * len(weights)
    dB: list[np.ndarray] = [np.empty(0)] * len(weights)
    for i in reversed(range(len(weights))):
        dW[i] = inputs[i].T @ delta
        dB[i] = delta.sum(axis=0)
        if i > 0:
            upstream = delta @ weights[i].T  # dLoss/dA_i
            delta = upstream * local_derivative(i)
    return dW, dB


def gradients(
    X: np.ndarray,
    T: np.ndarray,
    weights: Sequence[np.ndarray],
    biases: Sequence[np.ndarray],
    activation_name: str,
    loss_name: str,
    negative_slope: float = DEFAULT_NEGATIVE_SLOPE,
) -> tuple[float, list[np.ndarray], list[np.ndarray]]:
    """Loss and exact gradients (dW, dB) by backpropagation, in the dtype of the arrays."""
    act = activation(activation_name)
    Zs, As = forward(X, weights, biases, activation_name, negative_slope)
    Y = Zs[-1]

    def local(i: int) -> np.ndarray:
        return act.derivative(Zs[i - 1], As[i], negative_slope)

    dW, dB = backward(As, Y, T, weights, loss_name, local)
    return loss_named(loss_name).value(Y, T), dW, dB
