"""`gradcheck inspect`: the loaded problem, described, without computing gradients."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from ..nn import DEFAULT_NEGATIVE_SLOPE
from .application import exit_codes, stderr, stdout
from .options import (
    Activation,
    ActivationOption,
    DataOption,
    DType,
    DTypeOption,
    LayersOption,
    Loss,
    LossOption,
    ModelOption,
    NegativeSlopeOption,
    ParamsOption,
    UtilsOption,
    load,
)
from .run_command import run

# The options of `run` that `inspect` shares: a project's config describes one problem.
_INSPECT_CONFIG_KEYS = (
    "data",
    "params",
    "utils",
    "activation",
    "negative_slope",
    "loss",
    "dtype",
    "layers",
    "model",
)


def _apply_config_to_inspect(ctx: typer.Context, value: Path | None) -> Path | None:
    """The loading options of [tool.gradcheck] (checked as for `run`) as `inspect`'s defaults,
    so that `inspect` shows the problem that `run` checks."""
    from .config import load_config, option_specs

    with exit_codes():
        config = load_config(value, option_specs(run))
    if config is not None:
        shared = {k: v for k, v in config.values.items() if k in _INSPECT_CONFIG_KEYS}
        ctx.default_map = {**(ctx.default_map or {}), **shared}
        stderr.print(f"[dim]config: {escape(str(config.path))}[/]", highlight=False, soft_wrap=True)
    return value


def inspect_command(
    data: DataOption = None,
    params: ParamsOption = None,
    utils: UtilsOption = None,
    activation: ActivationOption = Activation("relu"),
    negative_slope: NegativeSlopeOption = DEFAULT_NEGATIVE_SLOPE,
    loss: LossOption = Loss("mse"),
    dtype: DTypeOption = DType("float64"),
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the description as JSON on stdout, nothing else.")
    ] = False,
    config: Annotated[
        Path | None,
        typer.Option(
            callback=_apply_config_to_inspect,
            is_eager=True,
            help="TOML file whose loading options (data, params, utils, activation, loss, "
            "dtype) are the defaults, as for run. Default: the nearest pyproject.toml.",
        ),
    ] = None,
    layers: LayersOption = None,
    model: ModelOption = None,
) -> None:
    """Show the loaded problem (architecture, shapes, statistics) without computing gradients."""
    from ..inputs.inspection import inspect_problem

    with exit_codes():
        problem = load(data, params, utils, activation, loss, dtype, negative_slope, layers, model)
        inspection = inspect_problem(problem)
    if as_json:
        sys.stdout.write(json.dumps(inspection.to_dict(), indent=2) + "\n")
    else:
        from ..outputs.inspection import print_inspection

        print_inspection(inspection, stdout)
