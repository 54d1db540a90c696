"""`gradcheck backends`: the available gradient backends."""

from __future__ import annotations

from ..backends import BUILTIN_BACKENDS
from .application import DebugOption, stdout


def list_backends(debug: DebugOption = False) -> None:
    """List the available gradient backends."""
    for name, (_, _, description) in BUILTIN_BACKENDS.items():
        stdout.print(f"[bold]{name:<18}[/] {description}", highlight=False)
