"""A user's values turned into plain arrays, and a user's exceptions into one line of text.

Runs in the child process (what the user's code returned is only ever touched there) and, for a
live function of `check(f)`, in gradcheck's own. Standard library and NumPy only (the child
loads this file without the package).
"""

from __future__ import annotations

import inspect
import traceback as tb
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

_MAX_MESSAGE_TEXT = 300  # a user's exception text is clipped so the error stays one readable line
NUMERIC_KINDS = "biuf"


class Unusable(Exception):
    """What the user's code returned cannot be used; the message says precisely why."""


def one_line(text: object) -> str:
    """`text` on one line (whitespace collapsed), clipped to a readable length."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= _MAX_MESSAGE_TEXT else flat[: _MAX_MESSAGE_TEXT - 3] + "..."


def exception_line(exc: BaseException) -> str:
    """'ValueError: first line of the message'."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {one_line(text[0])}" if text else type(exc).__name__


def _same_file(frame_file: str, target: str) -> bool:
    try:
        return str(Path(frame_file).resolve()) == target
    except (OSError, ValueError):
        return False


def user_frames_only(exc: BaseException, user_file: Path) -> str:
    """The traceback of `exc` from the first frame in the user's file on (tool frames dropped)."""
    frames = tb.extract_tb(exc.__traceback__)
    target = str(user_file.resolve())
    start = next((i for i, f in enumerate(frames) if _same_file(f.filename, target)), None)
    kept = tb.StackSummary.from_list(frames[start:] if start is not None else [])
    lines = ["Traceback (most recent call last):\n", *kept.format()]
    lines.extend(tb.format_exception_only(type(exc), exc))
    return "".join(lines)


def describe_at(exc: BaseException, path: Path) -> str:
    """'ValueError: message (utils.py, line 7)', pointing at the user's own line."""
    target = str(path.resolve())
    line = None
    for frame in tb.extract_tb(exc.__traceback__):
        if _same_file(frame.filename, target):
            line = frame.lineno
    where = f" ({path.name}, line {line})" if line is not None else ""
    return f"{type(exc).__name__}: {one_line(exc)}{where}"


# --- a user function's signature and result


def signature_of(fn: Callable[..., Any]) -> list[list[Any]] | None:
    """The positional parameters of `fn` as [name, has_default] pairs; None if unreadable."""
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return None
    return [
        [p.name, p.default is not p.empty, p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        for p in signature.parameters.values()
    ]


def as_array(value: Any, what: str) -> np.ndarray:
    """A user's returned value as a numeric array, or Unusable naming it."""
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # a torch tensor: take its values
        value = value.detach().cpu().numpy()
    try:
        array = np.asarray(value)
    except Exception as exc:  # e.g. a ragged nested list
        raise Unusable(f"{what} is not an array of numbers ({exception_line(exc)})") from None
    if array.dtype.kind not in NUMERIC_KINDS:
        got = type(value).__name__ if array.dtype.kind == "O" else f"dtype {array.dtype}"
        raise Unusable(f"{what} is not numeric (got {got})")
    return array


def array_list(value: Any, label: str, expected: int) -> tuple[np.ndarray, ...]:
    """DW or DB as a tuple of arrays; lists and tuples of arrays are accepted."""
    if isinstance(value, np.ndarray) or not isinstance(value, Sequence):
        raise Unusable(
            f"{label} is a {type(value).__name__}; expected a list of {expected} arrays "
            f"({label}[i] for layer i)"
        )
    if len(value) != expected:
        raise Unusable(f"returned {len(value)} arrays for {label}; expected {expected}")
    return tuple(as_array(v, f"{label}[{i}]") for i, v in enumerate(value))


def _is_array_list(value: Any) -> bool:
    return isinstance(value, (list, tuple)) and not isinstance(value, np.ndarray)


NAMED_RETURNS = "a dict of gradients keyed by parameter name, or (loss, dict)"


def returns_of(form: str) -> str:
    """What a function of this call form returns, as the messages say it."""
    if form == "params":
        return NAMED_RETURNS
    return "DW or (DW, DB)" if form == "exercise" else "(DW, DB) or (loss, DW, DB)"


def named_gradients_of(result: Any) -> tuple[float | None, dict[str, np.ndarray]]:
    """(loss, gradients by name) from what a params-form function f(X, T, params) returned."""
    loss = None
    if isinstance(result, (tuple, list)):
        if len(result) != 2 or not isinstance(result[1], Mapping):
            raise Unusable(f"returned a {type(result).__name__}; expected {NAMED_RETURNS}")
        loss, result = result
    if not isinstance(result, Mapping):
        raise Unusable(f"returned a {type(result).__name__}; expected {NAMED_RETURNS}")
    named = {str(k): as_array(v, f"the gradient of {k}") for k, v in result.items()}
    return (loss_value(loss) if loss is not None else None), named


def split_result(result: Any, form: str, depth: int) -> tuple[Any, Any, Any]:
    """(loss, DW, DB) from what the function returned; loss and DB may be None."""
    if not isinstance(result, (list, tuple)):
        raise Unusable(f"returned a {type(result).__name__} value; expected {returns_of(form)}")
    if form == "exercise":
        # (DW, DB) is a pair of lists; DW alone is a list of arrays (even when depth is 2).
        if len(result) == 2 and all(_is_array_list(r) for r in result):
            return None, result[0], result[1]
        if len(result) != depth and any(_is_array_list(r) for r in result):
            # e.g. (DW, DB, loss): not DW alone, so "returned 3 arrays for DW" would mislead.
            raise Unusable(f"returned {len(result)} values; expected {returns_of(form)}")
        return None, result, None
    if len(result) == 2:
        return None, result[0], result[1]
    if len(result) == 3:
        return result[0], result[1], result[2]
    raise Unusable(f"returned {len(result)} values; expected {returns_of(form)}")


def loss_value(value: Any) -> float:
    """The returned loss as a finite float, or Unusable."""
    array = as_array(value, "the returned loss")
    if array.size != 1:
        raise Unusable(f"the returned loss has shape {array.shape}; expected a scalar")
    loss = float(array.reshape(-1)[0])
    if not np.isfinite(loss):
        raise Unusable(f"the returned loss is {loss}; expected finite")
    return loss


def gradients_of(
    result: Any, form: str, depth: int
) -> tuple[float | None, tuple[np.ndarray, ...], tuple[np.ndarray, ...] | None]:
    """(loss, DW, DB) as plain values from a user function's result, or Unusable."""
    loss, dw, db = split_result(result, form, depth)
    DW = array_list(dw, "DW", depth)
    DB = array_list(db, "DB", depth) if db is not None else None
    return (loss_value(loss) if loss is not None else None), DW, DB


# --- the data of a --utils file


def plain_array(name: str, value: object, where: str) -> np.ndarray:
    """`value` as a numeric ndarray; torch tensors (even with requires_grad) widen exactly to
    float64; Unusable with make_problem's wording otherwise."""
    if hasattr(value, "detach") and hasattr(value, "is_floating_point"):  # a torch.Tensor
        tensor: Any = value.detach().cpu()
        value = (tensor.double() if tensor.is_floating_point() else tensor).numpy()
    try:
        array = np.asarray(value)
    except (ValueError, TypeError, RuntimeError) as exc:  # ragged nested lists and the like
        detail = "its rows have different lengths" if "inhomogeneous" in str(exc) else exc
        raise Unusable(
            f"{where}: {name} is not a rectangular numeric array ({one_line(detail)})"
        ) from None
    if array.dtype.kind not in NUMERIC_KINDS:
        raise Unusable(f"{where}: {name} has dtype {array.dtype}; expected a numeric array")
    return array
