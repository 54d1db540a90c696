"""Shared test helpers: problems and an independent torch reference, backends with deliberate
mistakes, small problems as named arrays and files, and readers of the JUnit and GitHub outputs.

Nothing here is a test; test modules import from here, never from each other.
"""

from __future__ import annotations

import itertools
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np
from typer.testing import CliRunner

from gradcheck_cli import cli
from gradcheck_cli.backends import backend_names, create_backend
from gradcheck_cli.backends.base import Backend
from gradcheck_cli.backends.numpy_backprop import NumpyBackprop
from gradcheck_cli.cli import run_command
from gradcheck_cli.inputs.loading import make_problem
from gradcheck_cli.nn import ACTIVATIONS, LOSSES
from gradcheck_cli.problem import Gradients, Problem

runner = CliRunner()

# The corpus of hand-written backprop functions, right and wrong.
USER_CORPUS = Path(__file__).resolve().parent / "user_corpus"

# ----------------------------------------------------------------------------------------------
# Problems, and their gradients by torch autograd written here independently of the package

# Every activation with every loss, on a small network with two hidden layers.
ACTIVATION_LOSS_PAIRS = list(itertools.product(ACTIVATIONS, LOSSES))
ACTIVATION_LOSS_LAYERS = [3, 5, 4, 3]


def random_problem(
    layers: list[int],
    samples: int = 7,
    seed: int = 0,
    activation: str = "relu",
    loss: str = "mse",
    dtype: str = "float64",
) -> Problem:
    """A random MLP problem with the given widths."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((samples, layers[0]))
    if loss == "cross-entropy":
        T = rng.integers(0, layers[-1], size=samples)
    elif loss == "bce":
        T = rng.uniform(0, 1, size=(samples, layers[-1]))
    else:
        T = rng.standard_normal((samples, layers[-1]))
    W = [rng.standard_normal((a, b)) / np.sqrt(a) for a, b in zip(layers[:-1], layers[1:])]
    B = [0.1 * rng.standard_normal(b) for b in layers[1:]]
    return make_problem(X, T, W, B, activation=activation, loss=loss, dtype=dtype)


def torch_reference(problem: Problem) -> tuple[float, list[np.ndarray], list[np.ndarray]]:
    """Loss and gradients by torch autograd, written here independently of the package (float64)."""
    import torch

    X = torch.tensor(problem.X, dtype=torch.float64)
    W = [torch.tensor(w, dtype=torch.float64, requires_grad=True) for w in problem.weights]
    B = [torch.tensor(b, dtype=torch.float64, requires_grad=True) for b in problem.biases]
    act = {
        "relu": torch.relu,
        "tanh": torch.tanh,
        "sigmoid": torch.sigmoid,
        "identity": lambda z: z,
        "leaky-relu": lambda z: torch.where(z > 0, z, problem.negative_slope * z),
    }[problem.activation]
    A = X
    for i, (w, b) in enumerate(zip(W, B)):
        A = A @ w + b
        if i < len(W) - 1:
            A = act(A)
    if problem.loss == "cross-entropy":
        logp = A - torch.logsumexp(A, dim=1, keepdim=True)
        if problem.T.ndim == 1:
            loss = -logp[torch.arange(A.shape[0]), torch.tensor(problem.T)].mean()
        else:
            loss = -(torch.tensor(problem.T) * logp).sum() / A.shape[0]
    elif problem.loss == "bce":
        T = torch.tensor(problem.T)
        p = torch.sigmoid(A)
        loss = -(T * torch.log(p) + (1 - T) * torch.log(1 - p)).mean()
    else:
        T = torch.tensor(problem.T)
        sq = (A - T) ** 2
        loss = sq.mean() if problem.loss == "mse" else sq.sum()
    loss.backward()
    return (
        float(loss.item()),
        [w.grad.numpy() for w in W],  # type: ignore[union-attr]
        [b.grad.numpy() for b in B],  # type: ignore[union-attr]
    )


def torch_by_name(problem: Problem) -> dict[str, np.ndarray]:
    """The independent torch autograd gradient, keyed W0.., B0..."""
    _, dW, dB = torch_reference(problem)
    return {**{f"W{i}": w for i, w in enumerate(dW)}, **{f"B{i}": b for i, b in enumerate(dB)}}


def network_output(problem) -> np.ndarray:
    """The ReLU network's output Y, by a plain NumPy forward pass."""
    A = problem.X
    for i, (w, b) in enumerate(zip(problem.weights, problem.biases)):
        A = A @ w + b
        if i < problem.depth - 1:
            A = np.maximum(A, 0)
    return A


def near_kink_float32(problem, row: int = 2, unit: int = 0, z: float = 1e-9):
    """`problem` in float32 with the pre-activation Z0[row, unit] moved to `z` (within float32
    rounding of the ReLU kink; for the bundled problem float32 puts it on the other side)."""
    Z0 = problem.X @ problem.weights[0] + problem.biases[0]
    B0 = problem.biases[0].copy()
    B0[unit] -= Z0[row, unit] - z
    return make_problem(
        problem.X, problem.T, problem.weights, [B0, *problem.biases[1:]], dtype="float32"
    )


def zero_row_problem(problem, row: int = 5):
    """`problem` with X[row] = 0 and B0 = 0: every Z0[row, j] is exactly 0, at the ReLU kink."""
    X = problem.X.copy()
    X[row] = 0.0
    B0 = np.zeros_like(problem.biases[0])
    return make_problem(X, problem.T, problem.weights, [B0, *problem.biases[1:]])


def near_convergence(problem, distance):
    """The same network with targets `distance` from its output: a tiny residual Y - T."""
    A = network_output(problem)
    T = A + distance * np.random.default_rng(1).standard_normal(A.shape)
    return make_problem(problem.X, T, problem.weights, problem.biases, dtype=problem.dtype)


# ----------------------------------------------------------------------------------------------
# Backends: the built-ins, and ones with deliberate mistakes


def builtin_backends() -> list[Backend]:
    """One of each built-in backend."""
    return [create_backend(n) for n in backend_names()]


class ScaledBackend(Backend):
    """The NumPy backend with one parameter's gradient scaled: a deliberate mistake."""

    name = "scaled"

    def __init__(self, param: str = "W1", factor: float = 2.0) -> None:
        self.param, self.factor = param, factor

    def gradients(self, problem: Problem) -> Gradients:
        g = NumpyBackprop().gradients(problem)
        dW, dB = list(g.dW), list(g.dB or ())
        target = dW if self.param[0] == "W" else dB
        target[int(self.param[1:])] = target[int(self.param[1:])] * self.factor
        return Gradients(g.loss, tuple(dW), tuple(dB))


class RaisingBackend(Backend):
    """A backend that raises instead of returning gradients."""

    name = "raising"

    def gradients(self, problem: Problem) -> Gradients:
        raise ZeroDivisionError("boom")


class EntryOff(Backend):
    """The NumPy backend with one entry moved by `delta`: a single wrong entry."""

    name = "entry-off"

    def __init__(self, param: str, index: tuple[int, ...], delta: float) -> None:
        self.param, self.index, self.delta = param, index, delta

    def gradients(self, problem: Problem) -> Gradients:
        g = NumpyBackprop().gradients(problem)
        named = {n: np.array(a) for n, a in g.by_name().items()}
        named[self.param][self.index] += self.delta
        k = problem.depth
        return Gradients(
            g.loss, tuple(named[f"W{i}"] for i in range(k)), tuple(named[f"B{i}"] for i in range(k))
        )


def wrong_numpy(monkeypatch):
    """Make `gradcheck run` build a numpy backend whose W2 gradient is halved."""

    def fake_create(name, **options):
        return ScaledBackend("W2", 0.5) if name == "numpy" else create_backend(name, **options)

    monkeypatch.setattr(run_command, "create_backend", fake_create)


def my_backprop(W, B, A, Y, T):
    """A correct exercise-form function, written in the test."""
    delta = 2 * (Y - T) / Y.size
    DW, DB = [None] * len(W), [None] * len(W)
    for i in reversed(range(len(W))):
        DW[i], DB[i] = A[i].T @ delta, delta.sum(axis=0)
        if i:
            delta = (delta @ W[i].T) * (A[i] > 0)
    return DW, DB


def forgot_the_mean(W, B, A, Y, T):
    """my_backprop without the 1/N of the mean."""
    DW, DB = my_backprop(W, B, A, Y, T)
    return [d * Y.size for d in DW], [d * Y.size for d in DB]


# Correct weights, but the bias gradients are not summed over the batch: shape (N, out).
UNSUMMED_BIAS = """
def back_propagation(W, B, A, Y, T):
    d = 2 * (Y - T) / Y.size
    DW, DB = [None] * len(W), [None] * len(W)
    for i in reversed(range(len(W))):
        DW[i] = A[i].T @ d
        DB[i] = d
        if i:
            d = (d @ W[i].T) * (A[i] > 0)
    return DW, DB
"""


# ----------------------------------------------------------------------------------------------
# A small 3-4-2 problem as named arrays, and in every file format

ARRAYS_LAYERS = [3, 4, 2]
ARRAYS_SAMPLES = 5


def arrays(seed: int = 0) -> dict[str, np.ndarray]:
    """A small valid 3-4-2 problem as named arrays."""
    rng = np.random.default_rng(seed)
    named = {
        "X": rng.standard_normal((ARRAYS_SAMPLES, 3)),
        "T": rng.standard_normal((ARRAYS_SAMPLES, 2)),
    }
    for i, (a, b) in enumerate(zip(ARRAYS_LAYERS[:-1], ARRAYS_LAYERS[1:])):
        named[f"W{i}"] = rng.standard_normal((a, b))
        named[f"B{i}"] = rng.standard_normal(b)
    return named


def params_of(named: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Only W0.., B0.."""
    return {k: v for k, v in named.items() if k[0] in "WB"}


def data_of(named: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Only X and T."""
    return {k: named[k] for k in ("X", "T")}


def sequential_for(named: dict[str, np.ndarray], dtype: Any = None) -> Any:
    """An nn.Sequential(Linear, ReLU, Linear, ...) holding W0.., B0.. (weight = W.T), float64
    unless `dtype` says otherwise."""
    import torch
    from torch import nn

    dtype = torch.float64 if dtype is None else dtype
    depth = sum(1 for k in named if k[0] == "W")
    modules: list[nn.Module] = []
    for i in range(depth):
        w = named[f"W{i}"]
        linear = nn.Linear(w.shape[0], w.shape[1], dtype=dtype)
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(w.T.copy()))
            linear.bias.copy_(torch.from_numpy(named[f"B{i}"]))
        modules.append(linear)
        if i < depth - 1:
            modules.append(nn.ReLU())
    return nn.Sequential(*modules)


def write_csv(path: Path, X: np.ndarray, T: np.ndarray) -> Path:
    """X and T as a CSV with header x0.., T0.. and exact (17-digit) values."""
    header = [f"x{i}" for i in range(X.shape[1])] + [f"T{i}" for i in range(T.shape[1])]
    np.savetxt(
        path, np.hstack([X, T]), delimiter=",", fmt="%.17g", header=",".join(header), comments=""
    )
    return path


UTILS_TEMPLATE = """\
import numpy as np
_DATA = np.load({data!r})
def getdata():
    return _DATA["X"], _DATA["T"]
def getparams():
    W = [_DATA["W%d" % i] for i in range({depth})]
    B = [_DATA["B%d" % i] for i in range({depth})]
    return W, B
"""


def write_utils(tmp_path: Path, named: dict[str, np.ndarray], name: str = "utils.py") -> Path:
    """A course-style utils.py returning the arrays of `named`."""
    np.savez(tmp_path / "utils_data.npz", **named)
    depth = sum(1 for k in named if k[0] == "W")
    path = tmp_path / name
    path.write_text(UTILS_TEMPLATE.format(data=str(tmp_path / "utils_data.npz"), depth=depth))
    return path


def write_every_format(tmp_path: Path, named: dict[str, np.ndarray]) -> dict[str, dict[str, Path]]:
    """`named` written in every input format; label -> the loading options that read it."""
    import torch

    np.savez(tmp_path / "all.npz", **named)
    np.savez(tmp_path / "data.npz", **data_of(named))
    np.savez(tmp_path / "params.npz", **params_of(named))
    torch.save(sequential_for(named).state_dict(), tmp_path / "model.pt")
    torch.save(
        sequential_for(named).state_dict(),
        tmp_path / "legacy.pth",
        _use_new_zipfile_serialization=False,
    )
    write_csv(tmp_path / "data.csv", named["X"], named["T"])
    return {
        "one npz": {"data": tmp_path / "all.npz"},
        "npz + npz": {"data": tmp_path / "data.npz", "params": tmp_path / "params.npz"},
        "npz + pt": {"data": tmp_path / "data.npz", "params": tmp_path / "model.pt"},
        "npz + legacy pth": {"data": tmp_path / "data.npz", "params": tmp_path / "legacy.pth"},
        "csv + npz": {"data": tmp_path / "data.csv", "params": tmp_path / "params.npz"},
        "csv + pt": {"data": tmp_path / "data.csv", "params": tmp_path / "model.pt"},
        "utils.py": {"utils": write_utils(tmp_path, named)},
    }


def assert_same_arrays(problem: Problem, named: dict[str, np.ndarray]) -> None:
    """The loaded problem holds exactly the arrays of `named`."""
    assert np.array_equal(problem.X, named["X"])
    assert np.array_equal(problem.T, named["T"])
    for i, (w, b) in enumerate(zip(problem.weights, problem.biases)):
        assert np.array_equal(w, named[f"W{i}"]), f"W{i}"
        assert np.array_equal(b, named[f"B{i}"]), f"B{i}"


def assert_bad_input(args: list[str], message: str) -> str:
    """Run the CLI; assert exit 2, `message` on stderr, one line, no traceback, empty stdout."""
    result = runner.invoke(cli.app, args)
    assert result.exit_code == 2, (result.exit_code, result.output)
    stderr = " ".join(result.stderr.split())  # rich may wrap a long line on a narrow terminal
    assert message in stderr, result.stderr
    assert "Traceback" not in result.output
    assert result.stdout == ""
    assert stderr.startswith("error:")
    return stderr


# ----------------------------------------------------------------------------------------------
# Reading back the JUnit XML and the GitHub workflow commands


# The bundled problem: W0..W3 and B0..B3, so 8 parameter testcases + 1 loss testcase per backend.
CASES_PER_BACKEND = 9


def parse_junit(text: str) -> tuple[ET.Element, ET.Element]:
    """The root and the one testsuite of a JUnit XML report."""
    root = ET.fromstring(text.encode("utf-8"))
    assert root.tag == "testsuites"
    suites = root.findall("testsuite")
    assert len(suites) == 1, "one testsuite per run"
    return root, suites[0]


def junit_counts(suite: ET.Element) -> dict[str, int]:
    """Testcases, failures, errors and skips, counted from the testcases themselves."""
    cases = suite.findall("testcase")
    return {
        "tests": len(cases),
        "failures": sum(c.find("failure") is not None for c in cases),
        "errors": sum(c.find("error") is not None for c in cases),
        "skipped": sum(c.find("skipped") is not None for c in cases),
    }


def assert_attributes_match_contents(root: ET.Element, suite: ET.Element) -> None:
    """The testsuite's counts are those of its testcases; <testsuites> carries none (the Ant
    JUnit schema allows it no attributes)."""
    assert root.attrib == {}
    found = junit_counts(suite)
    for key, value in found.items():
        assert int(suite.get(key, "-1")) == value, key


# A GitHub workflow command: ::level key=value,...::message
COMMAND = re.compile(r"^::(?P<level>error|warning|notice)(?: (?P<props>[^:]*))?::(?P<data>.*)$")


def unescape(text: str) -> str:
    """The runner's decoding of workflow-command values, written independently of the package."""
    for code, char in (("%0D", "\r"), ("%0A", "\n"), ("%3A", ":"), ("%2C", ","), ("%25", "%")):
        text = text.replace(code, char)
    return text


def parse_command(line: str) -> tuple[str, dict[str, str], str]:
    """A workflow command line as (level, properties, message), decoded."""
    match = COMMAND.match(line)
    assert match, line
    props = {}
    for pair in filter(None, (match.group("props") or "").split(",")):
        key, value = pair.split("=", 1)
        props[key] = unescape(value)
    return match.group("level"), props, unescape(match.group("data"))


# Fuzzed problems (tests/verdict/test_fuzz.py, tests/fd/test_error_bars.py).
def torch_activation(name: str):  # type: ignore[no-untyped-def]
    """The activation `name` written with torch (imported here: the suite runs without it)."""
    import torch

    return {
        "relu": torch.relu,
        "tanh": torch.tanh,
        "sigmoid": torch.sigmoid,
        "leaky-relu": lambda z: torch.nn.functional.leaky_relu(z, 0.01),
        "identity": lambda z: z,
    }[name]


# How far from convergence "nearly converged" is, as a fraction of the outputs' size: float32
# cannot resolve a gradient much closer than this (its rounding is all there is).
CONVERGED = {"float64": (-9.0, -3.0), "float32": (-4.0, -2.0)}


def _forward(X: np.ndarray, W: list[np.ndarray], B: list[np.ndarray], act: str) -> np.ndarray:
    import torch

    A = torch.from_numpy(X)
    for i, (w, b) in enumerate(zip(W, B)):
        A = A @ torch.from_numpy(w) + torch.from_numpy(b)
        if i < len(W) - 1:
            A = torch_activation(act)(A)
    return A.numpy()


def random_targets(rng: np.random.Generator, loss: str, samples: int, outputs: int) -> Any:
    """Targets the loss takes: class labels, probabilities in [0, 1], or real values."""
    if loss == "cross-entropy":
        return rng.integers(0, outputs, size=samples)
    if loss == "bce":
        return rng.uniform(0, 1, size=(samples, outputs))
    return rng.standard_normal((samples, outputs))


def torch_loss(Y: Any, T: np.ndarray, loss: str) -> Any:
    """The loss of torch outputs Y against targets T, as torch computes it (T as labels, or
    in Y's dtype)."""
    import torch

    F = torch.nn.functional
    if loss == "cross-entropy":
        labels = T.ndim == 1
        return F.cross_entropy(Y, torch.tensor(T, dtype=torch.int64 if labels else Y.dtype))
    target = torch.tensor(T, dtype=Y.dtype)
    if loss == "bce":
        return F.binary_cross_entropy_with_logits(Y, target)
    return F.mse_loss(Y, target, reduction="mean" if loss == "mse" else "sum")


def fuzz_problem(seed: int, activation: str, loss: str, dtype: str, point: str) -> Problem:
    """A random MLP problem of 1-4 layers at the requested kind of point."""
    rng = np.random.default_rng(seed)
    depth = int(rng.integers(1, 5))
    outputs = int(rng.integers(2, 4)) if loss == "cross-entropy" else int(rng.integers(1, 4))
    widths = [int(rng.integers(1, 7)) for _ in range(depth)] + [outputs]
    samples = int(rng.integers(2, 11))
    X = rng.standard_normal((samples, widths[0]))
    W = [rng.standard_normal((a, b)) / np.sqrt(a) for a, b in zip(widths, widths[1:])]
    B = [0.1 * rng.standard_normal(b) for b in widths[1:]]
    if point == "kink" and depth >= 2:
        layer = int(rng.integers(0, depth - 1))
        Z = _forward(X, W[: layer + 1], B[: layer + 1], activation)
        row, unit = int(rng.integers(samples)), int(rng.integers(Z.shape[1]))
        B[layer][unit] -= Z[row, unit] - rng.choice([0.0, 1e-12, -1e-9])
    Y = _forward(X, W, B, activation)
    if point == "converged" and loss in ("mse", "sse"):
        low, high = CONVERGED[dtype]
        T = Y + 10.0 ** rng.uniform(low, high) * np.abs(Y).max() * rng.standard_normal(Y.shape)
    elif point == "converged":
        W[-1], B[-1] = 8 * W[-1], 8 * B[-1]  # confident outputs
        Y = _forward(X, W, B, activation)
        T = Y.argmax(axis=1) if loss == "cross-entropy" else (Y > 0).astype(float)
    else:
        T = random_targets(rng, loss, samples, outputs)
    source = f"fuzzed problem at a {point} point"
    return make_problem(X, T, W, B, activation=activation, loss=loss, dtype=dtype, source=source)


def careful_user(problem: Problem) -> list[np.ndarray]:
    """The gradient by torch autograd in the problem's dtype: what a careful user returns."""
    import torch

    dtype = torch.float64 if problem.dtype == "float64" else torch.float32
    params = [torch.tensor(p, dtype=dtype, requires_grad=True) for p in problem.parameters]
    k = problem.depth
    A = torch.tensor(problem.X, dtype=dtype)
    for i in range(k):
        A = A @ params[i] + params[k + i]
        if i < k - 1:
            A = torch_activation(problem.activation)(A)
    torch_loss(A, problem.T, problem.loss).backward()
    return [p.grad.numpy().astype(np.float64) for p in params]  # type: ignore[union-attr]
