"""Fixtures for the whole suite (shared helpers are plain functions in tests/helpers.py)."""

from __future__ import annotations

import pytest

from gradcheck_cli.inputs.loading import load_problem
from gradcheck_cli.problem import Problem


@pytest.fixture
def exercise_problem() -> Problem:
    """The bundled 4-6-6-6-1 problem."""
    return load_problem()
