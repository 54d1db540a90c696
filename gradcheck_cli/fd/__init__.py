"""Finite differences in float64: the batched engine, line estimates with their errors,
and the full, sampled and directional modes built on them."""

from __future__ import annotations

from .lines import EPS64, LineEstimates, Progress, estimate_lines, rounding_error
from .numerical import (
    DEFAULT_DIRECTIONS,
    DEFAULT_FD_STEP,
    DEFAULT_SAMPLES,
    FD_MODES,
    FD_ORDERS,
    FULL_MODE_MAX_PARAMETERS,
    FiniteDifferences,
    central_difference,
    default_step,
    finite_differences,
    one_at_a_time,
    resolve_mode,
    stratified_sample,
)

__all__ = [
    "DEFAULT_DIRECTIONS",
    "DEFAULT_FD_STEP",
    "DEFAULT_SAMPLES",
    "EPS64",
    "FD_MODES",
    "FD_ORDERS",
    "FULL_MODE_MAX_PARAMETERS",
    "FiniteDifferences",
    "LineEstimates",
    "Progress",
    "central_difference",
    "default_step",
    "estimate_lines",
    "finite_differences",
    "one_at_a_time",
    "resolve_mode",
    "rounding_error",
    "stratified_sample",
]
