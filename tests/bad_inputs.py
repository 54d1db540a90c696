"""The corpus of bad inputs: each case builds files in a folder and gives the CLI arguments
that read them, with the part of the one-line error message they must produce.

Shared by the `gradcheck run` and `gradcheck inspect` tests, which must report them alike.
"""

from __future__ import annotations

import textwrap
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest

from tests.helpers import arrays, data_of, params_of, sequential_for

if TYPE_CHECKING:
    import torch

# builder(tmp_path) writes the files of one case and returns (CLI args, "").
Builder = Callable[[Path], tuple[list[str], str]]


def write_npz(tmp_path: Path, name: str = "d.npz", **named: np.ndarray) -> str:
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
            args += ["--data", write_npz(tmp_path, "data.npz", **data_of(arrays()))]
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
    import torch

    torch.save(sequential_for(arrays()).state_dict(), tmp_path / "model.pt")
    return ["run", "--data", str(tmp_path / "model.pt")], ""


def _params_npz(change: dict[str, object], drop: tuple[str, ...] = ()) -> Builder:
    def build(tmp_path: Path) -> tuple[list[str], str]:
        named: dict[str, object] = {**params_of(arrays()), **change}
        for key in drop:
            named.pop(key)
        np.savez(tmp_path / "p.npz", **named)  # type: ignore[arg-type]
        data = write_npz(tmp_path, "data.npz", **data_of(arrays()))
        return ["run", "--data", data, "--params", str(tmp_path / "p.npz")], ""

    return build


def _directory(tmp_path: Path) -> tuple[list[str], str]:
    (tmp_path / "folder.npz").mkdir()
    return ["run", "--data", str(tmp_path / "folder.npz")], ""


def _data_without_params(tmp_path: Path) -> tuple[list[str], str]:
    return ["run", "--data", write_npz(tmp_path, **data_of(arrays()))], ""


def _csv(text: str, params: bool = True) -> Builder:
    def build(tmp_path: Path) -> tuple[list[str], str]:
        (tmp_path / "d.csv").write_text(text)
        args = ["run", "--data", str(tmp_path / "d.csv")]
        if params:
            args += ["--params", write_npz(tmp_path, "p.npz", **params_of(arrays()))]
        return args, ""

    return build


def _csv_as_params(tmp_path: Path) -> tuple[list[str], str]:
    (tmp_path / "p.csv").write_text("a,b\n1,2\n")
    data = write_npz(tmp_path, "data.npz", **data_of(arrays()))
    return ["run", "--data", data, "--params", str(tmp_path / "p.csv")], ""


def _pt(obj_factory: Callable[[], object]) -> Builder:
    def build(tmp_path: Path) -> tuple[list[str], str]:
        import torch

        torch.save(obj_factory(), tmp_path / "p.pt")
        data = write_npz(tmp_path, "data.npz", **data_of(arrays()))
        return ["run", "--data", data, "--params", str(tmp_path / "p.pt")], ""

    return build


def _pt_truncated(tmp_path: Path) -> tuple[list[str], str]:
    import torch

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
    from torch import nn

    return nn.Sequential(nn.Linear(3, 4, bias=False), nn.ReLU(), nn.Linear(4, 2)).state_dict()


def _BATCHNORM_NET() -> dict[str, torch.Tensor]:
    from torch import nn

    return nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2)).state_dict()


def _UNCHAINED_NET() -> dict[str, torch.Tensor]:
    from torch import nn

    return nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(5, 2)).state_dict()


def _torch() -> Any:
    import torch

    return torch


_TINY_PARAMS = "def getparams():\n    return [[[1.0], [2.0]]], [[0.0]]\n"


def _nan_at(key: str, index: tuple[int, ...], value: float) -> dict[str, object]:
    array = arrays()[key].copy()
    array[index] = value
    return {key: array}


# (case name, builder, expected part of the one-line message)
BAD_INPUTS: list[tuple[str, Builder, str]] = [
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
        _pt(lambda: _torch().ones(3)),
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
                "a.0.weight": _torch().ones(4, 3),
                "a.0.bias": _torch().ones(4),
                "b.0.weight": _torch().ones(2, 4),
                "b.0.bias": _torch().ones(2),
            }
        ),
        "keys of several modules (a, b)",
    ),
    (
        "non-tensor value",
        _pt(lambda: {"0.weight": [1.0, 2.0], "0.bias": _torch().ones(1)}),
        "0.weight is a list, expected a tensor",
    ),
    ("empty state_dict", _pt(dict), "p.pt: the state_dict is empty"),
    (
        "state_dict does not fit X",
        _pt(lambda: _torch().nn.Sequential(_torch().nn.Linear(2, 2)).state_dict()),
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


# Cases whose files are written or read with PyTorch: skipped where it is not installed.
TORCH_CASES = frozenset(
    {
        "torch file as --data",
        "whole pickled model",
        "random bytes .pt",
        "empty .pt",
        "truncated .pt",
        "a tensor, not a dict",
        "training checkpoint",
        "Linear without bias",
        "BatchNorm in the Sequential",
        "Linear layers do not chain",
        "state_dict of two modules",
        "non-tensor value",
        "empty state_dict",
        "state_dict does not fit X",
    }
)
assert TORCH_CASES <= {name for name, _, _ in BAD_INPUTS}, "a case was renamed"


def bad_input_params(cases: list[tuple[str, Builder, str]] = BAD_INPUTS) -> list[Any]:
    """The cases as pytest parameters named by the case, those that need PyTorch marked."""
    return [
        pytest.param(*case, id=case[0], marks=[pytest.mark.torch] if case[0] in TORCH_CASES else [])
        for case in cases
    ]
