"""The verdict: tolerances, the references, judging each backend, and the Report.

`run_checks(problem, backends, options)` runs it all; the modules below it each do one job:
policy (options, tolerances), reference (finite differences or the built-ins' consensus),
validation (whether the consensus earned its place), judge (entry by entry), resolution
(what a check cannot see), diagnose and mistakes (why a gradient is wrong), precision
(rounding noise), result (frozen results, JSON form).
"""

from __future__ import annotations

from .judge import relative_errors
from .policy import CONSENSUS_ATOL, DEFAULT_TOLERANCES, FD_ERROR_FACTOR, REFERENCES, CheckOptions
from .result import BackendResult, FiniteDifferenceSummary, ParamResult, Report, Validation
from .run import run_checks

__all__ = [
    "CONSENSUS_ATOL",
    "DEFAULT_TOLERANCES",
    "FD_ERROR_FACTOR",
    "REFERENCES",
    "BackendResult",
    "CheckOptions",
    "FiniteDifferenceSummary",
    "ParamResult",
    "Report",
    "Validation",
    "relative_errors",
    "run_checks",
]
