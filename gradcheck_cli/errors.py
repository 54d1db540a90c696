"""The one error hierarchy of gradcheck; the CLI catches GradcheckError once.

Messages speak the library's language: they name the arguments of `check()` and
`load_problem()` (`rtol`, `fd_step`, `utils`), listed in `arguments`, so that the CLI
can say the same with its flags (`--rtol`) without the library knowing about them.
"""

from __future__ import annotations

from collections.abc import Sequence


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
