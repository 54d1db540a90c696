"""Warnings about the problem itself, said in the header of every report format."""

from __future__ import annotations

from ..problem import AnyProblem, Problem


def problem_warnings(problem: AnyProblem) -> list[str]:
    """What a reader must know before trusting the verdict: e.g. that nothing of theirs was
    checked, only the bundled exercise network (a CI job that gave no input passes on it)."""
    if not isinstance(problem, Problem) or not problem.bundled:
        return []
    return ["the bundled exercise problem was checked, not a network of yours: no data given"]
