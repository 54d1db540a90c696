"""PyTorch nn.Sequential of nn.Linear and activation modules, gradients read from .grad."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..problem import Gradients, Problem
from .base import Backend

if TYPE_CHECKING:
    from torch import nn


def _activation_module(problem: Problem) -> nn.Module:
    from torch import nn

    modules = {
        "relu": nn.ReLU,
        "tanh": nn.Tanh,
        "sigmoid": nn.Sigmoid,
        "identity": nn.Identity,
    }
    if problem.activation == "leaky-relu":
        return nn.LeakyReLU(negative_slope=problem.negative_slope)
    return modules[problem.activation]()


def _loss_module(problem: Problem) -> nn.Module:
    from torch import nn

    if problem.loss == "mse":
        return nn.MSELoss(reduction="mean")
    if problem.loss == "sse":
        return nn.MSELoss(reduction="sum")
    if problem.loss == "cross-entropy":
        return nn.CrossEntropyLoss()
    return nn.BCEWithLogitsLoss()


class TorchSequential(Backend):
    """The network as nn.Sequential; Linear.weight holds W transposed, as (out, in)."""

    name = "torch-sequential"
    description = "PyTorch nn.Sequential of nn.Linear and activation modules"

    def __init__(self, device: str = "cpu") -> None:
        self.device = device

    def gradients(self, problem: Problem) -> Gradients:
        """Loss and gradients from module parameters' .grad, transposed back to (in, out)."""
        import torch
        from torch import nn

        from ._torch_common import TORCH_DTYPES, resolve_device, targets, tensor, to_numpy

        device = resolve_device(self.device)
        dtype = TORCH_DTYPES[problem.dtype]
        modules: list[nn.Module] = []
        linears: list[nn.Linear] = []
        for i, (w, b) in enumerate(zip(problem.weights, problem.biases)):
            linear = nn.Linear(w.shape[0], w.shape[1], device=device, dtype=dtype)
            with torch.no_grad():
                linear.weight.copy_(tensor(w.T, problem, device))
                linear.bias.copy_(tensor(b, problem, device))
            linears.append(linear)
            modules.append(linear)
            if i < problem.depth - 1:
                modules.append(_activation_module(problem))
        net = nn.Sequential(*modules)
        net.zero_grad()
        Y = net(tensor(problem.X, problem, device))
        loss = _loss_module(problem)(Y, targets(problem, device))
        loss.backward()
        dW, dB = [], []
        for linear in linears:
            assert linear.weight.grad is not None and linear.bias.grad is not None
            dW.append(to_numpy(linear.weight.grad).T.copy())
            dB.append(to_numpy(linear.bias.grad))
        return Gradients(loss=float(loss.item()), dW=tuple(dW), dB=tuple(dB))
