"""`gradcheck init`: a starter file for a hand-written backward pass."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .application import DebugOption, exit_codes, stdout


def init_command(
    path: Annotated[
        Path,
        typer.Argument(help="Where to write the starter file (a folder: mybackprop.py in it)."),
    ] = Path("mybackprop.py"),
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
    debug: DebugOption = False,
) -> None:
    """Write a starter file for your own backward pass and print the command that checks it."""
    from .starter import write_starter

    with exit_codes():
        written, command = write_starter(path, force)
    stdout.print(f"wrote {written}; fill in back_propagation, then check it with:", highlight=False)
    stdout.print(f"  {command}", highlight=False, soft_wrap=True)
