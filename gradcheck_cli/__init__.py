"""gradcheck: cross-validate neural-network gradients across independent backends."""

from __future__ import annotations

from .api import check
from .errors import BackendError, GradcheckError, InputError
from .inputs import load_problem, make_problem
from .problem import Gradients, Problem
from .verdict import CheckOptions, Report, run_checks

__version__ = "0.1.0"

__all__ = [
    "BackendError",
    "CheckOptions",
    "GradcheckError",
    "Gradients",
    "InputError",
    "Problem",
    "Report",
    "__version__",
    "check",
    "load_problem",
    "make_problem",
    "run_checks",
]
