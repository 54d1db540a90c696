"""Fixtures and collection rules for the whole suite (shared helpers are plain functions in
tests/helpers.py).

The suite runs without PyTorch too (the torch-free part, on every supported Python): tests
marked `torch` are skipped then, and modules that compare against torch throughout skip
themselves with `pytest.importorskip("torch")`.
"""

from __future__ import annotations

import importlib.util
import os

import pytest
from hypothesis import settings

from gradcheck_cli.inputs.loading import load_problem
from gradcheck_cli.problem import Problem

HAS_TORCH = importlib.util.find_spec("torch") is not None
# The same examples on every run, so that CI cannot flake; GRADCHECK_HYPOTHESIS=explore draws
# new ones (run it by hand to look for counterexamples).
settings.register_profile("repeatable", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("GRADCHECK_HYPOTHESIS", "repeatable"))
# `pytester`: tests of assert_gradients run a user's test file in a pytest of its own.
pytest_plugins = ["pytester"]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip the tests marked `torch` where PyTorch is not installed."""
    if HAS_TORCH:
        return
    skip = pytest.mark.skip(reason="needs PyTorch, which is not installed")
    for item in items:
        if item.get_closest_marker("torch") is not None:
            item.add_marker(skip)


@pytest.fixture
def exercise_problem() -> Problem:
    """The bundled 4-6-6-6-1 problem."""
    return load_problem()
