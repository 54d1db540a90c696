"""Models of the classic mistakes in the backprop of a layered network (diagnose.py fits them)."""

from __future__ import annotations

from ..problem import Gradients, LayeredProblem


def layered_variants(problem: LayeredProblem) -> dict[str, Gradients]:
    """Gradients a backprop with one classic layer mistake would return, keyed by the hint."""
    return {}
