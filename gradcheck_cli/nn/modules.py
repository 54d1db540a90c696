"""A live `nn.Sequential` as layers and parameters, read by duck typing (its children's class
names and attributes, its named parameters), so this module does not import torch."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..errors import InputError
from .layer_spec import Layer
from .layers import LAYER_KINDS, layer_kind, make_layer

MODEL_ARGUMENT = "model"


def _is_sequential(model: Any) -> bool:
    return type(model).__name__ == "Sequential" and hasattr(model, "named_children")


def attribute_names() -> list[str]:
    """The option names of every layer kind: the attributes a module is read by."""
    return sorted({arg.name for kind in LAYER_KINDS.values() for arg in kind.arguments})


def module_attributes(module: Any, names: list[str]) -> dict[str, Any]:
    """The module's attributes of these names (a bias Parameter read as True)."""
    attributes = {}
    for name in names:
        if not hasattr(module, name):
            continue
        value = getattr(module, name)
        if name == "bias" and not isinstance(value, bool):
            value = value is not None  # a Parameter, or None without a bias
        attributes[name] = value
    return attributes


def layer_of(kind: str, name: str, attributes: Mapping[str, Any]) -> Layer:
    """The Layer of a module of class `kind` with these attributes (its options are the
    kind's argument names); an unsupported module is an InputError naming it."""
    try:
        arguments = layer_kind(kind).arguments
        options = {a.name: attributes[a.name] for a in arguments if a.name in attributes}
        return make_layer(kind, name=name, **options)
    except InputError as exc:
        raise InputError(f"model: module {name}: {exc}", arguments=(MODEL_ARGUMENT,)) from None


_HOOKS = ("_forward_pre_hooks", "_forward_hooks", "_backward_pre_hooks", "_backward_hooks")


def _hooks(module: Any) -> list[str]:
    """The kinds of hook registered on a module (a forward hook may change its output, which
    the NumPy and functional backends, computing the plain layers, cannot reproduce)."""
    return [h.strip("_").replace("_", " ")[:-1] for h in _HOOKS if getattr(module, h, None)]


def _children(model: Any) -> list[tuple[str, Any]]:
    """A Sequential's children in order, a module that appears twice both times (torch's
    named_children() gives it once, which would drop the second ReLU of `a, a`)."""
    modules = getattr(model, "_modules", None)
    if isinstance(modules, dict):
        return [(str(k), v) for k, v in modules.items() if v is not None]
    return list(model.named_children())


def _refuse_hooks(module: Any, where: str) -> None:
    hooks = _hooks(module)
    if hooks:
        raise InputError(
            f"model: {where} has a {' and a '.join(hooks)}, which the check cannot reproduce; "
            f"remove {'it' if len(hooks) == 1 else 'them'} (the plain layers are what is checked)",
            arguments=(MODEL_ARGUMENT,),
        )


def _walk(
    model: Any, prefix: str, names: list[str], layers: list[Layer], seen: dict[int, str]
) -> None:
    for name, child in _children(model):
        full = f"{prefix}{name}"
        _refuse_hooks(child, f"module {full}")
        if id(child) in seen and any(True for _ in child.parameters()):
            raise InputError(
                f"model: module {full} is module {seen[id(child)]} again (shared weights); give "
                "each layer its own module",
                arguments=(MODEL_ARGUMENT,),
            )
        seen.setdefault(id(child), full)
        if _is_sequential(child):
            _walk(child, f"{full}.", names, layers, seen)
            continue
        layers.append(layer_of(type(child).__name__, full, module_attributes(child, names)))


def layers_of_model(model: Any) -> tuple[list[Layer], dict[str, np.ndarray]]:
    """The layers of an nn.Sequential (nested ones in line) and its parameters as float64
    NumPy arrays keyed by their state_dict names."""
    if not _is_sequential(model):
        raise InputError(
            f"model must be a torch nn.Sequential (its layers are checked in order); got "
            f"{type(model).__name__}",
            arguments=(MODEL_ARGUMENT,),
        )
    _refuse_hooks(model, "the nn.Sequential")
    layers: list[Layer] = []
    _walk(model, "", attribute_names(), layers, {})
    if not layers:
        raise InputError("model: the nn.Sequential is empty", arguments=(MODEL_ARGUMENT,))
    params = {}
    for name, tensor in model.named_parameters():
        if tensor.is_complex():
            raise InputError(f"model: {name} is complex; expected real numbers")
        params[name] = tensor.detach().cpu().double().numpy().copy()
    return layers, params
