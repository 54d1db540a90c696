"""PyTorch autograd on plain tensors: requires_grad leaves, a functional forward, backward().

Importing this module imports torch (the registry imports it only when it is used).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from ..nn.layers import parameter_shapes
from ..nn.network import qualified
from ..problem import AnyProblem, Gradients, LayeredProblem
from ._torch_common import ieee_float32, lookup, resolve_device, targets, tensor, to_numpy
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

# One entry per layer kind of gradcheck_cli.nn.layers: f(options, x, params by local name).
LayerFunction = Callable[[dict[str, Any], torch.Tensor, dict[str, torch.Tensor]], torch.Tensor]


def _batch_norm(o: dict[str, Any], x: torch.Tensor, p: dict[str, torch.Tensor]) -> torch.Tensor:
    # Training mode: the batch's own statistics (no running statistics involved).
    return F.batch_norm(x, None, None, p.get("weight"), p.get("bias"), training=True, eps=o["eps"])


def _stride(o: dict[str, Any]) -> Any:
    return o["stride"] if o["stride"] is not None else o["kernel_size"]


LAYERS: dict[str, LayerFunction] = {
    "Linear": lambda o, x, p: F.linear(x, p["weight"], p.get("bias")),
    "Conv2d": lambda o, x, p: F.conv2d(x, p["weight"], p.get("bias"), o["stride"], o["padding"]),
    "MaxPool2d": lambda o, x, p: F.max_pool2d(x, o["kernel_size"], _stride(o), o["padding"]),
    "AvgPool2d": lambda o, x, p: F.avg_pool2d(x, o["kernel_size"], _stride(o), o["padding"]),
    "Flatten": lambda o, x, p: torch.flatten(x, o["start_dim"], o["end_dim"]),
    "BatchNorm1d": _batch_norm,
    "BatchNorm2d": _batch_norm,
    "LayerNorm": lambda o, x, p: F.layer_norm(
        x, o["normalized_shape"], p.get("weight"), p.get("bias"), o["eps"]
    ),
    "ReLU": lambda o, x, p: F.relu(x),
    "LeakyReLU": lambda o, x, p: F.leaky_relu(x, o["negative_slope"]),
    "Tanh": lambda o, x, p: torch.tanh(x),
    "Sigmoid": lambda o, x, p: torch.sigmoid(x),
    "Identity": lambda o, x, p: x,
    "GELU": lambda o, x, p: F.gelu(x, approximate=o["approximate"]),
    "ELU": lambda o, x, p: F.elu(x, o["alpha"]),
}


class TorchFunctional(Backend):
    """Autograd through `A @ W + B` and torch.nn.functional activations and losses."""

    name = "torch-functional"
    description = "PyTorch autograd on plain tensors (functional forward)"

    def __init__(self, device: str = "cpu") -> None:
        self.device = device

    def gradients(self, problem: AnyProblem) -> Gradients:
        """Loss and gradients by autograd in `problem.dtype` on the chosen device."""
        if isinstance(problem, LayeredProblem):
            with ieee_float32():
                return self._layered(problem)
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

    def _layered(self, problem: LayeredProblem) -> Gradients:
        """Autograd through the layer table's functions, parameters as leaf tensors."""
        functions = [lookup(LAYERS, layer.kind, "layer") for layer in problem.layers]
        loss_fn = lookup(LOSSES, problem.loss, "loss")
        device = resolve_device(self.device)
        leaves = {
            name: tensor(p, problem, device, requires_grad=True)
            for name, p in problem.params.items()
        }
        A = tensor(problem.X, problem, device)
        for layer, function in zip(problem.layers, functions):
            local = {k: leaves[qualified(layer, k)] for k in parameter_shapes(layer)}
            A = function(layer.opts, A, local)
        loss = loss_fn(A, targets(problem, device))
        loss.backward()
        named = {name: to_numpy(_grad(leaf)) for name, leaf in leaves.items()}
        return Gradients(loss=float(loss.item()), named=named)


def _grad(leaf: torch.Tensor) -> torch.Tensor:
    if leaf.grad is None:  # every parameter feeds the loss, so autograd always fills .grad
        raise RuntimeError("autograd left a parameter without a gradient")
    return leaf.grad
