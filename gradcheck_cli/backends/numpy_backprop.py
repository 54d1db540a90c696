"""Hand-written backpropagation in NumPy, vectorised over the batch, any depth."""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import nn
from ..nn import network
from ..problem import AnyProblem, Gradients, LayeredProblem
from .base import Backend


class NumpyBackprop(Backend):
    """Forward pass, then the chain rule layer by layer from the output back (nn.mlp, or
    nn.network and the layer table for layered problems)."""

    name = "numpy"
    description = "hand-written NumPy forward and backward pass"

    def __init__(self, **_options: Any) -> None:
        pass

    def gradients(self, problem: AnyProblem) -> Gradients:
        """Loss and exact gradients by backpropagation in `problem.dtype`."""
        dtype = np.dtype(problem.dtype)
        T = problem.T if problem.T.dtype.kind in "iu" else problem.T.astype(dtype)
        if isinstance(problem, LayeredProblem):
            params = {n: p.astype(dtype) for n, p in problem.params.items()}
            value, named = network.gradients(
                problem.layers, params, problem.X.astype(dtype), T, problem.loss
            )
            return Gradients(loss=value, named=named)
        loss, dW, dB = nn.gradients(
            problem.X.astype(dtype),
            T,
            [w.astype(dtype) for w in problem.weights],
            [b.astype(dtype) for b in problem.biases],
            problem.activation,
            problem.loss,
            problem.negative_slope,
        )
        return Gradients(loss=loss, dW=tuple(dW), dB=tuple(dB))
