"""Inputs: file readers, loading and validation into a Problem, and inspection of it."""

from __future__ import annotations

from .arrays import bundled_problem_path
from .layered import load_layered_problem, make_layered_problem
from .loading import BUNDLED_NAME, InputWarning, load_problem, make_problem

__all__ = [
    "BUNDLED_NAME",
    "InputWarning",
    "bundled_problem_path",
    "load_layered_problem",
    "load_problem",
    "make_layered_problem",
    "make_problem",
]
