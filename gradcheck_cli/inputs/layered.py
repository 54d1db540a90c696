"""Layered problems: validation into a LayeredProblem, and loading from files or a model.

The architecture comes from a live nn.Sequential (`model`), from `--model FILE:FUNC`, or
from its text (`--layers`, see architecture.py); the parameters from the model, from a
`--params` file (a state_dict .pt, or an .npz with the same keys) or from the data file.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..nn import LOSSES
from ..nn import network as net
from ..nn.layer_spec import Layer
from ..nn.layers import layer_kind, parameter_shapes
from ..problem import BUNDLED_SOURCE, DTYPES, LayeredProblem
from ..safety.budget import DEFAULT_MAX_BYTES, DEFAULT_MAX_INPUT_MB, budget_bytes
from ..safety.process import DEFAULT_TIMEOUT
from .architecture import parse_layers
from .arrays import (
    as_float64,
    bundled_problem_path,
    check_choice,
    check_forward_memory,
    check_targets,
    numeric,
    read_data,
)
from .models import layers_of_model, model_from_file
from .readers import TORCH_SUFFIXES, read_npz
from .torch_files import read_named_state_dict

# Buffers a state_dict holds beside parameters; training-mode batch norm does not use them.
BUFFERS = ("running_mean", "running_var", "num_batches_tracked")


def _named_layers(layers: Sequence[Layer]) -> list[Layer]:
    """Layers without a name are named by their position, as in an nn.Sequential."""
    named = [layer if layer.name else replace(layer, name=str(i)) for i, layer in enumerate(layers)]
    seen: set[str] = set()
    for layer in named:
        if layer.name in seen:
            raise InputError(f"two layers named {layer.name!r}")
        seen.add(layer.name)
    return named


def _check_batch_norm(layers: Sequence[Layer], shapes: list[tuple[int, ...]], samples: int) -> None:
    for layer, shape in zip(layers, shapes):
        if layer.kind.startswith("BatchNorm") and samples * int(np.prod(shape[1:])) < 2:
            raise InputError(
                f"layer {layer.name} {layer.text()}: batch norm in training mode needs more "
                f"than one value per channel, and there is 1 sample of shape {shape}"
            )


def make_layered_problem(
    X: object,
    T: object,
    layers: Sequence[Layer],
    params: Mapping[str, object],
    *,
    loss: str = "mse",
    dtype: str = "float64",
    source: str = "arrays",
    max_input_mb: float = DEFAULT_MAX_INPUT_MB,
) -> LayeredProblem:
    """Validate arrays, layers and options and build a LayeredProblem (values as float64); its
    forward pass may hold at most `max_input_mb` MB of values."""
    check_choice("loss", loss, LOSSES)
    check_choice("dtype", dtype, DTYPES)
    if not layers:
        raise InputError(f"{source}: the network has no layers")
    layers = _named_layers(layers)
    Xa = as_float64("X", X, source)
    if Xa.ndim < 2:
        raise InputError(f"{source}: X has shape {Xa.shape}; expected (samples, ...)")
    try:
        shapes = net.output_shapes(layers, Xa.shape[1:])
    except InputError as exc:
        raise InputError(f"{source}: {exc} (X has shape {Xa.shape})") from None
    if len(shapes[-1]) != 1:
        raise InputError(
            f"{source}: the network's output has shape {shapes[-1]} per sample; the loss takes "
            "(outputs,) per sample (end the network with Flatten and Linear)"
        )
    _check_batch_norm(layers, [Xa.shape[1:], *shapes[:-1]], Xa.shape[0])
    inputs = [Xa.shape[1:], *shapes[:-1]]
    outputs = [
        (
            f"layer {layer.name} {layer.text()}",
            math.prod(shape) + layer_kind(layer.kind).work(layer.opts, tuple(before)),
        )
        for layer, shape, before in zip(layers, shapes, inputs)
    ]
    check_forward_memory(source, Xa.shape[0], outputs, budget_bytes(max_input_mb))
    expected = {
        net.qualified(layer, key): (layer, shape)
        for layer in layers
        for key, shape in parameter_shapes(layer).items()
    }
    buffers = {net.qualified(layer, b) for layer in layers for b in BUFFERS}
    missing = [name for name in expected if name not in params]
    extra = [name for name in params if name not in expected and name not in buffers]
    if missing or extra:
        problems = []
        if missing:
            problems.append(f"{', '.join(missing)} missing")
        if extra:
            problems.append(f"{', '.join(extra)} not a parameter of these layers")
        raise InputError(
            f"{source}: {'; '.join(problems)} (the layers have {', '.join(expected) or 'none'}; "
            f"given: {', '.join(params) or 'none'})"
        )
    arrays = {}
    for name, (layer, shape) in expected.items():
        array = as_float64(name, params[name], source)
        if array.shape != shape:
            raise InputError(
                f"{source}: {name} has shape {array.shape}; layer {layer.name} {layer.text()} "
                f"expects {shape}"
            )
        arrays[name] = array
    Ta = check_targets(numeric("T", T, source), Xa.shape[0], shapes[-1][0], loss, source)
    return LayeredProblem(
        X=Xa, T=Ta, layers=tuple(layers), params=arrays, loss=loss, dtype=dtype, source=source
    )


def _read_named_params(path: Path, budget: int) -> dict[str, np.ndarray]:
    if path.suffix.lower() in TORCH_SUFFIXES:
        return read_named_state_dict(path, max_bytes=budget)
    return read_npz(path, "params file", max_bytes=budget)


def architecture(
    layers: str | Sequence[Layer] | None,
    model: Any,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> tuple[list[Layer], dict[str, np.ndarray]]:
    """The layers, and the model's parameters (none for layers), from exactly one of `layers`
    (text or Layers) or `model` (an nn.Sequential, or "FILE:FUNC", run in a child process)."""
    if (layers is None) == (model is None):
        raise InputError(
            "give the architecture as layers or as model (one of them)",
            arguments=("layers", "model"),
        )
    if isinstance(model, str):
        return model_from_file(model, timeout=timeout, max_bytes=max_bytes)
    if model is not None:
        return layers_of_model(model)
    return (parse_layers(layers) if isinstance(layers, str) else list(layers or [])), {}


def load_layered_problem(
    data: str | Path | None = None,
    params: str | Path | None = None,
    *,
    layers: str | Sequence[Layer] | None = None,
    model: Any = None,
    loss: str = "mse",
    dtype: str = "float64",
    timeout: float = DEFAULT_TIMEOUT,
    max_input_mb: float = DEFAULT_MAX_INPUT_MB,
) -> LayeredProblem:
    """A LayeredProblem from files: X and T from `data` (default: the bundled problem's),
    the layers from `layers` (text or Layers) or `model` (an nn.Sequential, or "FILE:FUNC",
    which runs that file in a child process for at most `timeout` seconds), the parameters
    from `params` (.pt state_dict or .npz), else from the model, else from the data file's
    other keys. Each file may declare at most `max_input_mb` MB of arrays."""
    data_path = Path(data) if data is not None else bundled_problem_path()
    budget = budget_bytes(max_input_mb)
    found, named = architecture(layers, model, timeout=timeout, max_bytes=budget)
    arrays = read_data(data_path, budget)
    parts = [BUNDLED_SOURCE if data is None else str(data_path)]
    if isinstance(model, str):
        parts.append(model)
    if layers is not None:  # the parameters, unless params gives them: the data file's others
        named = {k: v for k, v in arrays.items() if k not in ("X", "T")}
    if params is not None:
        named = _read_named_params(Path(params), budget)
        parts.append(str(params))
    source = " + ".join(parts)
    return make_layered_problem(
        arrays["X"],
        arrays["T"],
        found,
        named,
        loss=loss,
        dtype=dtype,
        source=source,
        max_input_mb=max_input_mb,
    )
