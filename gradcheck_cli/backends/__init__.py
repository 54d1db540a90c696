"""Registry of the built-in gradient backends (imported lazily, so torch loads only when used)."""

from __future__ import annotations

import importlib
from typing import Any

from ..errors import InputError, did_you_mean
from .base import Backend

# name -> (module, class, one-line description). Adding a backend: one module, one line here.
BUILTIN_BACKENDS: dict[str, tuple[str, str, str]] = {
    "numpy": ("numpy_backprop", "NumpyBackprop", "hand-written NumPy forward and backward pass"),
    "torch-functional": (
        "torch_functional",
        "TorchFunctional",
        "PyTorch autograd on plain tensors (functional forward)",
    ),
    "torch-sequential": (
        "torch_sequential",
        "TorchSequential",
        "PyTorch nn.Sequential of nn modules (Linear, Conv2d, pools, norms, activations)",
    ),
}
TORCH_BACKENDS = ("torch-functional", "torch-sequential")


def backend_names() -> list[str]:
    """Names of the built-in backends, in report order."""
    return list(BUILTIN_BACKENDS)


def create_backend(name: str, **options: Any) -> Backend:
    """Instantiate the built-in backend `name`; options (e.g. device) go to its constructor."""
    if name not in BUILTIN_BACKENDS:
        known = ", ".join(BUILTIN_BACKENDS)
        raise InputError(
            f"unknown backend {name!r}{did_you_mean(name, BUILTIN_BACKENDS)}; choose from: {known}"
        )
    module_name, class_name, _ = BUILTIN_BACKENDS[name]
    try:
        module = importlib.import_module(f"{__name__}.{module_name}")
    except ModuleNotFoundError as exc:
        if exc.name != "torch":
            raise
        # A missing dependency is the installation's problem, not a bug of ours: one line.
        raise InputError(
            f"backend {name} needs PyTorch, which is not installed here: install it "
            "(pip install torch) or run only the numpy backend"
        ) from None
    backend: Backend = getattr(module, class_name)(**options)
    return backend


__all__ = ["BUILTIN_BACKENDS", "Backend", "backend_names", "create_backend"]
