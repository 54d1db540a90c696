"""`--model FILE:FUNC`: the user's function that makes an nn.Sequential, run in a child
process like every other user code (gradcheck_cli.safety): its layers and parameters come back
as plain data, and nothing the file does reaches this process."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import InputError
from ..nn.layer_spec import Layer
from ..nn.modules import MODEL_ARGUMENT, attribute_names, layer_of, layers_of_model
from ..safety.budget import DEFAULT_MAX_BYTES
from ..safety.process import DEFAULT_TIMEOUT
from .readers import check_file, run_file

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
    init = {
        "task": "model",
        "path": str(path),
        "function": function,
        "attributes": attribute_names(),
    }
    header, arrays = run_file(
        init,
        "model file",
        path,
        timeout=timeout,
        max_bytes=max_bytes,
        returned="its parameters come to",
        during="while making the model",
        arguments=(MODEL_ARGUMENT,),
    )
    layers = [layer_from_description(d) for d in header["layers"]]
    if not layers:
        raise InputError("model: the nn.Sequential is empty", arguments=(MODEL_ARGUMENT,))
    names = [str(n) for n in header["names"]]
    return layers, {n: np.asarray(arrays[f"P{i}"], dtype=np.float64) for i, n in enumerate(names)}
