"""`gradcheck init`: a starter file for a hand-written backward pass, in the exercise's form."""

from __future__ import annotations

import shlex
from pathlib import Path

from ..errors import InputError

DEFAULT_STARTER_PATH = "mybackprop.py"
STARTER_FUNCTION = "back_propagation"

STARTER_TEMPLATE = '''"""My backward pass for the exercise network. Check it with:

    gradcheck run --user {path}:{function}
"""

import numpy as np


def {function}(W, B, A, Y, T):
    """Gradients of the loss E = ((Y - T) ** 2).mean() with respect to every W[i] and B[i].

    The network has k layers; layer i maps A[i] to A[i+1] = relu(A[i] @ W[i] + B[i]),
    and the last layer has no activation: Y = A[k-1] @ W[k-1] + B[k-1].

    Arguments (NumPy arrays; they are copies, so changing them cannot break the check):
        W: list of k weight matrices, W[i] of shape (in_i, out_i)
        B: list of k bias vectors, B[i] of shape (out_i,)
        A: list [X, A1, ..., A_{{k-1}}] of the forward pass: X of shape (N, in_0) is the
           input, A[i] of shape (N, in_i) the input of layer i (after the activation)
        Y: the network's output, shape (N, out_{{k-1}})
        T: the targets, same shape as Y

    Returns:
        (DW, DB): lists with DW[i] of the shape of W[i] and DB[i] of the shape of B[i]
        (returning DW alone checks only the weights).
    """
    raise NotImplementedError("write the backward pass here")
'''


def starter_text(path: str = DEFAULT_STARTER_PATH, function: str = STARTER_FUNCTION) -> str:
    """The starter file's text, with the command that checks it."""
    return STARTER_TEMPLATE.format(path=path, function=function)


def write_starter(path: Path, force: bool = False) -> tuple[Path, str]:
    """Write the starter file (InputError if it exists and not `force`): its path, the command."""
    if path.is_dir():
        path = path / DEFAULT_STARTER_PATH
    if path.exists() and not force:
        raise InputError(f"{path}: already exists (use --force to overwrite it)")
    if not path.parent.is_dir():
        raise InputError(f"{path}: directory {path.parent} does not exist")
    if path.suffix != ".py":
        raise InputError(f"{path}: the starter file must end in .py")
    shown = shlex.quote(str(path))  # the printed command must survive copy and paste
    try:
        path.write_text(starter_text(shown), encoding="utf-8")
    except OSError as exc:
        raise InputError(f"{path}: cannot write: {exc.strerror or exc}") from None
    return path, f"gradcheck run --user {shown}:{STARTER_FUNCTION}"
