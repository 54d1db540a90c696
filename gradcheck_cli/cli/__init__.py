"""The command line: the typer app (`gradcheck`), one module per command, config, starter.

The only package that imports typer. Library errors become flags and exit codes here.
"""

from __future__ import annotations

from . import backends_command, init_command, inspect_command, run_command
from .application import app

# The commands, in the order `gradcheck --help` lists them.
app.command("run")(run_command.run)
app.command("backends")(backends_command.list_backends)
app.command("inspect")(inspect_command.inspect_command)
app.command("init")(init_command.init_command)

__all__ = ["app"]
