"""`gradcheck inspect`: the loaded problem, described, without computing gradients."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from ..nn import DEFAULT_NEGATIVE_SLOPE
from ..safety.budget import DEFAULT_MAX_INPUT_MB
from ..safety.process import DEFAULT_TIMEOUT
from .application import DebugOption, exit_codes, stderr, stdout
from .options import (
    Activation,
    ActivationOption,
    DataOption,
    DType,
    DTypeOption,
    LayersOption,
    Loss,
    LossOption,
    MaxInputOption,
    ModelOption,
    NegativeSlopeOption,
    ParamsOption,
    TimeoutOption,
    UtilsOption,
    load,
)
from .run_command import run
from .streams import ReportStream, defused_stderr, numeric_warnings_summarised

# The options of `run` that `inspect` shares: a project's config describes one problem.
_INSPECT_CONFIG_KEYS = (
    "data",
    "params",
    "utils",
    "activation",
    "negative_slope",
    "loss",
    "dtype",
    "timeout",
    "max_input_mb",
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
    timeout: TimeoutOption = DEFAULT_TIMEOUT,
    max_input_mb: MaxInputOption = DEFAULT_MAX_INPUT_MB,
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
    debug: DebugOption = False,
) -> None:
    """Show the loaded problem (architecture, shapes, statistics) without computing gradients."""
    from ..inputs.inspection import inspect_problem

    with defused_stderr(), exit_codes():
        problem = load(
            data,
            params,
            utils,
            activation,
            loss,
            dtype,
            negative_slope,
            layers,
            model,
            timeout=timeout,
            max_input_mb=max_input_mb,
        )
        with numeric_warnings_summarised():
            inspection = inspect_problem(problem)
    stream = ReportStream(sys.stdout)
    if as_json:
        from ..outputs.json_report import to_json_text

        stream.write(to_json_text(inspection.to_dict()))
    else:
        from ..outputs.inspection import print_inspection

        stdout.file = stream  # type: ignore[assignment]
        try:
            print_inspection(inspection, stdout)
        finally:
            stdout.file = None  # type: ignore[assignment]
    stream.finish()
    if stream.broken_pipe:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    failure = stream.failure()
    if failure is not None:
        stderr.print(f"[bold red]error:[/] {escape(failure)}", highlight=False, soft_wrap=True)
        raise typer.Exit(2)
