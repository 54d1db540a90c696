"""Helpers shared by the torch backends; importing this module imports torch."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar

import numpy as np
import torch

from ..errors import InputError
from ..problem import AnyProblem

TORCH_DTYPES = {"float64": torch.float64, "float32": torch.float32}
V = TypeVar("V")


def lookup(table: Mapping[str, V], name: str, kind: str) -> V:
    """A torch backend's table entry for `name`; an unknown name is an error, never a fallback."""
    try:
        return table[name]
    except KeyError:
        raise InputError(f"unknown {kind} {name!r}; choose from: {', '.join(table)}") from None


def resolve_device(device: str) -> torch.device:
    """A torch device (cpu, cuda or cuda:N), or a clear InputError when it is not available here."""
    if not re.fullmatch(r"cpu|cuda(:\d+)?", device):
        raise InputError(
            f"unknown device {device!r}; choose cpu, cuda or cuda:N", arguments=("device",)
        )
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise InputError(
                f"device {device} was requested but no CUDA GPU is available to torch",
                arguments=("device",),
            )
        index = int(device.partition(":")[2] or 0)
        if index >= torch.cuda.device_count():
            count = torch.cuda.device_count()
            raise InputError(
                f"device {device}: this machine has {count} CUDA device(s)", arguments=("device",)
            )
    return torch.device(device)


def tensor(
    array: np.ndarray, problem: AnyProblem, device: torch.device, **kwargs: Any
) -> torch.Tensor:
    """`array` as a tensor of the problem's dtype on `device`."""
    return (
        torch.from_numpy(np.ascontiguousarray(array))
        .to(device=device, dtype=TORCH_DTYPES[problem.dtype])
        .requires_grad_(kwargs.get("requires_grad", False))
    )


def targets(problem: AnyProblem, device: torch.device) -> torch.Tensor:
    """T as torch wants it for the problem's loss (class labels stay integers)."""
    if problem.loss == "cross-entropy" and problem.T.ndim == 1:
        return torch.from_numpy(problem.T.astype(np.int64)).to(device)
    return tensor(problem.T, problem, device)


@contextmanager
def ieee_float32() -> Iterator[None]:
    """Float32 convolutions and matrix products as IEEE float32 while inside: torch lets GPUs
    compute float32 convolutions in TF32 (a 10-bit mantissa) by default, whose error a
    gradient check would rightly call a mistake."""
    cudnn_conv = getattr(torch.backends.cudnn, "conv", None)
    matmul = torch.backends.cuda.matmul
    if cudnn_conv is not None and hasattr(cudnn_conv, "fp32_precision"):
        saved = (cudnn_conv.fp32_precision, matmul.fp32_precision)
        cudnn_conv.fp32_precision = matmul.fp32_precision = "ieee"
        try:
            yield
        finally:
            cudnn_conv.fp32_precision, matmul.fp32_precision = saved
        return
    legacy = (torch.backends.cudnn.allow_tf32, matmul.allow_tf32)
    torch.backends.cudnn.allow_tf32 = matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, matmul.allow_tf32 = legacy


def to_numpy(t: torch.Tensor) -> np.ndarray:
    """A detached CPU copy as a NumPy array."""
    return t.detach().cpu().numpy().copy()
