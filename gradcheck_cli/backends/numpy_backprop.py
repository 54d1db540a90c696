"""Hand-written backpropagation in NumPy, vectorised over the batch, any depth."""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import numpy_mlp
from ..problem import Gradients, Problem
from .base import Backend


class NumpyBackprop(Backend):
    """Forward pass, then the chain rule layer by layer from the output back."""

    name = "numpy"
    description = "hand-written NumPy forward and backward pass"

    def __init__(self, **_options: Any) -> None:
        pass

    def gradients(self, problem: Problem) -> Gradients:
        """Loss and exact gradients by backpropagation in `problem.dtype`."""
        dtype = np.dtype(problem.dtype)
        X = problem.X.astype(dtype)
        T = problem.T if problem.T.dtype.kind in "iu" else problem.T.astype(dtype)
        weights = [w.astype(dtype) for w in problem.weights]
        biases = [b.astype(dtype) for b in problem.biases]
        slope = problem.negative_slope

        Zs, As = numpy_mlp.forward(X, weights, biases, problem.activation, slope)
        Y = Zs[-1]
        loss = numpy_mlp.loss_value(Y, T, problem.loss)

        delta = numpy_mlp.loss_gradient(Y, T, problem.loss).astype(dtype)  # dLoss/dZ_k
        dW: list[np.ndarray] = [np.empty(0)] * len(weights)
        dB: list[np.ndarray] = [np.empty(0)] * len(weights)
        for i in reversed(range(len(weights))):
            dW[i] = As[i].T @ delta
            dB[i] = delta.sum(axis=0)
            if i > 0:
                upstream = delta @ weights[i].T  # dLoss/dA_i
                local = numpy_mlp.activation_derivative(Zs[i - 1], As[i], problem.activation, slope)
                delta = upstream * local
        return Gradients(loss=loss, dW=tuple(dW), dB=tuple(dB))
