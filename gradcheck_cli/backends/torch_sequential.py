"""PyTorch nn.Sequential of nn modules (an MLP's Linear and activation modules, or a layered
problem's layers), gradients read from .grad.

Importing this module imports torch (the registry imports it only when it is used).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from ..nn.layers import parameter_shapes
from ..nn.network import qualified
from ..problem import AnyProblem, Gradients, LayeredProblem
from ._torch_common import (
    TORCH_DTYPES,
    ieee_float32,
    lookup,
    resolve_device,
    targets,
    tensor,
    to_numpy,
)
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


def _bn_options(o: dict[str, Any]) -> dict[str, Any]:
    # bias= exists only from torch 2.13 on: passed only when it says something.
    extra = {} if o["bias"] else {"bias": False}
    return {"eps": o["eps"], "affine": o["affine"], **extra}


# One entry per layer kind of gradcheck_cli.nn.layers: the nn module, from its options.
LAYER_MODULES: dict[str, Callable[[dict[str, Any]], nn.Module]] = {
    "Linear": lambda o: nn.Linear(o["in_features"], o["out_features"], bias=o["bias"]),
    "Conv2d": lambda o: nn.Conv2d(
        o["in_channels"],
        o["out_channels"],
        o["kernel_size"],
        stride=o["stride"],
        padding=o["padding"],
        bias=o["bias"],
    ),
    "MaxPool2d": lambda o: nn.MaxPool2d(o["kernel_size"], o["stride"], o["padding"]),
    "AvgPool2d": lambda o: nn.AvgPool2d(o["kernel_size"], o["stride"], o["padding"]),
    "Flatten": lambda o: nn.Flatten(o["start_dim"], o["end_dim"]),
    "BatchNorm1d": lambda o: nn.BatchNorm1d(o["num_features"], **_bn_options(o)),
    "BatchNorm2d": lambda o: nn.BatchNorm2d(o["num_features"], **_bn_options(o)),
    "LayerNorm": lambda o: nn.LayerNorm(
        o["normalized_shape"],
        eps=o["eps"],
        elementwise_affine=o["elementwise_affine"],
        bias=o["bias"],
    ),
    "ReLU": lambda o: nn.ReLU(),
    "LeakyReLU": lambda o: nn.LeakyReLU(o["negative_slope"]),
    "Tanh": lambda o: nn.Tanh(),
    "Sigmoid": lambda o: nn.Sigmoid(),
    "Identity": lambda o: nn.Identity(),
    "GELU": lambda o: nn.GELU(approximate=o["approximate"]),
    "ELU": lambda o: nn.ELU(o["alpha"]),
}


class TorchSequential(Backend):
    """The network as nn.Sequential; Linear.weight holds W transposed, as (out, in)."""

    name = "torch-sequential"
    description = "PyTorch nn.Sequential of nn modules (Linear, Conv2d, pools, norms, activations)"

    def __init__(self, device: str = "cpu") -> None:
        self.device = device

    def gradients(self, problem: AnyProblem) -> Gradients:
        """Loss and gradients from module parameters' .grad, transposed back to (in, out)."""
        if isinstance(problem, LayeredProblem):
            with ieee_float32():
                return self._layered(problem)
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

    def _layered(self, problem: LayeredProblem) -> Gradients:
        """The layers as nn modules in training mode (batch norm uses batch statistics)."""
        makers = [lookup(LAYER_MODULES, layer.kind, "layer") for layer in problem.layers]
        make_loss = lookup(LOSS_MODULES, problem.loss, "loss")
        device = resolve_device(self.device)
        modules = [make(layer.opts) for make, layer in zip(makers, problem.layers)]
        net = nn.Sequential(*modules).to(device=device, dtype=TORCH_DTYPES[problem.dtype])
        net.train()
        owned: dict[str, nn.Parameter] = {}
        with torch.no_grad():
            for layer, module in zip(problem.layers, modules):
                local = dict(module.named_parameters(recurse=False))
                for key in parameter_shapes(layer):
                    name = qualified(layer, key)
                    local[key].copy_(tensor(problem.params[name], problem, device))
                    owned[name] = local[key]
        net.zero_grad()
        loss = make_loss()(net(tensor(problem.X, problem, device)), targets(problem, device))
        loss.backward()
        named = {}
        for name, parameter in owned.items():
            assert parameter.grad is not None
            named[name] = to_numpy(parameter.grad)
        return Gradients(loss=float(loss.item()), named=named)
