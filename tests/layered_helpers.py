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
import pytest

from gradcheck_cli.inputs import make_layered_problem
from gradcheck_cli.inputs.models import layers_of_model
from gradcheck_cli.problem import LayeredProblem
from tests.helpers import random_targets, torch_loss

# The layered tests build their networks in torch and compare with its autograd: a module that
# imports these helpers is skipped where torch is not installed.
torch = pytest.importorskip("torch")
nn = torch.nn

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
    value = torch_loss(Y, np.asarray(T), loss)
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


# ----------------------------------------------------------------------------------------------
# Random layered models (tests/verdict/test_layered_fuzz.py)

ACTIVATIONS = (
    nn.ReLU,
    lambda: nn.LeakyReLU(0.1),
    lambda: nn.ELU(0.7),
    nn.Tanh,
    nn.Sigmoid,
    nn.GELU,
    lambda: nn.GELU("tanh"),
    nn.Identity,
)
PIECEWISE = (nn.ReLU, nn.LeakyReLU, nn.ELU)
# How far from convergence "nearly converged" is (as tests/helpers.py's CONVERGED).
CONVERGED = {"float64": (-9.0, -3.0), "float32": (-4.0, -2.0)}


def _activation(rng: np.random.Generator) -> nn.Module:
    module: nn.Module = ACTIVATIONS[int(rng.integers(len(ACTIVATIONS)))]()
    return module


def _image_stage(rng: np.random.Generator, modules: list[nn.Module]) -> tuple[tuple[int, ...], int]:
    """Convolutions (maybe batch norm, pooling) and a Flatten: the input shape, the features."""
    c, h = int(rng.integers(1, 3)), int(rng.integers(4, 8))
    shape = (c, h, h)
    for _ in range(int(rng.integers(1, 3))):
        out, k = int(rng.integers(1, 4)), int(rng.integers(1, 4))
        stride, pad = int(rng.integers(1, 3)), int(rng.integers(0, 2))
        if (h + 2 * pad - k) // stride + 1 < 1:
            break
        modules.append(nn.Conv2d(c, out, k, stride=stride, padding=pad, bias=rng.random() < 0.8))
        c, h = out, (h + 2 * pad - k) // stride + 1
        if rng.random() < 0.3:
            modules.append(nn.BatchNorm2d(c))
        modules.append(_activation(rng))
        if h >= 2 and rng.random() < 0.5:
            s = int(rng.integers(1, 3))
            modules.append(nn.MaxPool2d(2, s) if rng.random() < 0.6 else nn.AvgPool2d(2, s))
            h = (h - 2) // s + 1
    modules.append(nn.Flatten())
    return shape, c * h * h


def random_model(
    seed: int, loss: str, point: str
) -> tuple[nn.Sequential, np.ndarray, np.ndarray, str]:
    """A random model of every layer kind at an ordinary, kink or nearly converged point."""
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed % 2**31)
    modules: list[nn.Module] = []
    if rng.random() < 0.5:
        shape, features = _image_stage(rng, modules)
    else:
        features = int(rng.integers(2, 7))
        shape = (features,)
    for _ in range(int(rng.integers(0, 3))):
        width = int(rng.integers(2, 7))
        modules.append(nn.Linear(features, width))
        features = width
        norm = rng.random()
        if norm < 0.25:
            modules.append(nn.BatchNorm1d(width))
        elif norm < 0.4:
            modules.append(nn.LayerNorm(width))
        modules.append(_activation(rng))
    outputs = int(rng.integers(2, 4)) if loss == "cross-entropy" else int(rng.integers(1, 4))
    modules.append(nn.Linear(features, outputs))
    model = nn.Sequential(*modules).double()
    samples = int(rng.integers(3, 9))
    X = rng.standard_normal((samples, *shape))
    source = "ordinary"
    if point == "kink":
        source = _place_kink(model, X, rng) or source
    with torch.no_grad():
        Y = model(torch.tensor(X)).numpy()
    if point == "converged":
        source = "converged"
        if loss in ("mse", "sse"):
            low, high = CONVERGED["float64"]
            noise = 10.0 ** rng.uniform(low, high) * np.abs(Y).max()
            T = Y + noise * rng.standard_normal(Y.shape)
        else:
            with torch.no_grad():
                model[-1].weight *= 8
                model[-1].bias *= 8
                Y = model(torch.tensor(X)).numpy()
            T = Y.argmax(axis=1) if loss == "cross-entropy" else (Y > 0).astype(float)
    else:
        T = random_targets(rng, loss, samples, outputs)
    return model, X, T, f"fuzzed layered model at a {source} point"


def _place_kink(model: nn.Sequential, X: np.ndarray, rng: np.random.Generator) -> str | None:
    """Move a bias so that one input of a piecewise activation sits at (or next to) zero."""
    spots = [
        i
        for i in range(1, len(model))
        if isinstance(model[i], PIECEWISE)
        and isinstance(model[i - 1], (nn.Linear, nn.Conv2d))
        and model[i - 1].bias is not None
    ]
    if not spots:
        return None
    i = spots[int(rng.integers(len(spots)))]
    with torch.no_grad():
        z = model[:i](torch.tensor(X)).numpy()
        index = tuple(int(rng.integers(n)) for n in z.shape)
        model[i - 1].bias[index[1]] -= float(z[index]) - float(rng.choice([0.0, 1e-12, -1e-9]))
    return "kink"


def careful_user(model: nn.Module, problem: LayeredProblem) -> dict[str, np.ndarray]:
    """The gradient by torch autograd in the problem's dtype: what a careful user returns."""
    dtype = torch.float64 if problem.dtype == "float64" else torch.float32
    net = copy.deepcopy(model).to(dtype).train()
    net.zero_grad()
    Y = net(torch.tensor(problem.X, dtype=dtype))
    torch_loss(Y, problem.T, problem.loss).backward()
    return {n: p.grad.numpy().astype(np.float64) for n, p in net.named_parameters()}


def degenerate(problem: LayeredProblem) -> bool:
    """Whether a batch norm gets a channel that does not vary over the batch (e.g. behind
    dead ReLUs): the network is then constant there, its gradients zero up to rounding."""
    from gradcheck_cli.nn import network

    outputs, _ = network.forward(problem.layers, problem.params, problem.X)
    inputs = [problem.X, *outputs[:-1]]
    for layer, x in zip(problem.layers, inputs):
        if layer.kind.startswith("BatchNorm"):
            axes = tuple(a for a in range(x.ndim) if a != 1)
            if np.any(x.var(axis=axes) <= 1e-12 * (np.mean(x * x) + 1e-300)):
                return True
    return False
