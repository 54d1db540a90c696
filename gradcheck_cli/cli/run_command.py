"""`gradcheck run`: load, check with every backend, report, exit 0/1/2/3."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from ..backends import BUILTIN_BACKENDS, TORCH_BACKENDS, create_backend
from ..backends.base import Backend
from ..errors import InputError
from ..fd import DEFAULT_DIRECTIONS, DEFAULT_SAMPLES, FULL_MODE_MAX_PARAMETERS
from ..nn import DEFAULT_NEGATIVE_SLOPE
from .application import exit_codes, fd_progress, stderr, stdout
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
    ModelOption,
    NegativeSlopeOption,
    OutputFormat,
    ParamsOption,
    Reference,
    UtilsOption,
    load,
)

if TYPE_CHECKING:
    from ..verdict import Report


def _apply_config(ctx: typer.Context, value: Path | None) -> Path | None:
    """Make [tool.gradcheck] (or --config FILE) the defaults of `run`; flags still override."""
    from .config import load_config, option_specs

    with exit_codes():
        config = load_config(value, option_specs(run))
    if config is not None:
        # Values in default_map are parsed like typed-in ones, and their source is reported
        # as DEFAULT_MAP, so an option given on the command line always wins.
        ctx.default_map = {**(ctx.default_map or {}), **config.values}
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


def _check_output_dir(*paths: Path | None) -> None:
    """Fail before the (possibly long) run when an output file's directory does not exist."""
    for path in paths:
        if path is not None and not path.parent.is_dir():
            raise InputError(f"{path}: directory {path.parent} does not exist")
    given = [p.resolve() for p in paths if p is not None]
    if len(set(given)) < len(given):  # the summary would be appended to the JUnit XML
        raise InputError(f"{given[0]}: --junit and --summary must be different files")


def _write_file(path: Path, text: str, *, append: bool = False) -> None:
    """Write an output file; a path that cannot be written is bad usage (exit 2)."""
    try:
        with path.open("a" if append else "w", encoding="utf-8") as f:
            f.write(text)
    except OSError as exc:
        raise InputError(f"{path}: cannot write: {exc.strerror or exc}") from None


def run(
    ctx: typer.Context,
    data: DataOption = None,
    params: ParamsOption = None,
    backend: Annotated[
        list[str] | None,
        typer.Option(
            "--backend",
            "-b",
            help=f"Backend to run (repeatable): {', '.join(BUILTIN_BACKENDS)}. Default: all.",
        ),
    ] = None,
    activation: ActivationOption = Activation("relu"),
    negative_slope: NegativeSlopeOption = DEFAULT_NEGATIVE_SLOPE,
    loss: LossOption = Loss("mse"),
    dtype: DTypeOption = DType("float64"),
    device: Annotated[str, typer.Option(help="Device of the torch backends: cpu or cuda.")] = "cpu",
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
            help="Your own gradient function as FILE:FUNC (repeatable), checked like a backend: "
            "f(W, B, A, Y, T) -> DW or (DW, DB), or f(X, T, W, B) -> (DW, DB) or (loss, DW, DB). "
            "This RUNS the file's code.",
        ),
    ] = None,
    show: Annotated[
        list[str] | None,
        typer.Option(
            "--show",
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
) -> None:
    """Compute the gradients with every backend, compare them, and exit 1 if any disagrees."""
    from ..verdict import CheckOptions, run_checks

    with exit_codes():
        output = _output_format(ctx, output_format, as_json)
        _check_output_dir(junit, summary)
        start = time.perf_counter()
        problem = load(data, params, utils, activation, loss, dtype, negative_slope, layers, model)
        load_seconds = time.perf_counter() - start
        names = backend or list(BUILTIN_BACKENDS)
        if len(set(names)) != len(names):
            twice = sorted({n for n in names if names.count(n) > 1})
            raise InputError(f"backend given twice: {', '.join(twice)}")
        backends = [
            create_backend(n, device=device) if n in TORCH_BACKENDS else create_backend(n)
            for n in names
        ]
        backends += _user_backends(user or [], names)
        _check_shown(show or [], problem.parameter_names)
        if show and output == "json":
            stderr.print(
                "[yellow]warning:[/] --show prints tables, so it is left out of --json output",
                highlight=False,
            )
        with fd_progress(enabled=output != "json" and stderr.is_terminal) as progress:
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

    with exit_codes():
        if junit is not None:
            from ..outputs.junit import to_junit

            _write_file(junit, to_junit(report))
        if summary is not None:
            from ..outputs.github import step_summary

            _write_file(summary, step_summary(report), append=True)
    code = 0 if report.ok else 1
    try:
        _print_run(report, output, show or [])
        sys.stdout.flush()
    except BrokenPipeError:
        # `gradcheck run | head`: the reader left; the verdict (the exit code) still stands.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    raise typer.Exit(code)


def _print_run(report: Report, output: str, show: list[str]) -> None:
    """The report on stdout: JSON, or the tables (plus annotations for --format github)."""
    if output == "json":
        sys.stdout.write(json.dumps(report.to_dict(), indent=2) + "\n")
        return
    from ..outputs.heatmap import parameter_heatmaps
    from ..outputs.text import print_report

    print_report(report, stdout)
    for name in show:
        stdout.print(parameter_heatmaps(report, name))
    if output == "github":
        from ..outputs.github import annotation_lines

        # Written raw: rich would wrap long lines, and a wrapped command is not a command.
        sys.stdout.write("\n".join(annotation_lines(report)) + "\n")


def _user_backends(specs: list[str], builtin_names: list[str]) -> list[Backend]:
    """A backend per --user FILE:FUNC; a missing file or function is bad usage (exit 2)."""
    from ..backends.user import UserBackend

    users = [UserBackend(spec) for spec in specs]
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
                f"--show {name}: no such parameter; choose from {', '.join(parameters)}"
            )
