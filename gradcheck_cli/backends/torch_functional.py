"""PyTorch autograd on plain tensors: requires_grad leaves, a functional forward, backward()."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..problem import Gradients, Problem
from .base import Backend

if TYPE_CHECKING:
    import torch


def _activation(z: torch.Tensor, problem: Problem) -> torch.Tensor:
    import torch
    import torch.nn.functional as F

    name = problem.activation
    if name == "relu":
        return F.relu(z)
    if name == "leaky-relu":
        return F.leaky_relu(z, negative_slope=problem.negative_slope)
    if name == "tanh":
        return torch.tanh(z)
    if name == "sigmoid":
        return torch.sigmoid(z)
    return z  # identity


def _loss(Y: torch.Tensor, T: torch.Tensor, problem: Problem) -> torch.Tensor:
    import torch.nn.functional as F

    name = problem.loss
    if name == "mse":
        return F.mse_loss(Y, T, reduction="mean")
    if name == "sse":
        return F.mse_loss(Y, T, reduction="sum")
    if name == "cross-entropy":
        return F.cross_entropy(Y, T)
    return F.binary_cross_entropy_with_logits(Y, T)  # bce


class TorchFunctional(Backend):
    """Autograd through `A @ W + B` and torch.nn.functional activations and losses."""

    name = "torch-functional"
    description = "PyTorch autograd on plain tensors (functional forward)"

    def __init__(self, device: str = "cpu") -> None:
        self.device = device

    def gradients(self, problem: Problem) -> Gradients:
        """Loss and gradients by autograd in `problem.dtype` on the chosen device."""
        from ._torch_common import resolve_device, targets, tensor, to_numpy

        device = resolve_device(self.device)
        X = tensor(problem.X, problem, device)
        T = targets(problem, device)
        W = [tensor(w, problem, device, requires_grad=True) for w in problem.weights]
        B = [tensor(b, problem, device, requires_grad=True) for b in problem.biases]
        A = X
        for i, (w, b) in enumerate(zip(W, B)):
            Z = A @ w + b
            A = _activation(Z, problem) if i < len(W) - 1 else Z
        loss = _loss(A, T, problem)
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
