"""The Python API for notebooks and tests: `gradcheck_cli.check(my_backprop, ...)` -> Report."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .backends import backend_names, create_backend
from .backends.base import Backend
from .backends.user import UserBackend
from .errors import InputError
from .inputs import load_layered_problem, load_problem, make_layered_problem, make_problem
from .inputs.layered import architecture
from .nn import DEFAULT_NEGATIVE_SLOPE
from .outputs.notebook import NotebookReport
from .problem import AnyProblem
from .safety.budget import DEFAULT_MAX_INPUT_MB, budget_bytes
from .safety.process import DEFAULT_TIMEOUT, check_timeout
from .verdict import CheckOptions, Report, run_checks

UserFunction = Callable[..., Any] | str


def _problem(
    data: Any,
    params: Any,
    utils: str | Path | None,
    options: dict[str, Any],
    timeout: float,
    max_input_mb: float,
) -> AnyProblem:
    """A Problem from paths (as on the command line) or from arrays: data=(X, T), params=(W, B)."""
    data_is_arrays = isinstance(data, (tuple, list))
    params_is_arrays = isinstance(params, (tuple, list))
    if not data_is_arrays and not params_is_arrays:
        return load_problem(
            data, params, utils=utils, timeout=timeout, max_input_mb=max_input_mb, **options
        )
    if not (data_is_arrays and params_is_arrays):
        raise InputError(
            "give data=(X, T) and params=(W, B) both as arrays, or both as file paths",
            arguments=("data", "params"),
        )
    if len(data) != 2 or len(params) != 2:
        raise InputError(
            "data must be (X, T) and params must be (W, B), W and B lists of arrays",
            arguments=("data", "params"),
        )
    (X, T), (W, B) = data, params
    return make_problem(X, T, list(W), list(B), max_input_mb=max_input_mb, **options)


def _layered_problem(
    data: Any,
    params: Any,
    model: Any,
    layers: Any,
    options: dict[str, Any],
    timeout: float,
    max_input_mb: float,
) -> AnyProblem:
    """A LayeredProblem from a model (nn.Sequential or "FILE:FUNC") or layers (text or
    Layers), with data=(X, T) as arrays or a path, and params a mapping, a path, or None."""
    loss, dtype = options["loss"], options["dtype"]
    if not isinstance(data, (tuple, list)):
        if isinstance(params, Mapping):
            raise InputError("give params as a file path when data is one", arguments=("params",))
        return load_layered_problem(
            data,
            params,
            layers=layers,
            model=model,
            loss=loss,
            dtype=dtype,
            timeout=timeout,
            max_input_mb=max_input_mb,
        )
    if len(data) != 2:
        raise InputError("data must be (X, T)", arguments=("data",))
    found, named = architecture(
        layers, model, timeout=timeout, max_bytes=budget_bytes(max_input_mb)
    )
    source = "model" if model is not None else "layers"
    if params is not None:
        if not isinstance(params, Mapping):
            raise InputError(
                "params of a layered model: a mapping of state_dict names to arrays (e.g. "
                "model.state_dict()), or a file path",
                arguments=("params",),
            )
        named = dict(params)
    return make_layered_problem(
        data[0],
        data[1],
        found,
        named,
        loss=loss,
        dtype=dtype,
        source=source,
        max_input_mb=max_input_mb,
    )


def _user_backends(
    functions: Sequence[UserFunction], timeout: float, max_bytes: int
) -> list[UserBackend]:
    """Backends for the user's functions (objects or "FILE:FUNC"), with unique row names.

    The files' processes all start before any is waited for, so they import side by side.
    """
    backends: list[UserBackend] = []
    seen: set[str] = set()
    try:
        for fn in functions:
            if isinstance(fn, str):
                backend = UserBackend(fn, timeout=timeout, max_bytes=max_bytes, wait=False)
            elif callable(fn):
                backend = UserBackend.from_function(fn)
            else:
                raise InputError(f"expected a function or 'FILE:FUNC', got {type(fn).__name__}")
            base, n = backend.name, 2
            while backend.name in seen:  # two functions of the same name stay two rows
                backend.name = f"{base}#{n}"
                n += 1
            seen.add(backend.name)
            backends.append(backend)
        for backend in backends:
            backend.wait_ready()
    except BaseException:
        for backend in backends:
            backend.close()
        raise
    return backends


def check(
    *functions: UserFunction,
    data: Any = None,
    params: Any = None,
    utils: str | Path | None = None,
    problem: AnyProblem | None = None,
    activation: str = "relu",
    loss: str = "mse",
    dtype: str = "float64",
    negative_slope: float = DEFAULT_NEGATIVE_SLOPE,
    backends: Sequence[str] | None = None,
    fd: str = "auto",  # as on the command line: full up to a threshold, then sampled
    fd_samples: int | None = None,
    fd_step: float | None = None,
    fd_order: int = 2,
    seed: int = 0,
    rtol: float | None = None,
    atol: float | None = None,
    reference: str = "auto",
    timeout: float = DEFAULT_TIMEOUT,
    max_input_mb: float = DEFAULT_MAX_INPUT_MB,
    model: Any = None,
    layers: Any = None,
) -> Report:
    """Check your gradient functions against the built-in backends and finite differences.

    `functions` are callables in the exercise form f(W, B, A, Y, T) or the general form
    f(X, T, W, B), or "FILE:FUNC" strings. The problem comes from `problem`, from file paths
    (`data`, `params`, `utils`, as on the command line; default: the bundled exercise network)
    or from arrays (`data=(X, T), params=(W, B)`). `backends` lists built-in backends to run
    alongside (default: all). `reference` is what judges your functions: "backends" (the
    built-ins' float64 consensus, validated by finite differences), "fd", or "auto" (backends
    when two built-ins run). `fd` ("auto", "full", "sample", "directional", "off"),
    `fd_samples`, `fd_step`, `fd_order` and `seed` are the command line's --fd options.
    Returns the Report: `.ok`, `.to_dict()`, and a rich rendering in Jupyter.

    A "FILE:FUNC" function and a `utils` file run in a separate process that may take
    `timeout` seconds per step (importing, one call): an exit, crash or hang there is that
    function's failure (for `utils`, an InputError). A function object runs in this process,
    as it is: it may be a closure that another process could not import. Each input file may
    declare at most `max_input_mb` MB of arrays.

    Beyond the MLP: `model` (a torch nn.Sequential, whose weights are the parameters, or
    "FILE:FUNC" returning one) or `layers` (the architecture as text, as `print(model)` shows
    it, with `params` a state_dict mapping or file), with `data=(X, T)`; your functions then
    take f(X, T, params) and return a dict of gradients keyed by state_dict name.
    """
    options: dict[str, Any] = dict(
        activation=activation, loss=loss, dtype=dtype, negative_slope=negative_slope
    )
    budget = budget_bytes(max_input_mb)
    try:
        check_timeout(timeout)
    except ValueError as exc:
        raise InputError(str(exc), arguments=("timeout",)) from None
    if problem is None and (model is not None or layers is not None):
        if utils is not None:
            raise InputError("give either utils or model/layers, not both")
        problem = _layered_problem(data, params, model, layers, options, timeout, max_input_mb)
    elif problem is None:
        problem = _problem(data, params, utils, options, timeout, max_input_mb)
    elif any(v is not None for v in (data, params, utils, model, layers)):
        raise InputError("give either problem= or data/params/utils/model/layers, not both")
    if isinstance(backends, str):  # backends="numpy" would otherwise be read letter by letter
        backends = [backends]
    names = list(backends) if backends is not None else backend_names()
    users = _user_backends(functions, timeout, budget)
    settings = CheckOptions(
        rtol=rtol,
        atol=atol,
        fd_mode=fd,
        fd_step=fd_step,
        fd_samples=fd_samples,
        fd_order=fd_order,
        seed=seed,
        reference=reference,
    )
    try:
        chosen: list[Backend] = [create_backend(n) for n in names]
        report = run_checks(problem, chosen + list(users), settings)
    finally:
        for user in users:
            user.close()
    return NotebookReport.of(report)
