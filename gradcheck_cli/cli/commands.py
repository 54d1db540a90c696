"""The typer app: parse options, call the core, render. Errors become exit codes here, once."""

from __future__ import annotations

import json
import os
import re
import sys
import time
import traceback
import warnings
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeAlias

import typer
from rich.console import Console
from rich.markup import escape

from .. import __version__
from ..backends import BUILTIN_BACKENDS, TORCH_BACKENDS, create_backend
from ..backends.base import Backend
from ..errors import GradcheckError, InputError
from ..fd import DEFAULT_DIRECTIONS, DEFAULT_SAMPLES, FD_MODES, FULL_MODE_MAX_PARAMETERS
from ..nn import ACTIVATIONS, DEFAULT_NEGATIVE_SLOPE, LOSSES
from ..problem import DTYPES

if TYPE_CHECKING:
    from ..problem import Problem
    from ..verdict import Report


class _OneLineErrors(typer.Typer):
    """The typer app, but a usage error (unknown option, bad choice) is one line on stderr
    with exit 2, like every other bad input, instead of a boxed panel."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if "standalone_mode" in kwargs:  # a caller that handles errors itself
            return super().__call__(*args, **kwargs)
        try:
            result = super().__call__(*args, standalone_mode=False, **kwargs)
        except Exception as exc:
            # typer's (vendored) click usage errors: duck-typed, their module path is private.
            code = getattr(exc, "exit_code", None)
            if hasattr(exc, "format_message") and isinstance(code, int):
                command = getattr(getattr(exc, "ctx", None), "command_path", "gradcheck")
                message = " ".join(str(exc.format_message()).split())
                if not message:  # `gradcheck` alone: the help was printed, nothing to add
                    sys.exit(code)
                message = message.replace("Value error, ", "")  # pydantic's prefix on choices
                stderr.print(
                    f"[bold red]error:[/] {escape(message)} (see '{command} --help')",
                    highlight=False,
                    soft_wrap=True,
                )
                sys.exit(code)
            raise
        sys.exit(result if isinstance(result, int) else 0)


app = _OneLineErrors(
    name="gradcheck",
    help="Cross-validate neural-network gradients: NumPy backprop, PyTorch autograd, "
    "nn.Sequential and finite differences.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
stdout = Console()
stderr = Console(stderr=True)


def _choices(name: str, values: Iterable[str]) -> Any:
    """A str Enum of the names in a core table, so the CLI's choices follow the tables."""
    return Enum(name, {v.replace("-", "_"): v for v in values}, type=str)


if TYPE_CHECKING:  # to mypy they are str enums; at run time they are built from the tables

    class _Choice(str, Enum):
        """A choice among a core table's names."""

    Activation: TypeAlias = _Choice
    Loss: TypeAlias = _Choice
    DType: TypeAlias = _Choice
    FDMode: TypeAlias = _Choice
else:
    Activation = _choices("Activation", ACTIVATIONS)
    Loss = _choices("Loss", LOSSES)
    DType = _choices("DType", DTYPES)
    FDMode = _choices("FDMode", FD_MODES)


class State:
    debug = False


def fail(message: str, code: int = 2) -> NoReturn:
    """Print one error line on stderr and exit."""
    # Escaped: "[tool.gradcheck]" or a path like "runs[red]/" is text, not rich markup.
    stderr.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


# Library arguments whose flag is not simply --name-with-dashes.
_FLAGS = {"fd_mode": "--fd", "user function": "--user"}


def flag(argument: str) -> str:
    """The command-line flag of a library argument: rtol -> --rtol, fd_step -> --fd-step."""
    return _FLAGS.get(argument, "--" + argument.replace("_", "-"))


def as_flags(exc: GradcheckError) -> str:
    """The error's message, with the library arguments it names said as flags."""
    message = str(exc)
    for argument in exc.arguments:
        word = re.compile(rf"(?<![\w-]){re.escape(argument)}(?![\w-])")
        message = word.sub(flag(argument), message, count=1)
    return message


@contextmanager
def exit_codes() -> Iterator[None]:
    """The one place errors become exit codes: GradcheckError -> its code, anything else -> 3."""
    try:
        yield
    except (typer.Exit, typer.Abort):
        raise
    except GradcheckError as exc:
        fail(as_flags(exc), exc.exit_code)
    except Exception as exc:  # an internal error: one line unless --debug
        if State.debug:
            traceback.print_exc()
            raise typer.Exit(3) from None
        fail(
            f"internal error: {type(exc).__name__}: {exc} (rerun with --debug for the traceback)", 3
        )


# Finite differences that finish within this many seconds show no progress bar.
PROGRESS_DELAY_S = 1.0


@contextmanager
def fd_progress(enabled: bool) -> Iterator[Callable[[int, int], None] | None]:
    """A (done, total) callback drawing a progress bar on stderr once a run passes ~1 s."""
    if not enabled:
        yield None
        return
    from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeRemainingColumn

    bar = Progress(
        TextColumn("finite differences"),
        BarColumn(),
        TextColumn("{task.completed:,}/{task.total:,} evaluations"),
        TimeRemainingColumn(),
        console=stderr,
        transient=True,
    )
    start = time.perf_counter()
    task: list[TaskID] = []

    def update(done: int, total: int) -> None:
        if not task:
            if time.perf_counter() - start < PROGRESS_DELAY_S:
                return
            bar.start()
            task.append(bar.add_task("fd", total=total))
        bar.update(task[0], completed=done, total=total)

    try:
        yield update
    finally:
        if task:
            bar.stop()


def _version(value: bool) -> None:
    if value:
        stdout.print(f"gradcheck {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    debug: Annotated[
        bool, typer.Option("--debug", help="Show full tracebacks of internal errors.")
    ] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Show the version and exit."
        ),
    ] = False,
) -> None:
    """Cross-validate neural-network gradients."""
    State.debug = debug


# Loading options shared by `run` and `inspect`: declared once here, used by both commands.
DataOption = Annotated[
    Path | None,
    typer.Option(
        help=".npz with X and T (may also hold W0.., B0..), or .csv with a header row "
        "(columns T, T0, T1.. are targets, the rest X). Default: the bundled exercise problem."
    ),
]
ParamsOption = Annotated[
    Path | None,
    typer.Option(
        help=".npz with W0.., B0.., or a .pt/.pth state_dict of an nn.Sequential of Linear "
        "layers (overrides those in --data)."
    ),
]
UtilsOption = Annotated[
    Path | None,
    typer.Option(
        help="Python file with getdata() -> (X, T) and getparams() -> (W, B), as in the "
        "exercise. This RUNS the file's code: use only files you trust. Not with --data/--params."
    ),
]
ActivationOption = Annotated[Activation, typer.Option(help="Hidden-layer activation.")]
NegativeSlopeOption = Annotated[
    float, typer.Option(help="Slope of leaky-relu for negative inputs.")
]
LossOption = Annotated[Loss, typer.Option(help="Loss: mse = mean over all elements, sse = sum.")]
DTypeOption = Annotated[
    DType,
    typer.Option(help="dtype the backends compute in; finite differences always use float64."),
]


def _load(
    data: Path | None,
    params: Path | None,
    utils: Path | None,
    activation: Activation,
    loss: Loss,
    dtype: DType,
    negative_slope: float,
) -> Problem:
    """Load the problem of `run`/`inspect`; input warnings go to stderr, one line each."""
    from ..inputs.loading import load_problem

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        problem = load_problem(
            data,
            params,
            utils=utils,
            activation=activation.value,
            loss=loss.value,
            dtype=dtype.value,
            negative_slope=negative_slope,
        )
    for w in caught:
        stderr.print(
            f"[yellow]warning:[/] {escape(str(w.message))}", highlight=False, soft_wrap=True
        )
    return problem


class OutputFormat(str, Enum):
    text = "text"
    json = "json"
    github = "github"


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


# The options of `run` that `inspect` shares: a project's config describes one problem.
_INSPECT_CONFIG_KEYS = ("data", "params", "utils", "activation", "negative_slope", "loss", "dtype")


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


@app.command()
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
) -> None:
    """Compute the gradients with every backend, compare them, and exit 1 if any disagrees."""
    from ..verdict import CheckOptions, run_checks

    with exit_codes():
        output = _output_format(ctx, output_format, as_json)
        _check_output_dir(junit, summary)
        start = time.perf_counter()
        problem = _load(data, params, utils, activation, loss, dtype, negative_slope)
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


@app.command("backends")
def list_backends() -> None:
    """List the available gradient backends."""
    for name, (_, _, description) in BUILTIN_BACKENDS.items():
        stdout.print(f"[bold]{name:<18}[/] {description}", highlight=False)


@app.command("inspect")
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
) -> None:
    """Show the loaded problem (architecture, shapes, statistics) without computing gradients."""
    from ..inputs.inspection import inspect_problem

    with exit_codes():
        problem = _load(data, params, utils, activation, loss, dtype, negative_slope)
        inspection = inspect_problem(problem)
    if as_json:
        sys.stdout.write(json.dumps(inspection.to_dict(), indent=2) + "\n")
    else:
        from ..outputs.inspection import print_inspection

        print_inspection(inspection, stdout)


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


@app.command("init")
def init_command(
    path: Annotated[
        Path,
        typer.Argument(help="Where to write the starter file (a folder: mybackprop.py in it)."),
    ] = Path("mybackprop.py"),
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
) -> None:
    """Write a starter file for your own backward pass and print the command that checks it."""
    from .starter import write_starter

    with exit_codes():
        written, command = write_starter(path, force)
    stdout.print(f"wrote {written}; fill in back_propagation, then check it with:", highlight=False)
    stdout.print(f"  {command}", highlight=False, soft_wrap=True)
