"""A user's own gradient function, loaded from a .py file by path and checked like any backend.

Two call forms, told apart by the function's parameters:

- the exercise form ``f(W, B, A, Y, T)``: ``A = [X, A1, ..., Ak]`` are the input and hidden
  activations of the forward pass, ``Y`` the output; returns ``DW`` or ``(DW, DB)``;
- the general form ``f(X, T, W, B)``: returns ``(DW, DB)`` or ``(loss, DW, DB)``;
- the params form ``f(X, T, params)`` (the only one for layered problems): ``params`` maps
  every parameter's name (``0.weight``, or ``W0``, ``B0`` for an MLP) to its array; returns
  a dict of gradients keyed the same way, or ``(loss, dict)``.

A function named by FILE:FUNC runs in a child process (`gradcheck_cli.safety`): whatever it
does there (exit, crash, hang past the timeout, change torch's global state, print) is its own
failure and never reaches gradcheck's process or stdout. It gets the problem's arrays in the
problem's dtype, as copies, so mutating them cannot corrupt the other backends.

A live function object (`check(f)` from Python) runs in the caller's own process: it may be a
closure or a notebook cell's function that another process cannot import. Give "FILE:FUNC"
to isolate it.
"""

from __future__ import annotations

import ast
import os
import stat
import sys
from collections.abc import Callable
from contextlib import redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .. import nn
from ..errors import BackendError, InputError, did_you_mean
from ..problem import AnyProblem, Gradients, LayeredProblem, Problem
from ..safety.budget import DEFAULT_MAX_BYTES, size_text
from ..safety.process import DEFAULT_TIMEOUT, ChildFailure, ChildProcess, check_timeout
from ..safety.values import (
    Unusable,
    exception_line,
    gradients_of,
    named_gradients_of,
    signature_of,
    user_frames_only,
)
from .base import Backend

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


def _form_of(parameters: list[list[Any]] | None, label: str) -> str:
    """EXERCISE_FORM, GENERAL_FORM or PARAMS_FORM from [name, has_default, positional]
    triples."""
    if parameters is None:
        raise InputError(f"{label}: cannot read its signature; expected {_EXPECTED_FORMS}")
    positional = [(str(name), bool(default)) for name, default, pos in parameters if pos]
    names = tuple(name.lower() for name, _ in positional)
    if names in _FORM_NAMES:
        return _FORM_NAMES[names]
    if len(names) == 3 and names[2] in _PARAMS_NAMES:
        return PARAMS_FORM
    # Otherwise by count: the exercise form has five arguments, the general form four.
    required = [name for name, default in positional if not default]
    for count in (len(required), len(positional)):
        if count in _FORM_BY_COUNT:
            return _FORM_BY_COUNT[count]
    shown = ", ".join(str(p[0]) for p in parameters)
    raise InputError(f"{label} takes ({shown}); expected {_EXPECTED_FORMS}")


def call_form(fn: Callable[..., Any], label: str) -> str:
    """The call form from the function's parameters; InputError if none fits."""
    return _form_of(signature_of(fn), label)


def check_code_file(path: Path, what: str, argument: str) -> None:
    """A user's code file must exist and be a regular file (a FIFO would hang the import)."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise InputError(f"{what} {path}: no such file", arguments=(argument,)) from None
    except OSError as exc:
        raise InputError(
            f"{what} {path}: cannot be read ({exc.strerror or exc})", arguments=(argument,)
        ) from None
    if stat.S_ISDIR(mode):
        raise InputError(f"{what} {path}: not a file", arguments=(argument,))
    if not stat.S_ISREG(mode):
        raise InputError(
            f"{what} {path}: not a regular file (a device, FIFO or socket)", arguments=(argument,)
        )


class UserBackend(Backend):
    """A function from the user's file, run in a child process on copies of the problem's arrays.

    The child is started at construction and imports the file at once, so a missing function
    is an InputError here; a file that raises while being imported is the backend's failure.
    """

    kind = "user"

    def __init__(
        self,
        spec: str | UserSpec,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        max_bytes: int = DEFAULT_MAX_BYTES,
        wait: bool = True,
        **_options: Any,
    ) -> None:
        self.spec = parse_user_spec(spec) if isinstance(spec, str) else spec
        try:
            self.timeout = check_timeout(timeout)
        except ValueError as exc:
            raise InputError(str(exc), arguments=("timeout",)) from None
        self.max_bytes = max_bytes
        check_code_file(self.spec.path, "user function", USER_ARGUMENT)
        self.name = self.spec.label
        self.description = f"your function {self.spec.function} in {self.spec.path}"
        self.import_error: tuple[str, str | None] | None = None
        self.form = EXERCISE_FORM
        self.function: Callable[..., Any] | None = None  # set for a live function only
        self._child: ChildProcess | None = None
        self._ready = False
        self._start()
        if wait:
            self.wait_ready()

    def _start(self) -> None:
        init = {"task": "function", "path": str(self.spec.path), "function": self.spec.function}
        try:
            self._child = ChildProcess(init, label=self.name, max_bytes=self.max_bytes)
        except ChildFailure as exc:
            self.import_error = (f"{exc}", None)
        self._ready = False

    def wait_ready(self) -> None:
        """Wait until the child has imported the file: InputError for a missing function or an
        unusable signature; an import that raised, exited or hung is kept as the failure."""
        child = self._child
        if child is None or self._ready:
            return
        self._ready = True
        try:
            header, _ = child.receive(self.timeout)
        except ChildFailure as exc:
            self.import_error = (f"importing {self.spec.path.name}: {exc}", None)
            self._close()
            return
        kind = header.get("kind")
        path, function = self.spec.path, self.spec.function
        if kind == "import_error":
            self.import_error = (str(header["message"]), header.get("traceback"))
            self._close()
        elif kind == "no_function":
            self._close()
            raise InputError(
                f"user function {path}: no function {function!r} in that file"
                f"{function_suggestion(path, function)}",
                arguments=(USER_ARGUMENT,),
            )
        elif kind == "not_callable":
            self._close()
            raise InputError(
                f"user function {self.name}: {function!r} is not a function",
                arguments=(USER_ARGUMENT,),
            )
        else:
            try:
                self.form = _form_of(header.get("parameters"), self.name)
            except InputError:
                self._close()
                raise

    @classmethod
    def from_function(cls, fn: Callable[..., Any], name: str | None = None) -> UserBackend:
        """Wrap a live function object (the Python API): it runs in this process."""
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
        backend._child = None
        backend._ready = True
        backend.timeout = DEFAULT_TIMEOUT
        backend.max_bytes = DEFAULT_MAX_BYTES
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
        if isinstance(problem, LayeredProblem) and self.form != PARAMS_FORM:
            raise InputError(
                f"{self.name}: a layered problem calls f(X, T, params) -> dict of gradients "
                f"keyed by parameter name ({', '.join(problem.parameter_names)}); this "
                f"function has the {self.form} form of an MLP",
                arguments=(USER_ARGUMENT,),
            )
        if self.function is not None:
            return self._call_here(problem)
        if self._child is None and self.import_error is None:
            self._start()  # called again after a finished call: a fresh process
        self.wait_ready()
        if self.import_error is not None:
            message, trace = self.import_error
            raise BackendError(message, trace)
        try:
            return self._call_child(problem)
        finally:
            self._close()

    def _call_child(self, problem: AnyProblem) -> Gradients:
        assert self._child is not None
        args = self.arguments(problem)
        arrays: dict[str, np.ndarray] = {}
        layout: list[Any] = []
        names = {
            GENERAL_FORM: ("X", "T", "W", "B"),
            PARAMS_FORM: ("X", "T", "P"),
        }.get(self.form, ("W", "B", "A", "Y", "T"))
        for name, value in zip(names, args):
            if isinstance(value, dict):  # the params form: parameters by name
                keys = list(value)
                layout.append({"keys": keys, "names": [f"{name}{i}" for i in range(len(keys))]})
                arrays.update({f"{name}{i}": value[k] for i, k in enumerate(keys)})
            elif isinstance(value, list):
                layout.append([f"{name}{i}" for i in range(len(value))])
                arrays.update({f"{name}{i}": v for i, v in enumerate(value)})
            else:
                layout.append(name)
                arrays[name] = value
        depth = problem.depth if isinstance(problem, Problem) else 0
        request = {"kind": "call", "form": self.form, "depth": depth, "args": layout}
        try:
            header, out = self._child.request(request, arrays, self.timeout)
        except ChildFailure as exc:
            if exc.over_budget is not None:
                raise BackendError(
                    f"returned {size_text(exc.over_budget)} of arrays, more than the input "
                    f"budget of {size_text(self.max_bytes)}"
                ) from None
            raise BackendError(f"{exc}") from None
        kind = header.get("kind")
        if kind == "raised":
            raise BackendError(str(header["message"]), header.get("traceback"))
        if kind == "invalid":
            raise BackendError(str(header["message"]))
        loss = header.get("loss")
        if self.form == PARAMS_FORM:
            keys = [str(k) for k in header.get("names", [])]
            named = {k: out[f"G{i}"] for i, k in enumerate(keys)}
            return Gradients(loss=float(loss) if loss is not None else None, named=named)
        return Gradients(
            loss=float(loss) if loss is not None else None,
            dW=tuple(out[f"DW{i}"] for i in range(depth)),
            dB=tuple(out[f"DB{i}"] for i in range(depth)) if header.get("has_db") else None,
        )

    def _call_here(self, problem: AnyProblem) -> Gradients:
        """The live function, called in this process (stdout still kept for the report)."""
        assert self.function is not None
        try:
            with redirect_stdout(sys.stderr):  # stdout belongs to the report (--json must parse)
                result = self.function(*self.arguments(problem))
            if self.form == PARAMS_FORM:
                loss, named = named_gradients_of(result)
                return Gradients(loss=loss, named=named)
            assert isinstance(problem, Problem)
            loss, DW, DB = gradients_of(result, self.form, problem.depth)
        except Unusable as exc:
            raise BackendError(str(exc)) from None
        except KeyboardInterrupt:
            raise  # Ctrl-C in a notebook stops the check
        except BaseException as exc:  # the user's code raising is its failure
            trace = user_frames_only(exc, self.spec.path)
            raise BackendError(exception_line(exc), trace) from None
        return Gradients(loss=loss, dW=DW, dB=DB)

    def _close(self) -> None:
        if self._child is not None:
            self._child.close()
            self._child = None

    def close(self) -> None:
        """Stop the child process, if one is running."""
        self._close()


def function_suggestion(path: Path, function: str) -> str:
    """' (did you mean f?)' when the file defines no `function` but one of a similar name.

    The file is parsed, not run: its top-level definitions are the candidates.
    """
    try:
        tree = ast.parse(path.read_bytes())
    except (OSError, SyntaxError, ValueError):
        return ""
    functions: list[str] = []
    defined: set[str] = set()  # other top-level names (assigned or imported)
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            functions.append(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.Import, ast.ImportFrom)):
            defined.update(n.id for n in ast.walk(node) if isinstance(n, ast.Name))
            defined.update(a.asname or a.name for a in ast.walk(node) if isinstance(a, ast.alias))
    if function in functions or function in defined:
        return ""  # it is there: the error was about something else
    return did_you_mean(function, functions)


def definition(path: Path, function: str) -> int | None:
    """The line of `function`'s def at the top level of the file (parsed, not run), or None."""
    try:
        tree = ast.parse(path.read_bytes())
    except (OSError, SyntaxError, ValueError):
        return None
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == function:
            return node.lineno
    return None


def params_argument(problem: AnyProblem) -> dict[str, np.ndarray]:
    """The params form's argument: fresh copies of every parameter in the problem's dtype,
    keyed by name (state_dict names for a layered problem; W0.., B0.. for an MLP)."""
    dtype = np.dtype(problem.dtype)
    return {n: p.astype(dtype) for n, p in zip(problem.parameter_names, problem.parameters)}
