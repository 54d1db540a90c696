"""The network's mathematics in NumPy, written once: activation and loss tables, the MLP.

Every formula is written out by hand (no autograd), so the torch backends are an
independent check of it. The NumPy backend, finite differences, the rounding-noise
measurement, diagnosis and inspection all read these tables.
"""

from __future__ import annotations

from .activations import ACTIVATIONS, DEFAULT_NEGATIVE_SLOPE, Activation, activation
from .losses import LOSSES, Loss, loss
from .mlp import (
    backward,
    forward,
    gradient_rounding,
    gradients,
    loss_rounding,
    network_loss,
    output_magnitude,
)

__all__ = [
    "ACTIVATIONS",
    "DEFAULT_NEGATIVE_SLOPE",
    "LOSSES",
    "Activation",
    "Loss",
    "activation",
    "backward",
    "forward",
    "gradient_rounding",
    "gradients",
    "loss",
    "loss_rounding",
    "network_loss",
    "output_magnitude",
]
