"""`assert_gradients()`: gradcheck in your own test suite (pytest, unittest, plain asserts).

    from gradcheck_cli.testing import assert_gradients

    def test_my_backprop():
        assert_gradients(back_propagation, data="tests/problem.npz")

A wrong gradient fails the test with the findings as the message (which parameter,
its worst entry, the hint), instead of a bare `assert report.ok`.
"""

from __future__ import annotations

from typing import Any

from .api import UserFunction, check
from .verdict import Report

__all__ = ["assert_gradients", "failure_message"]


def assert_gradients(*functions: UserFunction, **options: Any) -> Report:
    """Check `functions` as `gradcheck_cli.check()` does (same keyword options); raise
    AssertionError with the findings unless every check passed. Returns the Report."""
    __tracebackhide__ = True  # pytest shows the caller's line, not this one
    report = check(*functions, **options)
    if not report.ok:
        raise AssertionError(failure_message(report))
    return report


def failure_message(report: Report) -> str:
    """The verdict, then the findings (parameter, worst entry, hint), as plain text."""
    from .outputs.text import findings, header_lines, kink_lines, summary_line

    lines = [summary_line(report), *header_lines(report), *findings(report), *kink_lines(report)]
    return "\n".join(line.plain for line in lines)
