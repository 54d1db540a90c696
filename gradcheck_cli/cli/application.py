"""The typer app and what every command shares: consoles, one-line errors, exit codes,
progress. Library errors become flags and exit codes here, once."""

from __future__ import annotations

import re
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from .. import __version__
from ..errors import GradcheckError


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
    # --install-completion / --show-completion for bash, zsh, fish and PowerShell.
    add_completion=True,
    pretty_exceptions_enable=False,
    # Plain help like click's: no boxes, a flag shows no <bool>, and a long list of choices
    # stays on its own line instead of being split across the box's column.
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


class _PipeAwareConsole(Console):
    """A console that wraps lines only on a terminal: piped into a file or a CI log, each
    finding stays one line (grep-able), whatever width the log's reader has."""

    @property
    def soft_wrap(self) -> bool:
        return not self.is_terminal

    @soft_wrap.setter
    def soft_wrap(self, value: bool) -> None:
        pass  # set by Console.__init__; this console decides by itself


stdout = _PipeAwareConsole()
stderr = Console(stderr=True)


class State:
    debug = False
    # Whether --activation came from the command line or a config file (not the default).
    activation_given = False
    # Warnings about the input, said once the command's checks of its input have passed.
    warnings: list[str] = []  # noqa: RUF012 - reset by main() for every invocation


def warn(message: str) -> None:
    """A warning for stderr, printed when the current `exit_codes()` block ends without error:
    bad input stays one line on stderr, with nothing before it."""
    State.warnings.append(message)


# Every line break Python knows (str.splitlines): a name from a file (a key, a path) may hold one.
_LINE_BREAK = re.compile("[\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")


def one_line(message: str) -> str:
    """`message` on one line: line breaks inside it written as escapes (`\\n`)."""
    return _LINE_BREAK.sub(lambda m: repr(m[0])[1:-1], message)


def _print_warnings() -> None:
    for message in State.warnings:
        text = escape(one_line(message))
        stderr.print(f"[yellow]warning:[/] {text}", highlight=False, soft_wrap=True)
    State.warnings.clear()


def fail(message: str, code: int = 2) -> NoReturn:
    """Print one error line on stderr and exit."""
    # Escaped: "[tool.gradcheck]" or a path like "runs[red]/" is text, not rich markup.
    text = escape(one_line(message))
    stderr.print(f"[bold red]error:[/] {text}", highlight=False, soft_wrap=True)
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
        State.warnings.clear()
        raise
    except GradcheckError as exc:
        State.warnings.clear()
        fail(as_flags(exc), exc.exit_code)
    except Exception as exc:  # an internal error: one line unless --debug
        State.warnings.clear()
        if State.debug:
            traceback.print_exc()
            raise typer.Exit(3) from None
        fail(
            f"internal error: {type(exc).__name__}: {exc} (rerun with --debug for the traceback)", 3
        )
    else:
        _print_warnings()


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


_DEBUG_HELP = "Show full tracebacks of internal errors."


def _debug(value: bool) -> bool:
    if value:
        State.debug = True
    return value


# `gradcheck run --debug` as well as `gradcheck --debug run`: every command takes it, since
# the hint to rerun with --debug is read after the command has been typed.
DebugOption = Annotated[
    bool, typer.Option("--debug", callback=_debug, expose_value=False, help=_DEBUG_HELP)
]


@app.callback()
def main(
    debug: Annotated[bool, typer.Option("--debug", help=_DEBUG_HELP)] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", "-V", callback=_version, is_eager=True, help="Show the version and exit."
        ),
    ] = False,
) -> None:
    """Cross-validate neural-network gradients."""
    State.debug = debug
    State.warnings = []
