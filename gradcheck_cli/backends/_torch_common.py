"""Helpers shared by the torch backends; importing this module imports torch."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..errors import InputError
from ..problem import Problem

TORCH_DTYPES = {"float64": torch.float64, "float32": torch.float32}


def resolve_device(device: str) -> torch.device:
    """A torch device, or a clear InputError when it is not available here."""
    if device == "cuda" and not torch.cuda.is_available():
        raise InputError("--device cuda was requested but no CUDA GPU is available to torch")
    try:
        return torch.device(device)
    except RuntimeError as exc:
        raise InputError(f"unknown torch device {device!r}: {exc}") from None


def tensor(
    array: np.ndarray, problem: Problem, device: torch.device, **kwargs: Any
) -> torch.Tensor:
    """`array` as a tensor of the problem's dtype on `device`."""
    return (
        torch.from_numpy(np.ascontiguousarray(array))
        .to(device=device, dtype=TORCH_DTYPES[problem.dtype])
        .requires_grad_(kwargs.get("requires_grad", False))
    )


def targets(problem: Problem, device: torch.device) -> torch.Tensor:
    """T as torch wants it for the problem's loss (class labels stay integers)."""
    if problem.loss == "cross-entropy" and problem.T.ndim == 1:
        return torch.from_numpy(problem.T.astype(np.int64)).to(device)
    return tensor(problem.T, problem, device)


def to_numpy(t: torch.Tensor) -> np.ndarray:
    """A detached CPU copy as a NumPy array."""
    return t.detach().cpu().numpy().copy()
