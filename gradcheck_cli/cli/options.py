"""The options `run` and `inspect` share, with choices taken from the core's tables."""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeAlias

import typer

from ..errors import InputError
from ..fd import FD_MODES
from ..nn import ACTIVATIONS, LOSSES
from ..problem import DTYPES, Problem
from ..safety.budget import DEFAULT_MAX_INPUT_MB
from ..safety.process import DEFAULT_TIMEOUT
from ..verdict.policy import REFERENCES
from .application import State, warn

if TYPE_CHECKING:
    from ..problem import AnyProblem


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
    Reference: TypeAlias = _Choice
else:
    Activation = _choices("Activation", ACTIVATIONS)
    Loss = _choices("Loss", LOSSES)
    DType = _choices("DType", DTYPES)
    FDMode = _choices("FDMode", FD_MODES)
    Reference = _choices("Reference", REFERENCES)


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
        "layers (overrides those in --data); with --layers or --model, of those layers."
    ),
]
UtilsOption = Annotated[
    Path | None,
    typer.Option(
        help="Python file with getdata() -> (X, T) and getparams() -> (W, B), as in the "
        "exercise. This RUNS the file's code: use only files you trust. Not with --data/--params."
    ),
]
LayersOption = Annotated[
    str | None,
    typer.Option(
        metavar="<text>",
        help="The architecture of --params (a state_dict does not record its layers), as "
        "print(model) shows it, e.g. 'Conv2d(1,4,3,padding=1), ReLU, MaxPool2d(2), Flatten, "
        "Linear(64,10)'. Layers are named 0, 1, ... (or (name): prefixes), as in an nn.Sequential.",
    ),
]
ModelOption = Annotated[
    str | None,
    typer.Option(
        metavar="<file:func>",
        help="FILE:FUNC: a function returning an nn.Sequential; its layers and weights are "
        "checked (--params overrides the weights). This RUNS the file's code, in its own process.",
    ),
]
TimeoutOption = Annotated[
    float,
    typer.Option(
        help="Seconds your code (a --user function, a --utils or --model file) may take for "
        "one step (importing it, one call) before it is stopped; it runs in a separate process.",
    ),
]
MaxInputOption = Annotated[
    float,
    typer.Option(
        help="Budget, in MB, of an input file's arrays and of the network's forward pass: "
        "sizes are checked before anything is read or computed.",
    ),
]


def _note_activation_source(ctx: typer.Context, value: Any) -> Any:
    """Remember whether --activation was given (flag or config) or is the default."""
    source = ctx.get_parameter_source("activation")
    State.activation_given = source is not None and source.name != "DEFAULT"
    return value


ActivationOption = Annotated[
    Activation,
    typer.Option(help="Hidden-layer activation.", callback=_note_activation_source),
]
NegativeSlopeOption = Annotated[
    float, typer.Option(help="Slope of leaky-relu for negative inputs.")
]
LossOption = Annotated[Loss, typer.Option(help="Loss: mse = mean over all elements, sse = sum.")]
DTypeOption = Annotated[
    DType,
    typer.Option(help="dtype the backends compute in; finite differences always use float64."),
]


class OutputFormat(str, Enum):
    text = "text"
    json = "json"
    github = "github"


def load(
    data: Path | None,
    params: Path | None,
    utils: Path | None,
    activation: Activation,
    loss: Loss,
    dtype: DType,
    negative_slope: float,
    layers: str | None = None,
    model: str | None = None,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    max_input_mb: float = DEFAULT_MAX_INPUT_MB,
) -> AnyProblem:
    """Load the problem of `run`/`inspect`; input warnings go to stderr, one line each."""
    from ..inputs.loading import load_problem
    from ..safety.process import check_timeout

    try:
        check_timeout(timeout)
    except ValueError as exc:
        raise InputError(str(exc), arguments=("timeout",)) from None

    if (layers is not None or model is not None) and State.activation_given:
        # Silently ignoring it would check another network than the user means.
        raise InputError(
            "--activation applies to MLP problems; a --layers or --model network names its "
            "own activations (e.g. 'Linear(4, 8), Tanh, Linear(8, 1)')",
            arguments=("activation",),
        )
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
            layers=layers,
            model=model,
            timeout=timeout,
            max_input_mb=max_input_mb,
        )
    for w in caught:
        warn(str(w.message))
    if isinstance(problem, Problem) and problem.bundled:
        warn(
            "no --data, --params, --utils or [tool.gradcheck] table given: checking the bundled "
            f"exercise problem ({'-'.join(map(str, problem.layers))} {problem.activation} MLP), "
            "not a network of yours"
        )
    is_state_dict = params is not None and Path(params).suffix.lower() in (".pt", ".pth")
    if is_state_dict and layers is None and model is None and not State.activation_given:
        # A state_dict holds the Linear layers only: activation modules have no weights.
        warn(
            f"{params} is a state_dict, which holds no activation: assumed "
            f"{activation.value} (give --activation if the network uses another)"
        )
    return problem
