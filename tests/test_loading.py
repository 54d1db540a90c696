"""Input formats (npz, CSV, torch state_dict, utils.py) and a corpus of bad inputs.

Every bad input must end in exit code 2, one line on stderr naming the problem, no traceback and
nothing on stdout; the same problem given in every format must give identical gradients.
"""

from __future__ import annotations

import json
import sys
import textwrap
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from gradcheck_cli import cli
from gradcheck_cli.backends import create_backend
from gradcheck_cli.errors import InputError
from gradcheck_cli.inputs import loading
from gradcheck_cli.inputs.loading import InputWarning, load_problem
from gradcheck_cli.problem import Problem
from tests.conftest import torch_reference

runner = CliRunner()

# numpy backprop against torch autograd in float64: only summation order differs.
REFERENCE_RTOL = 1e-10
REFERENCE_ATOL = 1e-13

LAYERS = [3, 4, 2]
SAMPLES = 5


def arrays(seed: int = 0) -> dict[str, np.ndarray]:
    """A small valid 3-4-2 problem as named arrays."""
    rng = np.random.default_rng(seed)
    named = {"X": rng.standard_normal((SAMPLES, 3)), "T": rng.standard_normal((SAMPLES, 2))}
    for i, (a, b) in enumerate(zip(LAYERS[:-1], LAYERS[1:])):
        named[f"W{i}"] = rng.standard_normal((a, b))
        named[f"B{i}"] = rng.standard_normal(b)
    return named


def params_of(named: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Only W0.., B0.."""
    return {k: v for k, v in named.items() if k[0] in "WB"}


def data_of(named: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Only X and T."""
    return {k: named[k] for k in ("X", "T")}


def sequential_for(named: dict[str, np.ndarray], dtype: torch.dtype = torch.float64) -> nn.Module:
    """An nn.Sequential(Linear, ReLU, Linear, ...) holding W0.., B0.. (weight = W.T)."""
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
# Round trips: the same problem in every format


def _formats(tmp_path: Path, named: dict[str, np.ndarray]) -> dict[str, dict[str, Path]]:
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


def _assert_same_arrays(problem: Problem, named: dict[str, np.ndarray]) -> None:
    assert np.array_equal(problem.X, named["X"])
    assert np.array_equal(problem.T, named["T"])
    for i, (w, b) in enumerate(zip(problem.weights, problem.biases)):
        assert np.array_equal(w, named[f"W{i}"]), f"W{i}"
        assert np.array_equal(b, named[f"B{i}"]), f"B{i}"


def test_every_format_loads_the_same_problem_and_gradients(tmp_path):
    named = arrays()
    expected_loss, expected_dW, expected_dB = torch_reference(
        loading.make_problem(
            named["X"], named["T"], [named["W0"], named["W1"]], [named["B0"], named["B1"]]
        )
    )
    gradients = {}
    for label, files in _formats(tmp_path, named).items():
        problem = load_problem(**files)
        _assert_same_arrays(problem, named)
        grads = create_backend("numpy").gradients(problem)
        gradients[label] = grads
        assert grads.loss is not None
        np.testing.assert_allclose(grads.loss, expected_loss, rtol=REFERENCE_RTOL)
        for got, want in zip(grads.dW, expected_dW):
            np.testing.assert_allclose(got, want, rtol=REFERENCE_RTOL, atol=REFERENCE_ATOL)
        assert grads.dB is not None
        for got, want in zip(grads.dB, expected_dB):
            np.testing.assert_allclose(got, want, rtol=REFERENCE_RTOL, atol=REFERENCE_ATOL)
    first = gradients.pop("one npz")
    for label, grads in gradients.items():  # identical, not merely close: the inputs are identical
        assert grads.loss == first.loss, label
        assert all(np.array_equal(a, b) for a, b in zip(grads.dW, first.dW)), label
        assert grads.dB is not None and first.dB is not None
        assert all(np.array_equal(a, b) for a, b in zip(grads.dB, first.dB)), label


def test_every_format_gives_the_same_cli_report(tmp_path):
    named = arrays(1)
    reports = {}
    for label, files in _formats(tmp_path, named).items():
        args = ["run", "--json", "-b", "numpy", "-b", "torch-functional"]
        for option, path in files.items():
            args += [f"--{option}", str(path)]
        result = runner.invoke(cli.app, args)
        assert result.exit_code == 0, (label, result.output)
        report = json.loads(result.stdout)
        reports[label] = [(b["loss"], b["first_weight_grad"]) for b in report["backends"]]
        assert report["problem"]["layers"] == LAYERS
    assert len({tuple(r) for r in reports.values()}) == 1, reports


def test_state_dict_layers_follow_numeric_module_order(tmp_path):
    # 6 Linear + 5 ReLU: module indices 0..10, so "10.weight" sorts before "2.weight" as text.
    rng = np.random.default_rng(2)
    widths = [3, 5, 4, 6, 3, 5, 2]
    named = {"X": rng.standard_normal((4, 3)), "T": rng.standard_normal((4, 2))}
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        named[f"W{i}"], named[f"B{i}"] = rng.standard_normal((a, b)), rng.standard_normal(b)
    net = sequential_for(named)
    assert "10.weight" in net.state_dict()
    torch.save(net.state_dict(), tmp_path / "deep.pt")
    np.savez(tmp_path / "d.npz", **data_of(named))
    problem = load_problem(tmp_path / "d.npz", tmp_path / "deep.pt")
    assert problem.layers == widths
    _assert_same_arrays(problem, named)


def test_state_dict_float32_widens_exactly_and_prefix_is_accepted(tmp_path):
    named = arrays(3)

    class Wrapper(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = sequential_for(named, dtype=torch.float32)

    state = Wrapper().state_dict()
    assert "net.0.weight" in state
    torch.save(state, tmp_path / "wrapped.pt")
    np.savez(tmp_path / "d.npz", **data_of(named))
    problem = load_problem(tmp_path / "d.npz", tmp_path / "wrapped.pt")
    assert np.array_equal(problem.weights[0], state["net.0.weight"].numpy().astype(np.float64).T)
    assert np.array_equal(problem.biases[1], state["net.2.bias"].numpy().astype(np.float64))


def test_utils_values_are_kept_exactly(tmp_path):
    third = 1.0 / 3.0  # not representable in float32: a float32 detour would change it
    (tmp_path / "exact.py").write_text(
        textwrap.dedent(
            f"""
            import numpy as np
            def getdata():
                X = [[{third!r}, 0.1, 2.0]] * 2      # plain Python lists
                T = np.array([[0.7], [{third!r}]])
                return X, T
            def getparams():
                W = [np.full((3, 2), {third!r}), np.float32([[0.5], [0.25]])]
                B = [[0.1, 0.2], [{third!r}]]
                return W, B
            """
        )
    )
    problem = load_problem(utils=tmp_path / "exact.py")
    assert problem.X[0, 0] == third and problem.X[1, 1] == 0.1
    assert problem.T[1, 0] == third
    assert problem.weights[0][2, 1] == third
    assert problem.biases[1][0] == third and problem.biases[0][0] == 0.1
    assert problem.weights[1][1, 0] == 0.25


def test_utils_may_return_torch_parameters_and_import_siblings(tmp_path):
    (tmp_path / "helper_gc.py").write_text("SCALE = 2.0\n")
    (tmp_path / "u.py").write_text(
        textwrap.dedent(
            """
            import torch
            from helper_gc import SCALE
            def getdata():
                return torch.ones(3, 2, dtype=torch.float64) * SCALE, torch.zeros(3, 1)
            def getparams():
                W = [torch.nn.Parameter(torch.full((2, 1), 0.5, dtype=torch.float64))]
                return W, [torch.nn.Parameter(torch.zeros(1))]
            """
        )
    )
    path_before = list(sys.path)
    problem = load_problem(utils=tmp_path / "u.py")
    assert sys.path == path_before  # the user's folder is on sys.path only while it runs
    assert np.array_equal(problem.X, np.full((3, 2), 2.0))
    assert problem.layers == [2, 1]
    assert problem.weights[0][0, 0] == 0.5


def test_utils_prints_go_to_stderr_so_json_stays_clean(tmp_path):
    named = arrays(7)
    utils = write_utils(tmp_path, named)
    utils.write_text("print('loading the course data')\n" + utils.read_text())
    result = runner.invoke(cli.app, ["run", "--json", "-b", "numpy", "--utils", str(utils)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["problem"]["layers"] == LAYERS
    assert "loading the course data" in result.stderr


def test_extra_keys_warn_but_load(tmp_path):
    named = arrays()
    np.savez(tmp_path / "all.npz", notes=np.zeros(2), W01=np.zeros((3, 4)), **named)
    with pytest.warns(InputWarning, match="ignoring extra keys W01, notes"):
        problem = load_problem(tmp_path / "all.npz")
    _assert_same_arrays(problem, named)
    result = runner.invoke(cli.app, ["inspect", "--data", str(tmp_path / "all.npz")])
    assert result.exit_code == 0
    assert "warning:" in result.stderr and "notes" in result.stderr


def test_single_t_column_csv_gives_labels_for_cross_entropy(tmp_path):
    rng = np.random.default_rng(4)
    X = rng.standard_normal((6, 3))
    labels = np.array([0, 1, 1, 0, 1, 0])
    (tmp_path / "d.csv").write_text(
        "a,b,c,T\n"
        + "".join(",".join(repr(float(v)) for v in x) + f",{t}\n" for x, t in zip(X, labels))
    )
    np.savez(tmp_path / "p.npz", **params_of(arrays()))
    problem = load_problem(tmp_path / "d.csv", tmp_path / "p.npz", loss="cross-entropy")
    assert np.array_equal(problem.X, X)
    assert np.array_equal(problem.T, labels)


# ----------------------------------------------------------------------------------------------
# The bad-input corpus: (name, builder) where builder(tmp_path) -> (CLI args, expected message).

Builder = Callable[[Path], tuple[list[str], str]]


def _npz(tmp_path: Path, name: str = "d.npz", **named: np.ndarray) -> str:
    np.savez(tmp_path / name, **named)
    return str(tmp_path / name)


def _with(change: dict[str, object], drop: tuple[str, ...] = ()) -> Builder:
    """A one-file npz problem with some arrays replaced or removed."""

    def build(tmp_path: Path) -> tuple[list[str], str]:
        named: dict[str, object] = {**arrays(), **change}
        for key in drop:
            named.pop(key)
        np.savez(tmp_path / "d.npz", **named)  # type: ignore[arg-type]
        return ["run", "--data", str(tmp_path / "d.npz")], ""

    return build


def _bytes(content: bytes, name: str = "d.npz", option: str = "--data") -> Builder:
    def build(tmp_path: Path) -> tuple[list[str], str]:
        (tmp_path / name).write_bytes(content)
        args = ["run", option, str(tmp_path / name)]
        if option == "--params":
            args += ["--data", _npz(tmp_path, "data.npz", **data_of(arrays()))]
        return args, ""

    return build


def _valid_npz_bytes() -> bytes:
    import io

    buffer = io.BytesIO()
    np.savez(buffer, **arrays())
    return buffer.getvalue()


def _crc_corrupted() -> bytes:
    content = bytearray(_valid_npz_bytes())
    start = content.find(b"\x93NUMPY") + 128  # inside X's data, past its header
    content[start : start + 16] = b"\xff" * 16
    return bytes(content)


def _npy_file(tmp_path: Path) -> tuple[list[str], str]:
    np.save(tmp_path / "x.npy", np.ones((3, 3)))
    return ["run", "--data", str(tmp_path / "x.npy")], ""


def _zip_of_text(tmp_path: Path) -> tuple[list[str], str]:
    with zipfile.ZipFile(tmp_path / "d.npz", "w") as archive:
        archive.writestr("X.txt", "1,2,3")
    return ["run", "--data", str(tmp_path / "d.npz")], ""


def _pt_as_data(tmp_path: Path) -> tuple[list[str], str]:
    torch.save(sequential_for(arrays()).state_dict(), tmp_path / "model.pt")
    return ["run", "--data", str(tmp_path / "model.pt")], ""


def _params_npz(change: dict[str, object], drop: tuple[str, ...] = ()) -> Builder:
    def build(tmp_path: Path) -> tuple[list[str], str]:
        named: dict[str, object] = {**params_of(arrays()), **change}
        for key in drop:
            named.pop(key)
        np.savez(tmp_path / "p.npz", **named)  # type: ignore[arg-type]
        data = _npz(tmp_path, "data.npz", **data_of(arrays()))
        return ["run", "--data", data, "--params", str(tmp_path / "p.npz")], ""

    return build


def _directory(tmp_path: Path) -> tuple[list[str], str]:
    (tmp_path / "folder.npz").mkdir()
    return ["run", "--data", str(tmp_path / "folder.npz")], ""


def _data_without_params(tmp_path: Path) -> tuple[list[str], str]:
    return ["run", "--data", _npz(tmp_path, **data_of(arrays()))], ""


def _csv(text: str, params: bool = True) -> Builder:
    def build(tmp_path: Path) -> tuple[list[str], str]:
        (tmp_path / "d.csv").write_text(text)
        args = ["run", "--data", str(tmp_path / "d.csv")]
        if params:
            args += ["--params", _npz(tmp_path, "p.npz", **params_of(arrays()))]
        return args, ""

    return build


def _csv_as_params(tmp_path: Path) -> tuple[list[str], str]:
    (tmp_path / "p.csv").write_text("a,b\n1,2\n")
    data = _npz(tmp_path, "data.npz", **data_of(arrays()))
    return ["run", "--data", data, "--params", str(tmp_path / "p.csv")], ""


def _pt(obj_factory: Callable[[], object]) -> Builder:
    def build(tmp_path: Path) -> tuple[list[str], str]:
        torch.save(obj_factory(), tmp_path / "p.pt")
        data = _npz(tmp_path, "data.npz", **data_of(arrays()))
        return ["run", "--data", data, "--params", str(tmp_path / "p.pt")], ""

    return build


def _pt_truncated(tmp_path: Path) -> tuple[list[str], str]:
    torch.save(sequential_for(arrays()).state_dict(), tmp_path / "full.pt")
    content = (tmp_path / "full.pt").read_bytes()
    return _bytes(content[: len(content) // 2], "p.pt", "--params")(tmp_path)


def _utils(source: str, *extra: str) -> Builder:
    def build(tmp_path: Path) -> tuple[list[str], str]:
        (tmp_path / "u.py").write_text(textwrap.dedent(source))
        return ["run", "--utils", str(tmp_path / "u.py"), *extra], ""

    return build


_GOOD_DATA = "import numpy as np\ndef getdata():\n    return np.ones((2, 3)), np.ones((2, 1))\n"


def _NO_BIAS_NET() -> dict[str, torch.Tensor]:
    return nn.Sequential(nn.Linear(3, 4, bias=False), nn.ReLU(), nn.Linear(4, 2)).state_dict()


def _BATCHNORM_NET() -> dict[str, torch.Tensor]:
    return nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2)).state_dict()


def _UNCHAINED_NET() -> dict[str, torch.Tensor]:
    return nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(5, 2)).state_dict()


_TINY_PARAMS = "def getparams():\n    return [[[1.0], [2.0]]], [[0.0]]\n"


def _nan_at(key: str, index: tuple[int, ...], value: float) -> dict[str, object]:
    array = arrays()[key].copy()
    array[index] = value
    return {key: array}


# (case name, builder, expected part of the one-line message)
CORPUS: list[tuple[str, Builder, str]] = [
    # --- files
    (
        "missing data file",
        lambda p: (["run", "--data", str(p / "nope.npz")], ""),
        "nope.npz: no such file",
    ),
    ("data is a directory", _directory, "folder.npz: is a directory"),
    ("empty npz", _bytes(b""), "d.npz: is empty, expected an .npz archive"),
    (
        "text file as npz",
        _bytes(b"X,T\n1,2\n"),
        "d.npz: not an .npz file (it is not a zip archive)",
    ),
    (
        "random bytes as npz",
        _bytes(bytes(range(256)) * 4),
        "not an .npz file (it is not a zip archive)",
    ),
    ("truncated npz", _bytes(_valid_npz_bytes()[:300]), "d.npz: corrupt or truncated .npz file"),
    ("npz missing its end", _bytes(_valid_npz_bytes()[:-30]), "corrupt or truncated .npz file"),
    (
        "npz with corrupted data",
        _bytes(_crc_corrupted()),
        "corrupt or truncated .npz file (Bad CRC-32",
    ),
    ("single .npy array", _npy_file, "x.npy: is a single .npy array; expected an .npz archive"),
    ("zip of non-arrays", _zip_of_text, "member 'X.txt' is not a NumPy array"),
    (
        "torch file as --data",
        _pt_as_data,
        "is not a NumPy array (a PyTorch file? give it as --params",
    ),
    (
        "object array",
        _with({"X": np.array([[1.0, "a", None]] * 5, dtype=object)}),
        "d.npz: X is an object array, which would need unpickling",
    ),
    (
        "string array",
        _with({"T": np.array([["a", "b"]] * 5)}),
        "T has dtype <U1; expected a numeric array",
    ),
    (
        "complex array",
        _with({"W0": np.ones((3, 4), dtype=complex)}),
        "W0 has dtype complex128; expected a numeric",
    ),
    # --- keys
    ("X missing", _with({}, drop=("X",)), "d.npz: key X missing"),
    ("T missing", _with({}, drop=("T",)), "d.npz: key T missing"),
    (
        "W1 missing",
        _params_npz({}, drop=("W1",)),
        "p.npz: W1 missing (expected W0..W1 and B0..B1; found W0, B0, B1)",
    ),
    ("B1 missing", _params_npz({}, drop=("B1",)), "p.npz: B1 missing (expected W0..W1 and B0..B1"),
    ("W0 missing, W1 present", _params_npz({}, drop=("W0",)), "p.npz: W0 missing"),
    (
        "params without weights",
        _params_npz({}, drop=("W0", "W1", "B0", "B1")),
        "p.npz: no weights found",
    ),
    (
        "data without parameters",
        _data_without_params,
        "holds no W0.., B0..; give the parameters with --params",
    ),
    # --- shapes
    ("W1 does not chain", _with({"W1": np.ones((5, 2))}), "W1 is (5, 2) but W0 outputs 4 features"),
    (
        "W0 transposed",
        _with({"W0": np.ones((4, 3))}),
        "W0 is (4, 3) but X has 3 features; expected (3, ...)",
    ),
    ("W1 is 1-D", _with({"W1": np.ones(4)}), "W1 has shape (4,); expected 2-D (in, out)"),
    ("B0 is 2-D", _with({"B0": np.ones((1, 4))}), "B0 has shape (1, 4); expected (4,) to match W0"),
    ("B1 wrong length", _with({"B1": np.ones(3)}), "B1 has shape (3,); expected (2,) to match W1"),
    ("X and T rows differ", _with({"T": np.ones((4, 2))}), "X has 5 rows but T has 4"),
    ("X is 1-D", _with({"X": np.ones(5)}), "X has shape (5,); expected 2-D (samples, features)"),
    (
        "T wrong width",
        _with({"T": np.ones((5, 3))}),
        "T has shape (5, 3) but the network outputs (5, 2)",
    ),
    ("T is a scalar", _with({"T": np.float64(1.0)}), "T has shape (); expected (5, 2) or (5,)"),
    ("T is 3-D", _with({"T": np.ones((5, 2, 1))}), "T has shape (5, 2, 1); expected (5, 2)"),
    ("empty X", _with({"X": np.ones((0, 3)), "T": np.ones((0, 2))}), "X is empty (shape (0, 3))"),
    (
        "empty weight",
        _with({"W1": np.ones((4, 0)), "B1": np.ones(0)}),
        "W1 is empty (shape (4, 0))",
    ),
    # --- values
    ("NaN in X", _with(_nan_at("X", (3, 1), np.nan)), "X[3, 1] is nan; all values must be finite"),
    (
        "inf in W1",
        _with(_nan_at("W1", (0, 1), np.inf)),
        "W1[0, 1] is inf; all values must be finite",
    ),
    ("-inf in T", _with(_nan_at("T", (4, 0), -np.inf)), "T[4, 0] is -inf"),
    ("NaN in B0", _with(_nan_at("B0", (2,), np.nan)), "B0[2] is nan"),
    # --- CSV
    (
        "csv without T column",
        _csv("a,b,c\n1,2,3\n"),
        "d.csv: header 'a,b,c' needs target columns named T",
    ),
    (
        "csv with text value",
        _csv("a,b,c,T0,T1\n1,2,3,4,5\n\n1,2,x,4,5\n"),
        "d.csv: not a numeric CSV table (line 4, column c: 'x' is not a number)",
    ),
    ("csv header only", _csv("a,b,c,T0,T1\n"), "d.csv: has a header but no data rows"),
    (
        "csv ragged rows",
        _csv("a,b,c,T0,T1\n1,2,3,4,5\n1,2,3\n"),
        "d.csv: not a numeric CSV table (line 3 has 3 columns; the header has 5)",
    ),
    (
        "csv header/row mismatch",
        _csv("a,b,c,T0,T1\n1,2,3,4\n"),
        "the header has 5 columns but the rows have 4",
    ),
    ("empty csv", _csv(""), "d.csv: is empty; expected a header row"),
    (
        "csv without --params",
        _csv("a,b,c,T0,T1\n1,2,3,4,5\n", params=False),
        "d.csv: a CSV holds only X and T; give the parameters with --params",
    ),
    ("csv as --params", _csv_as_params, "p.csv: a CSV cannot hold parameters"),
    ("NaN in csv", _csv("a,b,c,T0,T1\n1,2,3,4,5\n1,nan,3,4,5\n"), "X[1, 1] is nan"),
    # --- torch .pt
    (
        "whole pickled model",
        _pt(lambda: sequential_for(arrays())),
        "p.pt: refused by torch.load(weights_only=True): it holds a pickled Python object "
        "(torch.nn.modules.container.Sequential), not only tensors",
    ),
    (
        "random bytes .pt",
        _bytes(bytes(range(256)) * 4, "p.pt", "--params"),
        "p.pt: not a readable PyTorch file",
    ),
    ("empty .pt", _bytes(b"", "p.pt", "--params"), "p.pt: not a readable PyTorch file"),
    ("truncated .pt", _pt_truncated, "p.pt: not a readable PyTorch file (corrupt, truncated"),
    (
        "a tensor, not a dict",
        _pt(lambda: torch.ones(3)),
        "p.pt: holds a Tensor, expected a state_dict",
    ),
    (
        "training checkpoint",
        _pt(lambda: {"model": sequential_for(arrays()).state_dict(), "epoch": 3}),
        "p.pt: looks like a training checkpoint ('model' holds a dict)",
    ),
    (
        "Linear without bias",
        _pt(_NO_BIAS_NET),
        "p.pt: 0.bias missing; expected every Linear to have a weight and a bias",
    ),
    (
        "BatchNorm in the Sequential",
        _pt(_BATCHNORM_NET),
        "key '1.running_mean' is not '<index>.weight'",
    ),
    (
        "Linear layers do not chain",
        _pt(_UNCHAINED_NET),
        "p.pt: 2.weight is (2, 5), so its Linear takes 5 inputs, but 0.weight outputs 4",
    ),
    (
        "state_dict of two modules",
        _pt(
            lambda: {
                "a.0.weight": torch.ones(4, 3),
                "a.0.bias": torch.ones(4),
                "b.0.weight": torch.ones(2, 4),
                "b.0.bias": torch.ones(2),
            }
        ),
        "keys of several modules (a, b)",
    ),
    (
        "non-tensor value",
        _pt(lambda: {"0.weight": [1.0, 2.0], "0.bias": torch.ones(1)}),
        "0.weight is a list, expected a tensor",
    ),
    ("empty state_dict", _pt(dict), "p.pt: the state_dict is empty"),
    (
        "state_dict does not fit X",
        _pt(lambda: nn.Sequential(nn.Linear(2, 2)).state_dict()),
        "W0 is (2, 2) but X has 3 features",
    ),
    # --- utils.py
    (
        "utils file missing",
        lambda p: (["run", "--utils", str(p / "u.py")], ""),
        "u.py: no such file",
    ),
    ("utils syntax error", _utils("def getdata(:\n    pass\n"), "u.py: line 1:"),
    (
        "utils import fails",
        _utils("import no_such_module_gc\n"),
        "u.py: raised ModuleNotFoundError: No module named 'no_such_module_gc' (u.py, line 1) "
        "while being run",
    ),
    (
        "utils calls exit",
        _utils("import sys\nsys.exit(3)\n"),
        "raised SystemExit: 3 (u.py, line 2) while being run",
    ),
    (
        "utils without getdata",
        _utils("def getparams():\n    return [], []\n"),
        "u.py: defines no function getdata(); expected getdata() -> (X, T)",
    ),
    (
        "utils without getparams",
        _utils(_GOOD_DATA),
        "u.py: defines no function getparams(); expected getparams() -> (W, B)",
    ),
    (
        "getdata raises",
        _utils("def getdata():\n    raise ValueError('data.csv not found')\n"),
        "u.py: getdata() raised ValueError: data.csv not found (u.py, line 2)",
    ),
    (
        "getparams raises",
        _utils(_GOOD_DATA + "def getparams():\n    return 1 / 0\n"),
        "getparams() raised ZeroDivisionError: division by zero (u.py, line 5)",
    ),
    (
        "getdata returns one array",
        _utils("import numpy as np\ndef getdata():\n    return np.ones((2, 3))\n"),
        "u.py: getdata() returned one ndarray; expected a pair (X, T)",
    ),
    (
        "getdata returns 3 values",
        _utils("def getdata():\n    return 1, 2, 3\n"),
        "getdata() returned 3 values; expected 2: (X, T)",
    ),
    (
        "getparams W is a dict",
        _utils(_GOOD_DATA + "def getparams():\n    return {'W0': 1}, []\n"),
        "getparams() returned W as a dict; expected a list of arrays [W0, W1, ...]",
    ),
    (
        "W and B lengths differ",
        _utils(
            _GOOD_DATA
            + "import numpy as np\ndef getparams():\n"
            + "    return [np.ones((3, 1)), np.ones((1, 1))], [np.ones(1)]\n"
        ),
        "u.py: 2 weight arrays but 1 bias arrays",
    ),
    (
        "ragged nested list",
        _utils("def getdata():\n    return [[1, 2], [3]], [[1], [2]]\n" + _TINY_PARAMS),
        "u.py: X is not a rectangular numeric array (its rows have different lengths)",
    ),
    (
        "None in the data",
        _utils("def getdata():\n    return [[1.0, None]], [[1.0]]\n" + _TINY_PARAMS),
        "u.py: X has dtype object; expected a numeric array",
    ),
    (
        "utils with --data",
        _utils(_GOOD_DATA, "--data", "d.npz"),
        "give either --utils or --data/--params, not both",
    ),
    # --- options
    (
        "unknown backend",
        lambda p: (["run", "--backend", "jax"], ""),
        "unknown backend 'jax'; choose from: numpy",
    ),
]


@pytest.mark.parametrize("name, build, message", CORPUS, ids=[c[0] for c in CORPUS])
def test_bad_input_exits_2_with_one_clear_line(tmp_path, name, build, message):
    args, _ = build(tmp_path)
    assert_bad_input(args, message)


@pytest.mark.parametrize("name, build, message", CORPUS[:5], ids=[c[0] for c in CORPUS[:5]])
def test_inspect_reports_bad_input_the_same_way(tmp_path, name, build, message):
    args, _ = build(tmp_path)
    assert_bad_input(["inspect", *args[1:]], message)


def test_malicious_pickle_in_pt_is_never_executed(tmp_path):
    marker = tmp_path / "pwned"

    class Payload:
        def __init__(self, target: Path) -> None:
            self.target = target

        def __reduce__(self):  # what an attacker's file does: unpickling runs exec(...)
            return (exec, (f"open({str(self.target)!r}, 'w').close()",))

    # The payload is real: loading it the unsafe way does create its file.
    control = tmp_path / "control"
    torch.save({"0.weight": Payload(control)}, tmp_path / "control.pt")
    torch.load(tmp_path / "control.pt", weights_only=False)
    assert control.exists()

    torch.save({"0.weight": Payload(marker), "0.bias": torch.ones(2)}, tmp_path / "evil.pt")
    data = _npz(tmp_path, "data.npz", **data_of(arrays()))
    stderr = assert_bad_input(
        ["run", "--data", data, "--params", str(tmp_path / "evil.pt")],
        "evil.pt: refused by torch.load(weights_only=True): it holds a pickled Python object "
        "(exec), not only tensors, and gradcheck never runs code from a data file",
    )
    assert "state_dict()" in stderr
    assert not marker.exists()
    with pytest.raises(InputError):
        load_problem(data, tmp_path / "evil.pt")
    assert not marker.exists()


def test_object_array_npz_is_never_unpickled(tmp_path):
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (exec, (f"open({str(marker)!r}, 'w').close()",))

    np.savez(tmp_path / "d.npz", X=np.array([Payload()], dtype=object), T=np.ones(1))
    assert_bad_input(["run", "--data", str(tmp_path / "d.npz")], "X is an object array")
    assert not marker.exists()


def test_help_says_utils_runs_the_file():
    result = runner.invoke(cli.app, ["run", "--help"], env={"COLUMNS": "200"})
    text = " ".join(result.output.replace("│", " ").split())
    assert "--utils" in text
    assert "This RUNS the file's code: use only files you trust." in text


# ----------------------------------------------------------------------------------------------
# Internal errors through the CLI: one line without --debug, the traceback with it


def _explode(*args: object, **kwargs: object) -> Problem:
    raise RuntimeError("boom in the loader")


def test_internal_error_is_one_line_with_a_debug_hint(monkeypatch):
    monkeypatch.setattr(loading, "load_problem", _explode)
    result = runner.invoke(cli.app, ["run"])
    assert result.exit_code == 3
    assert "internal error: RuntimeError: boom in the loader (rerun with --debug" in result.stderr
    assert "Traceback" not in result.output
    assert result.stdout == ""


def test_debug_shows_the_traceback(monkeypatch):
    monkeypatch.setattr(loading, "load_problem", _explode)
    result = runner.invoke(cli.app, ["--debug", "inspect"])
    assert result.exit_code == 3
    assert "Traceback (most recent call last)" in result.stderr
    assert "_explode" in result.stderr and "RuntimeError: boom in the loader" in result.stderr


def test_debug_keeps_bad_input_to_one_line(tmp_path):
    result = runner.invoke(cli.app, ["--debug", "run", "--data", str(tmp_path / "nope.npz")])
    assert result.exit_code == 2
    assert "nope.npz: no such file" in result.stderr
    assert "Traceback" not in result.output
