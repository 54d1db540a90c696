"""The verdict: tolerances, the reference, judging each backend, and the Report.

`run_checks(problem, backends, options)` runs it all; the modules below it each do one job:
policy (tolerances), reference (what backends are judged against), judge (entry by entry),
resolution (what a check cannot see), diagnose (why a gradient is wrong), precision
(rounding noise of low-precision backends), result (frozen results, JSON form).
"""

from __future__ import annotations

from .judge import relative_errors
from .policy import DEFAULT_TOLERANCES, FD_ERROR_FACTOR, CheckOptions
from .result import BackendResult, FiniteDifferenceSummary, ParamResult, Report
from .run import run_checks

__all__ = [
    "DEFAULT_TOLERANCES",
    "FD_ERROR_FACTOR",
    "BackendResult",
    "CheckOptions",
    "FiniteDifferenceSummary",
    "ParamResult",
    "Report",
    "relative_errors",
    "run_checks",
]
