"""`--model FILE:FUNC`: the user's function that makes an nn.Sequential, run in a child
process like every other user code (gradcheck_cli.safety): its layers and parameters come back
as plain data, and nothing the file does reaches this process."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import InputError
from ..nn.layer_spec import Layer
from ..nn.modules import MODEL_ARGUMENT, attribute_names, layer_of, layers_of_model
from ..safety.budget import DEFAULT_MAX_BYTES, over_budget
from ..safety.process import DEFAULT_TIMEOUT, ChildFailure, ChildProcess, check_timeout
from .readers import check_file

__all__ = ["MODEL_ARGUMENT", "layers_of_model", "model_from_file"]


def layer_from_description(data: dict[str, Any]) -> Layer:
    """The Layer of a module the child described: class, name, attributes (lists stand for
    tuples)."""
    attributes = {
        str(k): tuple(v) if isinstance(v, list) else v for k, v in data["attributes"].items()
    }
    return layer_of(str(data["kind"]), str(data["name"]), attributes)


def model_from_file(
    spec: str, *, timeout: float = DEFAULT_TIMEOUT, max_bytes: int = DEFAULT_MAX_BYTES
) -> tuple[list[Layer], dict[str, np.ndarray]]:
    """Run FILE's FUNC() in a child process: the layers and parameters of the nn.Sequential
    it returns. Its failures, exits, crashes and hangs are bad input (InputError)."""
    path_text, sep, function = spec.rpartition(":")
    if not sep or not path_text or not function.isidentifier():
        raise InputError(
            f"model {spec!r}: expected FILE:FUNC, e.g. model.py:make_model",
            arguments=(MODEL_ARGUMENT,),
        )
    path = check_file(path_text, "model file")
    try:
        seconds = check_timeout(timeout)
    except ValueError as exc:
        raise InputError(str(exc), arguments=("timeout",)) from None
    init = {
        "task": "model",
        "path": str(path),
        "function": function,
        "attributes": attribute_names(),
    }
    try:
        child = ChildProcess(init, label=f"model file {path.name}", max_bytes=max_bytes)
        try:
            header, arrays = child.receive(seconds)
        finally:
            child.close()
    except ChildFailure as exc:
        if exc.over_budget is not None:
            raise over_budget(
                f"model file {path}", "its parameters come to", exc.over_budget, max_bytes
            ) from None
        raise InputError(f"model file {path}: {exc} while making the model") from None
    if header.get("kind") == "input_error":
        raise InputError(str(header["message"]), arguments=(MODEL_ARGUMENT,))
    if header.get("kind") != "model":
        raise InputError(f"model file {path}: the process running it answered {header!r}")
    layers = [layer_from_description(d) for d in header["layers"]]
    if not layers:
        raise InputError("model: the nn.Sequential is empty", arguments=(MODEL_ARGUMENT,))
    names = [str(n) for n in header["names"]]
    return layers, {n: np.asarray(arrays[f"P{i}"], dtype=np.float64) for i, n in enumerate(names)}
