"""Helpers for layered problems: torch models built here (independently of the package's
tables), their gradients by torch autograd, the issue's networks, and random layered models.

Nothing here is a test; test modules import from here, never from each other.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from gradcheck_cli.inputs import make_layered_problem
from gradcheck_cli.inputs.models import layers_of_model
from gradcheck_cli.problem import LayeredProblem


def conv_net(seed: int = 0) -> tuple[nn.Sequential, np.ndarray, np.ndarray]:
    """The issue's network: Conv2d(1,4,3,padding=1)-ReLU-MaxPool2d(2)-Flatten-Linear(64,10),
    8 images 8x8, class labels (cross-entropy); 690 parameters."""
    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(64, 10)
    )
    rng = np.random.default_rng(seed)
    return model, rng.standard_normal((8, 1, 8, 8)), rng.integers(0, 10, size=8)


def bn_net(seed: int = 0) -> tuple[nn.Sequential, np.ndarray, np.ndarray]:
    """The issue's Linear-BatchNorm1d-Tanh-Linear network with mse targets."""
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(5, 6), nn.BatchNorm1d(6), nn.Tanh(), nn.Linear(6, 3))
    rng = np.random.default_rng(seed)
    return model, rng.standard_normal((8, 5)), rng.standard_normal((8, 3))


def every_layer_net(seed: int = 0) -> tuple[nn.Sequential, np.ndarray, np.ndarray]:
    """A small network with every supported layer kind (mse targets)."""
    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.Conv2d(2, 3, 3, stride=2, padding=1),
        nn.BatchNorm2d(3),
        nn.LeakyReLU(0.1),
        nn.AvgPool2d(2, stride=1, padding=1),
        nn.Conv2d(3, 2, (2, 3), bias=False),
        nn.GELU(),
        nn.MaxPool2d(2, stride=1),
        nn.Flatten(),
        nn.LayerNorm(24),
        nn.ELU(0.5),
        nn.Linear(24, 5),
        nn.Sigmoid(),
        nn.Identity(),
        nn.Linear(5, 4),
        nn.Tanh(),
        nn.ReLU(),
        nn.GELU("tanh"),
        nn.Linear(4, 2),
    )
    rng = np.random.default_rng(seed)
    return model, rng.standard_normal((6, 2, 9, 9)), rng.standard_normal((6, 2))


def problem_of(
    model: nn.Module, X: np.ndarray, T: np.ndarray, loss: str, dtype: str = "float64"
) -> LayeredProblem:
    """The model's layered problem."""
    layers, params = layers_of_model(model)
    return make_layered_problem(X, T, layers, params, loss=loss, dtype=dtype)


def torch_gradients(
    model: nn.Module, X: np.ndarray, T: np.ndarray, loss: str
) -> tuple[float, dict[str, np.ndarray]]:
    """Loss and gradients by torch autograd on a float64 copy of the model (training mode)."""
    net = copy.deepcopy(model).double().train()
    net.zero_grad()
    Y = net(torch.tensor(X, dtype=torch.float64))
    if loss == "cross-entropy":
        value = nn.functional.cross_entropy(Y, torch.tensor(T, dtype=torch.int64))
    elif loss == "bce":
        value = nn.functional.binary_cross_entropy_with_logits(Y, torch.tensor(T))
    else:
        value = nn.functional.mse_loss(
            Y, torch.tensor(T), reduction="mean" if loss == "mse" else "sum"
        )
    value.backward()
    grads = {n: p.grad.detach().numpy().copy() for n, p in net.named_parameters()}
    return float(value.item()), grads


def max_rel(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> float:
    """max over parameters of max |a - b| / max |b| (1 where b is all zero and a is not)."""
    worst = 0.0
    for name, ref in b.items():
        scale = float(np.abs(ref).max()) or 1.0
        worst = max(worst, float(np.abs(a[name] - ref).max()) / scale)
    return worst


def numpy_student(problem: LayeredProblem, *, flip_kernel=False, route_all=False, no_mean=False):  # type: ignore[no-untyped-def]
    """A student's hand-written backprop of the issue's conv network, f(X, T, params) -> dict,
    with one of the issue's mistakes on request (written here, independent of the package)."""

    def backprop(X, T, params):  # type: ignore[no-untyped-def]
        W, b = params["0.weight"], params["0.bias"]
        V, c = params["4.weight"], params["4.bias"]
        N = X.shape[0]
        xp = np.pad(X, ((0, 0), (0, 0), (1, 1), (1, 1)))
        Z = np.zeros((N, 4, 8, 8))
        for i in range(3):
            for j in range(3):
                Z += np.einsum("nhw,o->nohw", xp[:, 0, i : i + 8, j : j + 8], W[:, 0, i, j])
        Z += b[None, :, None, None]
        A = np.maximum(Z, 0)
        windows = A.reshape(N, 4, 4, 2, 4, 2).transpose(0, 1, 2, 4, 3, 5).reshape(N, 4, 4, 4, 4)
        P = windows.max(axis=-1)
        F = P.reshape(N, 64)
        Y = F @ V.T + c
        S = np.exp(Y - Y.max(axis=1, keepdims=True))
        S /= S.sum(axis=1, keepdims=True)
        dY = S.copy()
        dY[np.arange(N), T] -= 1
        if not no_mean:
            dY /= N
        dV, dc = dY.T @ F, dY.sum(axis=0)
        dP = (dY @ V).reshape(N, 4, 4, 4)
        if route_all:
            dwin = np.repeat(dP[..., None], 4, axis=-1)
        else:
            first = windows.argmax(axis=-1)
            dwin = np.zeros_like(windows)
            np.put_along_axis(dwin, first[..., None], dP[..., None], axis=-1)
        dA = dwin.reshape(N, 4, 4, 4, 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(N, 4, 8, 8)
        dZ = dA * (Z > 0)
        dW = np.zeros_like(W)
        for i in range(3):
            for j in range(3):
                dW[:, 0, i, j] = np.einsum("nohw,nhw->o", dZ, xp[:, 0, i : i + 8, j : j + 8])
        if flip_kernel:
            dW = dW[:, :, ::-1, ::-1].copy()
        return {"0.weight": dW, "0.bias": dZ.sum(axis=(0, 2, 3)), "4.weight": dV, "4.bias": dc}

    return backprop
