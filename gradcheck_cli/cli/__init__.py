"""The command line: the typer app (`gradcheck`), its config file support, `gradcheck init`.

The only package that imports typer. Library errors become flags and exit codes here.
"""

from __future__ import annotations

from .commands import app

__all__ = ["app"]
