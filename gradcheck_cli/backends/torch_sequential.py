"""PyTorch nn.Sequential of nn.Linear and activation modules, gradients read from .grad.

Importing this module imports torch (the registry imports it only when it is used).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from ..problem import Gradients, Problem
from ._torch_common import TORCH_DTYPES, lookup, resolve_device, targets, tensor, to_numpy
from .base import Backend

# One entry per activation and loss of gradcheck_cli.nn, written with torch.nn modules.
ACTIVATION_MODULES: dict[str, Callable[[float], nn.Module]] = {
    "relu": lambda s: nn.ReLU(),
    "tanh": lambda s: nn.Tanh(),
    "sigmoid": lambda s: nn.Sigmoid(),
    "leaky-relu": lambda s: nn.LeakyReLU(negative_slope=s),
    "identity": lambda s: nn.Identity(),
}
LOSS_MODULES: dict[str, Callable[[], nn.Module]] = {
    "mse": lambda: nn.MSELoss(reduction="mean"),
    "sse": lambda: nn.MSELoss(reduction="sum"),
    "cross-entropy": lambda: nn.CrossEntropyLoss(),
    "bce": lambda: nn.BCEWithLogitsLoss(),
}


class TorchSequential(Backend):
    """The network as nn.Sequential; Linear.weight holds W transposed, as (out, in)."""

    name = "torch-sequential"
    description = "PyTorch nn.Sequential of nn.Linear and activation modules"

    def __init__(self, device: str = "cpu") -> None:
        self.device = device

    def gradients(self, problem: Problem) -> Gradients:
        """Loss and gradients from module parameters' .grad, transposed back to (in, out)."""
        make_activation = lookup(ACTIVATION_MODULES, problem.activation, "activation")
        make_loss = lookup(LOSS_MODULES, problem.loss, "loss")
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
                modules.append(make_activation(problem.negative_slope))
        net = nn.Sequential(*modules)
        net.zero_grad()
        Y = net(tensor(problem.X, problem, device))
        loss = make_loss()(Y, targets(problem, device))
        loss.backward()
        dW, dB = [], []
        for linear in linears:
            assert linear.weight.grad is not None and linear.bias.grad is not None
            dW.append(to_numpy(linear.weight.grad).T.copy())
            dB.append(to_numpy(linear.bias.grad))
        return Gradients(loss=float(loss.item()), dW=tuple(dW), dB=tuple(dB))
