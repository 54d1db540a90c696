"""Losses: each one's value, gradient and per-row shares side by side, in one table.

Adding a loss is one entry here, plus one in each torch backend's table.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from .activations import sigmoid


def log_softmax(Y: np.ndarray) -> np.ndarray:
    """log softmax over the last axis (shifted by the row maximum: no overflow)."""
    shifted = Y - Y.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def class_targets(Y: np.ndarray, T: np.ndarray) -> np.ndarray:
    """Cross-entropy targets as an (N, C) array of class probabilities (labels one-hot)."""
    if T.ndim == 1:
        onehot = np.zeros(Y.shape, dtype=Y.dtype)
        onehot[np.arange(Y.shape[0]), T.astype(np.int64)] = 1.0
        return onehot
    return T.astype(Y.dtype, copy=False)


def _bce_terms(Y: np.ndarray, T: np.ndarray) -> np.ndarray:
    # log(1 + exp(-|y|)) + max(y, 0) - y t : the stable form of BCE on logits.
    return np.maximum(Y, 0.0) - Y * T + np.log1p(np.exp(-np.abs(Y)))


@dataclass(frozen=True)
class Loss:
    """One loss of output Y (N, out) against targets T.

    `rows(Y, T, n)` is each row's share of the loss of a batch of `n` rows (they sum to the
    loss), which lets finite differences recompute only the rows a perturbation changes.
    """

    name: str
    value: Callable[[np.ndarray, np.ndarray], float]
    gradient: Callable[[np.ndarray, np.ndarray], np.ndarray]  # dLoss/dY, Y's shape
    rows: Callable[[np.ndarray, np.ndarray, int], np.ndarray]
    # The N of the mean's 1/N (1 for a sum), and whether the loss squares a residual:
    # what the named factors of a wrong gradient (missing 1/N, missing 2) refer to.
    averaged_elements: Callable[[np.ndarray, int], int]
    # The size of the terms the loss adds up (before any cancellation): eps x magnitude
    # bounds the rounding of evaluating it from a given Y. Nearly converged, it is far
    # above the loss itself (cross-entropy: lse(Y) - Y_t cancels two numbers of size |Y|).
    magnitude: Callable[[np.ndarray, np.ndarray], float]
    # Per element of dLoss/dY, the size of the terms it is computed from: eps x this bounds
    # its rounding (nearly converged, softmax - P and sigmoid - T cancel digits).
    gradient_magnitude: Callable[[np.ndarray, np.ndarray], np.ndarray]
    squared: bool = False


def _cross_entropy(Y: np.ndarray, T: np.ndarray) -> float:
    return float(-(class_targets(Y, T) * log_softmax(Y)).sum() / Y.shape[0])


def _cross_entropy_gradient(Y: np.ndarray, T: np.ndarray) -> np.ndarray:
    P = class_targets(Y, T)
    softmax = np.exp(log_softmax(Y))
    return np.asarray((softmax * P.sum(axis=1, keepdims=True) - P) / Y.shape[0])


def _cross_entropy_magnitude(Y: np.ndarray, T: np.ndarray) -> float:
    # Per row: the shift by max(Y), log-sum-exp and the target's logit, all of size |Y|.
    P = class_targets(Y, T)
    big = np.abs(Y).max(axis=1)
    return float((3.0 * big * P.sum(axis=1) + np.abs(np.log(Y.shape[1]))).sum() / Y.shape[0])


_TABLE = (
    Loss(
        "mse",
        value=lambda Y, T: float(((Y - T) ** 2).mean()),
        gradient=lambda Y, T: 2.0 * (Y - T) / Y.size,
        rows=lambda Y, T, n: np.asarray(((Y - T) ** 2).sum(axis=1) / (n * Y.shape[1])),
        averaged_elements=lambda T, samples: int(T.size),
        magnitude=lambda Y, T: float(((Y - T) ** 2).mean()),
        gradient_magnitude=lambda Y, T: 2.0 * (np.abs(Y) + np.abs(T)) / Y.size,
        squared=True,
    ),
    Loss(
        "sse",
        value=lambda Y, T: float(((Y - T) ** 2).sum()),
        gradient=lambda Y, T: 2.0 * (Y - T),
        rows=lambda Y, T, n: np.asarray(((Y - T) ** 2).sum(axis=1)),
        averaged_elements=lambda T, samples: 1,
        magnitude=lambda Y, T: float(((Y - T) ** 2).sum()),
        gradient_magnitude=lambda Y, T: 2.0 * (np.abs(Y) + np.abs(T)),
        squared=True,
    ),
    Loss(
        "cross-entropy",
        value=_cross_entropy,
        gradient=_cross_entropy_gradient,
        rows=lambda Y, T, n: np.asarray(-(class_targets(Y, T) * log_softmax(Y)).sum(axis=1) / n),
        averaged_elements=lambda T, samples: samples,
        magnitude=_cross_entropy_magnitude,
        gradient_magnitude=lambda Y, T: (np.exp(log_softmax(Y)) + class_targets(Y, T)) / Y.shape[0],
    ),
    Loss(
        "bce",
        value=lambda Y, T: float(_bce_terms(Y, T).mean()),
        gradient=lambda Y, T: (sigmoid(Y) - T) / Y.size,
        rows=lambda Y, T, n: np.asarray(_bce_terms(Y, T).sum(axis=1) / (n * Y.shape[1])),
        averaged_elements=lambda T, samples: int(T.size),
        magnitude=lambda Y, T: float((np.abs(Y) * (1.0 + np.abs(T)) + np.log(2.0)).mean()),
        gradient_magnitude=lambda Y, T: (sigmoid(Y) + np.abs(T)) / Y.size,
    ),
)
LOSSES: dict[str, Loss] = {loss.name: loss for loss in _TABLE}


def loss(name: str) -> Loss:
    """The loss called `name`; an unknown name is an InputError, never a fallback."""
    try:
        return LOSSES[name]
    except KeyError:
        raise InputError(f"unknown loss {name!r}; choose from: {', '.join(LOSSES)}") from None
