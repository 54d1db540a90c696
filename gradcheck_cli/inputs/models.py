"""A live `nn.Sequential` as layers and parameters, and `--model FILE:FUNC` that makes one.

The model is read by duck typing (its children's class names and attributes, its named
parameters), so this module does not import torch; `--model` runs the user's file.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
from contextlib import redirect_stdout
from typing import Any

import numpy as np

from ..errors import InputError
from ..nn.layer_spec import Layer
from ..nn.layers import layer_kind, make_layer
from .readers import _describe, _importable_from, check_file, one_line

MODEL_ARGUMENT = "model"


def _is_sequential(model: Any) -> bool:
    return type(model).__name__ == "Sequential" and hasattr(model, "named_children")


def _options(module: Any, kind: str) -> dict[str, Any]:
    """The module's options, read from its attributes under torch's argument names."""
    options = {}
    for arg in layer_kind(kind).arguments:
        if not hasattr(module, arg.name):
            continue
        value = getattr(module, arg.name)
        if arg.name == "bias" and not isinstance(value, bool):
            value = value is not None  # a Parameter, or None without a bias
        options[arg.name] = value
    return options


def _walk(model: Any, prefix: str, layers: list[Layer]) -> None:
    for name, child in model.named_children():
        full = f"{prefix}{name}"
        if _is_sequential(child):
            _walk(child, f"{full}.", layers)
            continue
        kind = type(child).__name__
        try:
            layers.append(make_layer(kind, name=full, **_options(child, kind)))
        except InputError as exc:
            raise InputError(f"model: module {full}: {exc}", arguments=(MODEL_ARGUMENT,)) from None


def layers_of_model(model: Any) -> tuple[list[Layer], dict[str, np.ndarray]]:
    """The layers of an nn.Sequential (nested ones in line) and its parameters as float64
    NumPy arrays keyed by their state_dict names."""
    if not _is_sequential(model):
        raise InputError(
            f"model must be a torch nn.Sequential (its layers are checked in order); got "
            f"{type(model).__name__}",
            arguments=(MODEL_ARGUMENT,),
        )
    layers: list[Layer] = []
    _walk(model, "", layers)
    if not layers:
        raise InputError("model: the nn.Sequential is empty", arguments=(MODEL_ARGUMENT,))
    params = {}
    for name, tensor in model.named_parameters():
        if tensor.is_complex():
            raise InputError(f"model: {name} is complex; expected real numbers")
        params[name] = tensor.detach().cpu().double().numpy().copy()
    return layers, params


def load_model_function(spec: str) -> Any:
    """Run FILE and call its FUNC() (`--model FILE:FUNC`): the nn.Sequential it returns."""
    path_text, sep, function = spec.rpartition(":")
    if not sep or not path_text or not function.isidentifier():
        raise InputError(
            f"model {spec!r}: expected FILE:FUNC, e.g. model.py:make_model",
            arguments=(MODEL_ARGUMENT,),
        )
    path = check_file(path_text, "model file")
    name = f"gradcheck_model_{abs(hash(str(path.resolve())))}"
    loader = importlib.machinery.SourceFileLoader(name, str(path))
    module_spec = importlib.util.spec_from_file_location(name, path, loader=loader)
    assert module_spec is not None
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module
    # The user's prints go to stderr: stdout belongs to the report (--json must parse).
    with _importable_from(path.parent), redirect_stdout(sys.stderr):
        try:
            loader.exec_module(module)
            make = getattr(module, function, None)
            if not callable(make):
                raise InputError(
                    f"model file {path}: defines no function {function}()",
                    arguments=(MODEL_ARGUMENT,),
                )
            return make()
        except SyntaxError as exc:
            where = f"line {exc.lineno}: " if exc.lineno is not None else ""
            raise InputError(
                f"model file {path}: {where}{one_line(exc.msg)} (not valid Python)"
            ) from None
        except InputError:
            raise
        except (Exception, SystemExit) as exc:  # the user's code failed: bad input
            raise InputError(f"model file {path}: raised {_describe(exc, path)}") from None
        finally:
            sys.modules.pop(name, None)
