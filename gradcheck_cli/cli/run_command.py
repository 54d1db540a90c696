"""`gradcheck run`: load, check with every backend, report, exit 0/1/2/3."""

from __future__ import annotations

import contextlib
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from ..backends import BUILTIN_BACKENDS, TORCH_BACKENDS, create_backend
from ..backends.base import Backend
from ..errors import InputError, did_you_mean
from ..fd import DEFAULT_DIRECTIONS, DEFAULT_SAMPLES, FULL_MODE_MAX_PARAMETERS
from ..nn import DEFAULT_NEGATIVE_SLOPE
from ..safety.budget import DEFAULT_MAX_INPUT_MB, budget_bytes, check_budget
from ..safety.process import DEFAULT_TIMEOUT
from .application import DebugOption, exit_codes, fd_progress, stderr, stdout
from .artifacts import prepare_all
from .options import (
    Activation,
    ActivationOption,
    DataOption,
    DType,
    DTypeOption,
    FDMode,
    LayersOption,
    Loss,
    LossOption,
    MaxInputOption,
    ModelOption,
    NegativeSlopeOption,
    OutputFormat,
    ParamsOption,
    Reference,
    TimeoutOption,
    UtilsOption,
    load,
)
from .streams import ReportStream, defused_stderr, numeric_warnings_summarised

if TYPE_CHECKING:
    from ..backends.user import UserBackend
    from ..verdict import Report

CONFIG_PATH = "gradcheck_config_path"


def _apply_config(ctx: typer.Context, value: Path | None) -> Path | None:
    """Make [tool.gradcheck] (or --config FILE) the defaults of `run`; flags still override."""
    from .config import load_config, option_specs

    with exit_codes():
        config = load_config(value, option_specs(run))
    if config is not None:
        # Values in default_map are parsed like typed-in ones, and their source is reported
        # as DEFAULT_MAP, so an option given on the command line always wins.
        ctx.default_map = {**(ctx.default_map or {}), **config.values}
        ctx.meta[CONFIG_PATH] = config.path  # an input: no output may replace it
        stderr.print(f"[dim]config: {escape(str(config.path))}[/]", highlight=False, soft_wrap=True)
    return value


def _output_format(ctx: typer.Context, output_format: OutputFormat, as_json: bool) -> str:
    """--json is --format json; when both are set, the one given on the command line wins."""
    if not as_json or output_format is OutputFormat.json:
        return output_format.value
    source = ctx.get_parameter_source("output_format")
    if source is None or source.name == "DEFAULT":
        return "json"
    json_source = ctx.get_parameter_source("as_json")
    from_cli = [s is not None and s.name == "COMMANDLINE" for s in (source, json_source)]
    if from_cli == [True, False]:
        return output_format.value
    if from_cli == [False, True]:
        return "json"
    raise InputError(f"--json and --format {output_format.value} contradict each other")


def run(
    ctx: typer.Context,
    data: DataOption = None,
    params: ParamsOption = None,
    backend: Annotated[
        list[str] | None,
        typer.Option(
            "--backend",
            "-b",
            metavar="<name>",
            help=f"Backend to run (repeatable; default: all): {', '.join(BUILTIN_BACKENDS)}.",
        ),
    ] = None,
    activation: ActivationOption = Activation("relu"),
    negative_slope: NegativeSlopeOption = DEFAULT_NEGATIVE_SLOPE,
    loss: LossOption = Loss("mse"),
    dtype: DTypeOption = DType("float64"),
    device: Annotated[
        str, typer.Option(metavar="<device>", help="Device of the torch backends: cpu or cuda.")
    ] = "cpu",
    fd: Annotated[
        FDMode,
        typer.Option(
            "--fd",
            help="Finite-difference reference: full (every entry), sample (--fd-samples "
            "entries, every tensor covered), directional (random directions), off (compare "
            f"backends with each other); auto: full up to {FULL_MODE_MAX_PARAMETERS:,} "
            "parameters, else sample.",
        ),
    ] = FDMode("auto"),
    fd_step: Annotated[
        float | None,
        typer.Option(
            help="Base step: h = step * max(1, |theta|). Default 1e-6 (order 2), 1e-3 (order 4)."
        ),
    ] = None,
    rtol: Annotated[
        float | None,
        typer.Option(help="Relative tolerance (default: 1e-5 for float64, 1e-3 for float32)."),
    ] = None,
    atol: Annotated[
        float | None,
        typer.Option(
            help="Absolute tolerance. Default: 1e-8 x max|ref| for float64, 1e-5 x max|ref| for "
            "float32 (scaled by each parameter's largest entry); a value given here is absolute."
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the report as JSON on stdout, nothing else.")
    ] = False,
    output_format: Annotated[
        OutputFormat,
        typer.Option(
            "--format",
            help="stdout: text (the tables), json (same as --json), or github (the tables, "
            "then ::error annotations for GitHub Actions).",
        ),
    ] = OutputFormat.text,
    junit: Annotated[
        Path | None,
        typer.Option(help="Also write a JUnit XML report: a testcase per backend x parameter."),
    ] = None,
    summary: Annotated[
        Path | None,
        typer.Option(help="Append a Markdown summary (e.g. to $GITHUB_STEP_SUMMARY)."),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            callback=_apply_config,
            is_eager=True,
            help="TOML file with defaults for these options: the tool.gradcheck table of a "
            "pyproject.toml, or top-level keys. Default: the nearest pyproject.toml.",
        ),
    ] = None,
    utils: UtilsOption = None,
    user: Annotated[
        list[str] | None,
        typer.Option(
            "--user",
            metavar="<file:func>",
            help="Your own gradient function as FILE:FUNC (repeatable), checked like a backend: "
            "f(W, B, A, Y, T) -> DW or (DW, DB), or f(X, T, W, B) -> (DW, DB) or (loss, DW, DB); "
            "for --layers/--model networks f(X, T, params) -> {name: gradient} or (loss, dict). "
            "This RUNS the file's code, in a process of its own.",
        ),
    ] = None,
    show: Annotated[
        list[str] | None,
        typer.Option(
            "--show",
            metavar="<param>",
            help="Also print this parameter (e.g. W1) entry by entry: reference, your function, "
            "relative error, coloured (repeatable; text output only).",
        ),
    ] = None,
    fd_samples: Annotated[
        int | None,
        typer.Option(
            help=f"Entries (--fd sample, default {DEFAULT_SAMPLES}) or directions "
            f"(--fd directional, default {DEFAULT_DIRECTIONS}) to check."
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the sampled entries and directions.")] = 0,
    fd_order: Annotated[
        int, typer.Option(help="Finite-difference order: 2 (central) or 4 (Richardson).")
    ] = 2,
    reference: Annotated[
        Reference,
        typer.Option(
            help="What judges your functions: backends (the built-ins' float64 consensus, "
            "validated by finite differences: rounding-level sensitivity), fd (finite "
            "differences), or auto (backends when two built-ins run, else fd)."
        ),
    ] = Reference("auto"),
    layers: LayersOption = None,
    model: ModelOption = None,
    timeout: TimeoutOption = DEFAULT_TIMEOUT,
    max_input_mb: MaxInputOption = DEFAULT_MAX_INPUT_MB,
    debug: DebugOption = False,
) -> None:
    """Compute the gradients with every backend, compare them, and exit 1 if any disagrees."""
    from ..verdict import CheckOptions, run_checks

    with defused_stderr(), exit_codes(), contextlib.ExitStack() as stack:
        output = _output_format(ctx, output_format, as_json)
        budget = budget_bytes(max_input_mb)
        inputs = _input_paths(ctx, data, params, utils, user or [])
        artifacts = prepare_all([("--junit", junit, False), ("--summary", summary, True)], inputs)
        for artifact in artifacts:
            stack.callback(artifact.discard)
        # The users' processes start first: they import numpy and their files while this one
        # loads the problem and torch.
        users = _user_backends(user or [], timeout, budget, stack)
        start = time.perf_counter()
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
        load_seconds = time.perf_counter() - start
        names = backend or list(BUILTIN_BACKENDS)
        if len(set(names)) != len(names):
            twice = sorted({n for n in names if names.count(n) > 1})
            raise InputError(f"backend given twice: {', '.join(twice)}")
        backends = [
            create_backend(n, device=device) if n in TORCH_BACKENDS else create_backend(n)
            for n in names
        ]
        for user_backend in users:
            user_backend.wait_ready()
        backends += _unique_names(users, names)
        _check_shown(show or [], problem.parameter_names)
        _check_directions(fd.value, fd_samples, problem.parameter_count, budget)
        if show and output == "json":
            stderr.print(
                "[yellow]warning:[/] --show prints tables, so it is left out of --json output",
                highlight=False,
            )
        with (
            fd_progress(enabled=output != "json" and stderr.is_terminal) as progress,
            numeric_warnings_summarised(),
        ):
            options = CheckOptions(
                rtol=rtol,
                atol=atol,
                fd_mode=fd.value,
                fd_step=fd_step,
                fd_samples=fd_samples,
                fd_order=fd_order,
                seed=seed,
                reference=reference.value,
                progress=progress,
            )
            report = run_checks(problem, backends, options, load_seconds=load_seconds)

        # Files first (CI keeps them whatever happens to stdout), then the report on stdout,
        # then what failed, last on stderr.
        failures = []
        for artifact in artifacts:
            failures.append(artifact.write(_artifact_text(artifact.flag, report)))
    with defused_stderr():
        stream = ReportStream(sys.stdout)
        _print_run(report, output, show or [], stream, backends)
        stream.finish()
        if stream.broken_pipe:
            # `gradcheck run | head`: the reader left; the verdict (the exit code) still stands.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        failures.append(stream.failure())
        for failure in filter(None, failures):
            stderr.print(f"[bold red]error:[/] {escape(failure)}", highlight=False, soft_wrap=True)
    if any(failures):
        raise typer.Exit(2)
    raise typer.Exit(0 if report.ok else 1)


def _artifact_text(flag: str, report: Report) -> str:
    if flag == "--junit":
        from ..outputs.junit import to_junit

        return to_junit(report)
    from ..outputs.github import step_summary

    return step_summary(report)


def _input_paths(
    ctx: typer.Context, data: Path | None, params: Path | None, utils: Path | None, user: list[str]
) -> list[Path]:
    """Every file the run reads: no output may replace one of them."""
    from ..inputs import bundled_problem_path

    paths = [p for p in (data, params, utils) if p is not None]
    paths.append(bundled_problem_path())
    paths += [Path(spec.rpartition(":")[0]) for spec in user if ":" in spec]
    config_path = ctx.meta.get(CONFIG_PATH)
    if config_path is not None:
        paths.append(Path(config_path))
    return paths


def _check_directions(mode: str, directions: int | None, parameters: int, budget: int) -> None:
    """--fd directional keeps a sign per direction and parameter: that must fit the budget."""
    if mode == "directional" and directions is not None and directions > 0:
        check_budget(
            "--fd directional",
            f"{directions} directions (--fd-samples) of {parameters} parameters take",
            directions * parameters,
            budget,
        )


def _print_run(
    report: Report, output: str, show: list[str], stream: ReportStream, backends: list[Backend]
) -> None:
    """The report on stdout: JSON, or the tables (plus annotations for --format github)."""
    if output == "json":
        from ..outputs.json_report import report_json

        stream.write(report_json(report))
        return
    from ..outputs.heatmap import parameter_heatmaps
    from ..outputs.text import print_report

    stdout.file = stream  # type: ignore[assignment]
    try:
        print_report(report, stdout)
        for name in show:
            stdout.print(parameter_heatmaps(report, name))
    finally:
        stdout.file = None  # type: ignore[assignment]
    if output == "github":
        from ..outputs.github import annotation_lines, source_locations

        # Written raw: rich would wrap long lines, and a wrapped command is not a command.
        lines = annotation_lines(report, source_locations(backends))
        stream.write_raw("\n".join(lines) + "\n")


def _user_backends(
    specs: list[str], timeout: float, budget: int, stack: contextlib.ExitStack
) -> list[UserBackend]:
    """A backend per --user FILE:FUNC, each in its own process (started, not yet waited for);
    a missing file is bad usage (exit 2). The processes end when the run does."""
    from ..backends.user import UserBackend

    users: list[UserBackend] = []
    for spec in specs:
        backend = UserBackend(spec, timeout=timeout, max_bytes=budget, wait=False)
        stack.callback(backend.close)
        users.append(backend)
    return users


def _unique_names(users: list[UserBackend], builtin_names: list[str]) -> list[Backend]:
    """The users' backends with names that tell them apart; the same function twice is an
    error."""
    # Files of the same name in different folders (each student's backprop.py) are told
    # apart by their path; the same file and function twice is still a mistake.
    files: dict[str, set[Path]] = {}
    for b in users:
        files.setdefault(b.name, set()).add(b.spec.path.resolve())
    for b in users:
        if len(files[b.name]) > 1:
            b.name = f"{b.spec.path}:{b.spec.function}"
    backends: list[Backend] = list(users)
    labels = [b.name for b in backends] + builtin_names
    if len(set(labels)) != len(labels):
        twice = sorted({n for n in labels if labels.count(n) > 1})
        raise InputError(f"--user given twice: {', '.join(twice)}")
    return backends


def _check_shown(names: list[str], parameters: list[str]) -> None:
    """--show must name parameters of the problem."""
    for name in names:
        if name not in parameters:
            raise InputError(
                f"--show {name}: no such parameter{did_you_mean(name, parameters)}; "
                f"choose from {', '.join(parameters)}"
            )
