"""PyTorch autograd on plain tensors: requires_grad leaves, a functional forward, backward().

Importing this module imports torch (the registry imports it only when it is used).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from ..problem import Gradients, Problem
from ._torch_common import lookup, resolve_device, targets, tensor, to_numpy
from .base import Backend

# One entry per activation and loss of gradcheck_cli.nn, written with torch.nn.functional.
ACTIVATIONS: dict[str, Callable[[torch.Tensor, float], torch.Tensor]] = {
    "relu": lambda z, s: F.relu(z),
    "tanh": lambda z, s: torch.tanh(z),
    "sigmoid": lambda z, s: torch.sigmoid(z),
    "leaky-relu": lambda z, s: F.leaky_relu(z, negative_slope=s),
    "identity": lambda z, s: z,
}
LOSSES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "mse": lambda Y, T: F.mse_loss(Y, T, reduction="mean"),
    "sse": lambda Y, T: F.mse_loss(Y, T, reduction="sum"),
    "cross-entropy": lambda Y, T: F.cross_entropy(Y, T),
    "bce": lambda Y, T: F.binary_cross_entropy_with_logits(Y, T),
}


class TorchFunctional(Backend):
    """Autograd through `A @ W + B` and torch.nn.functional activations and losses."""

    name = "torch-functional"
    description = "PyTorch autograd on plain tensors (functional forward)"

    def __init__(self, device: str = "cpu") -> None:
        self.device = device

    def gradients(self, problem: Problem) -> Gradients:
        """Loss and gradients by autograd in `problem.dtype` on the chosen device."""
        act = lookup(ACTIVATIONS, problem.activation, "activation")
        loss_fn = lookup(LOSSES, problem.loss, "loss")
        device = resolve_device(self.device)
        X = tensor(problem.X, problem, device)
        T = targets(problem, device)
        W = [tensor(w, problem, device, requires_grad=True) for w in problem.weights]
        B = [tensor(b, problem, device, requires_grad=True) for b in problem.biases]
        A = X
        for i, (w, b) in enumerate(zip(W, B)):
            Z = A @ w + b
            A = act(Z, problem.negative_slope) if i < len(W) - 1 else Z
        loss = loss_fn(A, T)
        loss.backward()
        return Gradients(
            loss=float(loss.item()),
            dW=tuple(to_numpy(_grad(w)) for w in W),
            dB=tuple(to_numpy(_grad(b)) for b in B),
        )


def _grad(leaf: torch.Tensor) -> torch.Tensor:
    if leaf.grad is None:  # every parameter feeds the loss, so autograd always fills .grad
        raise RuntimeError("autograd left a parameter without a gradient")
    return leaf.grad
