"""The one error hierarchy of gradcheck; the CLI catches GradcheckError once."""

from __future__ import annotations


class GradcheckError(Exception):
    """Base class of every error gradcheck raises on purpose."""

    exit_code = 2


class InputError(GradcheckError):
    """Bad usage or bad input: a missing file, a wrong shape, an unknown name (exit 2)."""

    exit_code = 2


class BackendError(GradcheckError):
    """A backend could not produce gradients; reported as that backend's failure."""

    exit_code = 1

    def __init__(self, message: str, traceback: str | None = None) -> None:
        super().__init__(message)
        self.traceback = traceback
