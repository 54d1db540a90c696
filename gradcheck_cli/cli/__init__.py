"""The command line: the typer app (`gradcheck`), one module per command, config, starter.

The only package that imports typer. Library errors become flags and exit codes here.
"""

from __future__ import annotations

from . import backends_command, init_command, inspect_command, run_command
from .application import app

# The commands, in the order `gradcheck --help` lists them, each with a line that fits there.
app.command("run", short_help="Check every backend's gradients; exit 1 if any is wrong.")(
    run_command.run
)
app.command("backends", short_help="List the available gradient backends.")(
    backends_command.list_backends
)
app.command("inspect", short_help="Show the loaded problem without computing gradients.")(
    inspect_command.inspect_command
)
app.command("init", short_help="Write a starter file for your own backward pass.")(
    init_command.init_command
)

__all__ = ["app"]
