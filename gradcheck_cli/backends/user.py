"""A user's own gradient function, loaded from a .py file by path and checked like any backend.

Two call forms, told apart by the function's parameters:

- the exercise form ``f(W, B, A, Y, T)``: ``A = [X, A1, ..., Ak]`` are the input and hidden
  activations of the forward pass, ``Y`` the output; returns ``DW`` or ``(DW, DB)``;
- the general form ``f(X, T, W, B)``: returns ``(DW, DB)`` or ``(loss, DW, DB)``;
- the params form ``f(X, T, params)`` (the only one for layered problems): ``params`` maps
  every parameter's name (``0.weight``, or ``W0``, ``B0`` for an MLP) to its array; returns
  a dict of gradients keyed the same way, or ``(loss, dict)``.

The function gets fresh copies of every array in the problem's dtype, so a function that
mutates its inputs cannot corrupt the other backends.
"""

from __future__ import annotations

import importlib.util
import inspect
import sys
import traceback as tb
import types
from collections.abc import Callable, Sequence
from contextlib import redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .. import nn
from ..errors import BackendError, InputError
from ..problem import AnyProblem, Gradients, LayeredProblem, Problem
from .base import Backend
from .user_params import params_argument, split_named

# How messages name a FILE:FUNC given by the user (the CLI says --user).
USER_ARGUMENT = "user function"
EXERCISE_FORM = "exercise"
GENERAL_FORM = "general"
PARAMS_FORM = "params"
# Parameter names (lower-cased) that fix the call form without relying on their count.
_FORM_NAMES = {
    ("w", "b", "a", "y", "t"): EXERCISE_FORM,
    ("x", "t", "w", "b"): GENERAL_FORM,
}
_FORM_BY_COUNT = {5: EXERCISE_FORM, 4: GENERAL_FORM}
# f(X, T, params): three arguments, the last named one of these (lower-cased).
_PARAMS_NAMES = ("params", "parameters")
_EXPECTED_FORMS = "f(W, B, A, Y, T) or f(X, T, W, B) or f(X, T, params)"


@dataclass(frozen=True)
class UserSpec:
    """A parsed FILE:FUNC, e.g. mybackprop.py:back_propagation."""

    path: Path
    function: str

    @property
    def label(self) -> str:
        """The row name in reports: the file's name and the function, e.g. mine.py:f."""
        return f"{self.path.name}:{self.function}"


def parse_user_spec(spec: str) -> UserSpec:
    """Split FILE:FUNC at its last colon (a Windows drive letter keeps its own)."""
    path, sep, function = spec.rpartition(":")
    if not sep or not path or not function:
        raise InputError(
            f"user function {spec!r}: expected FILE:FUNC, e.g. mybackprop.py:back_propagation",
            arguments=(USER_ARGUMENT,),
        )
    if not function.isidentifier():
        raise InputError(
            f"user function {spec!r}: {function!r} is not a Python function name",
            arguments=(USER_ARGUMENT,),
        )
    return UserSpec(Path(path), function)


def _user_frames_only(exc: BaseException, user_file: Path) -> str:
    """The traceback of `exc` from the first frame in the user's file on (tool frames dropped)."""
    frames = tb.extract_tb(exc.__traceback__)
    target = str(user_file.resolve())
    start = next(
        (i for i, f in enumerate(frames) if str(Path(f.filename).resolve()) == target), None
    )
    kept = tb.StackSummary.from_list(frames[start:] if start is not None else [])
    lines = ["Traceback (most recent call last):\n", *kept.format()]
    lines.extend(tb.format_exception_only(type(exc), exc))
    return "".join(lines)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _load_module(path: Path) -> tuple[types.ModuleType | None, BaseException | None]:
    """Import the file; an exception while importing is returned, to be reported as a finding."""
    name = f"_gradcheck_user_{abs(hash(str(path.resolve())))}_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise InputError(
            f"user function {path}: cannot be imported as a Python file",
            arguments=(USER_ARGUMENT,),
        )
    module = importlib.util.module_from_spec(spec)
    # The user's file may import its neighbours (e.g. the course's utils.py), as when run there.
    folder = str(path.resolve().parent)
    sys.path.insert(0, folder)
    sys.modules[name] = module
    try:
        with redirect_stdout(sys.stderr):  # stdout belongs to the report (--json must parse)
            spec.loader.exec_module(module)
    except (Exception, SystemExit) as exc:  # the user's code raising is a finding, not a crash
        sys.modules.pop(name, None)
        return None, exc
    finally:
        if folder in sys.path:
            sys.path.remove(folder)
    return module, None


def call_form(fn: Callable[..., Any], label: str) -> str:
    """EXERCISE_FORM or GENERAL_FORM from the function's parameters; InputError if neither."""
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        raise InputError(
            f"{label}: cannot read its signature; expected {_EXPECTED_FORMS}"
        ) from None
    positional = [
        p
        for p in signature.parameters.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    required = [p for p in positional if p.default is p.empty]
    names = tuple(p.name.lower() for p in positional)
    if names in _FORM_NAMES:
        return _FORM_NAMES[names]
    if len(names) == 3 and names[2] in _PARAMS_NAMES:
        return PARAMS_FORM
    # Otherwise by count: the exercise form has five arguments, the general form four.
    for count in (len(required), len(positional)):
        if count in _FORM_BY_COUNT:
            return _FORM_BY_COUNT[count]
    shown = ", ".join(p.name for p in signature.parameters.values())
    raise InputError(f"{label} takes ({shown}); expected {_EXPECTED_FORMS}")


def _as_array(value: Any, what: str) -> np.ndarray:
    """A user's returned value as a numeric array, or a BackendError naming it."""
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # a torch tensor: take its values
        value = value.detach().cpu().numpy()
    try:
        array = np.asarray(value)
    except Exception as exc:  # e.g. a ragged nested list
        raise BackendError(f"{what} is not an array of numbers ({_one_line(exc)})") from None
    if array.dtype.kind not in "biuf":
        got = type(value).__name__ if array.dtype.kind == "O" else f"dtype {array.dtype}"
        raise BackendError(f"{what} is not numeric (got {got})")
    return array


def _array_list(value: Any, label: str, expected: int) -> tuple[np.ndarray, ...]:
    """DW or DB as a tuple of arrays; lists and tuples of arrays are accepted."""
    if isinstance(value, np.ndarray) or not isinstance(value, Sequence):
        raise BackendError(
            f"{label} is a {type(value).__name__}; expected a list of {expected} arrays "
            f"({label}[i] for layer i)"
        )
    if len(value) != expected:
        raise BackendError(f"returned {len(value)} arrays for {label}; expected {expected}")
    return tuple(_as_array(v, f"{label}[{i}]") for i, v in enumerate(value))


def _is_array_list(value: Any) -> bool:
    return isinstance(value, (list, tuple)) and not isinstance(value, np.ndarray)


def split_result(result: Any, form: str, depth: int) -> tuple[Any, Any, Any]:
    """(loss, DW, DB) from what the function returned; loss and DB may be None."""
    if not isinstance(result, (list, tuple)):
        raise BackendError(f"returned a {type(result).__name__} value; expected {_returns(form)}")
    if form == EXERCISE_FORM:
        # (DW, DB) is a pair of lists; DW alone is a list of arrays (even when depth is 2).
        if len(result) == 2 and all(_is_array_list(r) for r in result):
            return None, result[0], result[1]
        if len(result) != depth and any(_is_array_list(r) for r in result):
            # e.g. (DW, DB, loss): not DW alone, so "returned 3 arrays for DW" would mislead.
            raise BackendError(f"returned {len(result)} values; expected {_returns(form)}")
        return None, result, None
    if len(result) == 2:
        return None, result[0], result[1]
    if len(result) == 3:
        return result[0], result[1], result[2]
    raise BackendError(f"returned {len(result)} values; expected {_returns(form)}")


def _returns(form: str) -> str:
    return "DW or (DW, DB)" if form == EXERCISE_FORM else "(DW, DB) or (loss, DW, DB)"


def _loss_value(value: Any) -> float:
    array = _as_array(value, "the returned loss")
    if array.size != 1:
        raise BackendError(f"the returned loss has shape {array.shape}; expected a scalar")
    loss = float(array.reshape(-1)[0])
    if not np.isfinite(loss):
        raise BackendError(f"the returned loss is {loss}; expected finite")
    return loss


class UserBackend(Backend):
    """A function from the user's file, called with copies of the problem's arrays."""

    kind = "user"

    def __init__(self, spec: str | UserSpec, **_options: Any) -> None:
        self.spec = parse_user_spec(spec) if isinstance(spec, str) else spec
        path = self.spec.path
        if not path.exists():
            raise InputError(f"user function {path}: no such file", arguments=(USER_ARGUMENT,))
        if not path.is_file():
            raise InputError(f"user function {path}: not a file", arguments=(USER_ARGUMENT,))
        self.name = self.spec.label
        self.description = f"your function {self.spec.function} in {path}"
        module, self.import_error = _load_module(path)
        self.form = EXERCISE_FORM
        self.function: Callable[..., Any] | None = None
        if module is not None:
            fn = getattr(module, self.spec.function, None)
            if fn is None:
                raise InputError(
                    f"user function {path}: no function {self.spec.function!r} in that file",
                    arguments=(USER_ARGUMENT,),
                )
            if not callable(fn):
                raise InputError(
                    f"user function {self.name}: {self.spec.function!r} is not a function",
                    arguments=(USER_ARGUMENT,),
                )
            self.function = fn
            self.form = call_form(fn, self.name)

    @classmethod
    def from_function(cls, fn: Callable[..., Any], name: str | None = None) -> UserBackend:
        """Wrap a function object directly (the Python API), without a file."""
        backend = cls.__new__(cls)
        label = name or str(getattr(fn, "__name__", "user function"))
        code = getattr(fn, "__code__", None)
        path = Path(code.co_filename) if code is not None else Path("<function>")
        backend.spec = UserSpec(path, getattr(fn, "__name__", "f"))
        backend.name = label
        backend.description = f"your function {label}"
        backend.import_error = None
        backend.function = fn
        backend.form = call_form(fn, label)
        return backend

    def arguments(self, problem: AnyProblem) -> tuple[Any, ...]:
        """Fresh copies of the call's arguments in the problem's dtype."""
        dtype = np.dtype(problem.dtype)
        X = problem.X.astype(dtype)  # astype copies
        T = problem.T.copy() if problem.T.dtype.kind in "iu" else problem.T.astype(dtype)
        if self.form == PARAMS_FORM:
            return X, T, params_argument(problem)
        assert isinstance(problem, Problem)  # gradients() refused the others
        W = [w.astype(dtype) for w in problem.weights]
        B = [b.astype(dtype) for b in problem.biases]
        if self.form == GENERAL_FORM:
            return X, T, W, B
        Zs, As = nn.forward(X, W, B, problem.activation, problem.negative_slope)
        # Computed from copies, so the forward pass cannot alias what the user receives.
        return W, B, [a.copy() for a in As], Zs[-1].copy(), T

    def gradients(self, problem: AnyProblem) -> Gradients:
        """Call the user's function; its result as Gradients, or BackendError if unusable."""
        if self.import_error is not None:
            exc = self.import_error
            raise BackendError(
                f"importing {self.spec.path.name} raised {_one_line(exc)}",
                _user_frames_only(exc, self.spec.path),
            )
        assert self.function is not None
        if isinstance(problem, LayeredProblem) and self.form != PARAMS_FORM:
            raise InputError(
                f"{self.name}: a layered problem calls f(X, T, params) -> dict of gradients "
                f"keyed by parameter name ({', '.join(problem.parameter_names)}); this "
                f"function has the {self.form} form of an MLP",
                arguments=(USER_ARGUMENT,),
            )
        try:
            with redirect_stdout(sys.stderr):  # stdout belongs to the report (--json must parse)
                result = self.function(*self.arguments(problem))
        except (Exception, SystemExit) as exc:  # the user's code raising is its failure
            raise BackendError(_one_line(exc), _user_frames_only(exc, self.spec.path)) from None
        if self.form == PARAMS_FORM:
            loss, named = split_named(result)
            return Gradients(loss=_loss_value(loss) if loss is not None else None, named=named)
        assert isinstance(problem, Problem)
        loss, dw, db = split_result(result, self.form, problem.depth)
        DW = _array_list(dw, "DW", problem.depth)
        DB = _array_list(db, "DB", problem.depth) if db is not None else None
        return Gradients(
            loss=_loss_value(loss) if loss is not None else None,
            dW=DW,
            dB=DB,
        )
