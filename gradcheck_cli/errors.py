"""The one error hierarchy of gradcheck; the CLI catches GradcheckError once.

Messages speak the library's language: they name the arguments of `check()` and
`load_problem()` (`rtol`, `fd_step`, `utils`), listed in `arguments`, so that the CLI
can say the same with its flags (`--rtol`) without the library knowing about them.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """' (did you mean X?)' for the candidate closest to a misspelt `word`, else ''.

    Case is ignored in the comparison (w1 finds W1); the suggestion keeps its own case.
    """
    by_lower = {c.lower(): c for c in candidates}
    matches = difflib.get_close_matches(word.lower(), list(by_lower), n=1, cutoff=0.6)
    return f" (did you mean {by_lower[matches[0]]}?)" if matches else ""


class GradcheckError(Exception):
    """Base class of every error gradcheck raises on purpose."""

    exit_code = 2

    def __init__(self, message: str, *, arguments: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.arguments = tuple(arguments)


class InputError(GradcheckError):
    """Bad usage or bad input: a missing file, a wrong shape, an unknown name (exit 2)."""

    exit_code = 2


class BackendError(GradcheckError):
    """A backend could not produce gradients; reported as that backend's failure."""

    exit_code = 1

    def __init__(self, message: str, traceback: str | None = None) -> None:
        super().__init__(message)
        self.traceback = traceback
