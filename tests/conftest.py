"""Shared fixtures: random problems and an independent torch autograd reference."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gradcheck_cli.inputs.loading import load_problem, make_problem
from gradcheck_cli.problem import Problem


def random_problem(
    layers: list[int],
    samples: int = 7,
    seed: int = 0,
    activation: str = "relu",
    loss: str = "mse",
    dtype: str = "float64",
) -> Problem:
    """A random MLP problem with the given widths."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((samples, layers[0]))
    if loss == "cross-entropy":
        T = rng.integers(0, layers[-1], size=samples)
    elif loss == "bce":
        T = rng.uniform(0, 1, size=(samples, layers[-1]))
    else:
        T = rng.standard_normal((samples, layers[-1]))
    W = [rng.standard_normal((a, b)) / np.sqrt(a) for a, b in zip(layers[:-1], layers[1:])]
    B = [0.1 * rng.standard_normal(b) for b in layers[1:]]
    return make_problem(X, T, W, B, activation=activation, loss=loss, dtype=dtype)


def torch_reference(problem: Problem) -> tuple[float, list[np.ndarray], list[np.ndarray]]:
    """Loss and gradients by torch autograd, written here independently of the package (float64)."""
    X = torch.tensor(problem.X, dtype=torch.float64)
    W = [torch.tensor(w, dtype=torch.float64, requires_grad=True) for w in problem.weights]
    B = [torch.tensor(b, dtype=torch.float64, requires_grad=True) for b in problem.biases]
    act = {
        "relu": torch.relu,
        "tanh": torch.tanh,
        "sigmoid": torch.sigmoid,
        "identity": lambda z: z,
        "leaky-relu": lambda z: torch.where(z > 0, z, problem.negative_slope * z),
    }[problem.activation]
    A = X
    for i, (w, b) in enumerate(zip(W, B)):
        A = A @ w + b
        if i < len(W) - 1:
            A = act(A)
    if problem.loss == "cross-entropy":
        logp = A - torch.logsumexp(A, dim=1, keepdim=True)
        if problem.T.ndim == 1:
            loss = -logp[torch.arange(A.shape[0]), torch.tensor(problem.T)].mean()
        else:
            loss = -(torch.tensor(problem.T) * logp).sum() / A.shape[0]
    elif problem.loss == "bce":
        T = torch.tensor(problem.T)
        p = torch.sigmoid(A)
        loss = -(T * torch.log(p) + (1 - T) * torch.log(1 - p)).mean()
    else:
        T = torch.tensor(problem.T)
        sq = (A - T) ** 2
        loss = sq.mean() if problem.loss == "mse" else sq.sum()
    loss.backward()
    return (
        float(loss.item()),
        [w.grad.numpy() for w in W],  # type: ignore[union-attr]
        [b.grad.numpy() for b in B],  # type: ignore[union-attr]
    )


@pytest.fixture
def exercise_problem() -> Problem:
    """The bundled 4-6-6-6-1 problem."""
    return load_problem()
