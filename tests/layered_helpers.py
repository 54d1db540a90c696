"""Helpers for layered problems: torch models built here (independently of the package's
tables), their gradients by torch autograd, the issue's networks, and random layered models.

Nothing here is a test; test modules import from here, never from each other.
"""

from __future__ import annotations

import copy
import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from gradcheck_cli.inputs import make_layered_problem
from gradcheck_cli.inputs.models import layers_of_model
from gradcheck_cli.problem import LayeredProblem

USER_CORPUS = Path(__file__).resolve().parent / "user_corpus"


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


STUDENT = USER_CORPUS / "conv_net.py"


def student(name: str = "correct") -> Callable[..., Any]:
    """A function of tests/user_corpus/conv_net.py: a student's NumPy backprop of conv_net."""
    spec = importlib.util.spec_from_file_location("conv_net_student", STUDENT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    function: Callable[..., Any] = getattr(module, name)
    return function
