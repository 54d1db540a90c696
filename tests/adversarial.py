"""An adversarial corpus, generated at test time: user code that exits, crashes, hangs or reaches
for the tool's own state; resource bombs (small files that declare huge arrays); configs that
point outside their project; outputs that would replace an input or cannot be written; numbers
that overflow; texts that would forge CI commands.

Each case writes its files into a folder and gives the CLI arguments; the test runs it and
checks the contract: the expected exit code (never 0 on a wrong or unusable gradient, never 3),
bad input as one line on stderr with nothing on stdout, `--json` stdout strict JSON, and no line
of output that a CI runner would obey except gradcheck's own annotations.
"""

from __future__ import annotations

import json
import os
import pickle
import textwrap
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tests.helpers import USER_CORPUS, arrays, data_of, params_of

Build = Callable[[Path], list[str]]
CORRECT = (USER_CORPUS / "correct.py").read_text()


@dataclass(frozen=True)
class Case:
    """One adversarial input: what to run, the exit code, a part of the error, more checks."""

    name: str
    build: Build
    code: int
    message: str = ""
    check: Callable[[Path, object], None] | None = None
    torch: bool = False  # needs PyTorch (its backends, or .pt files): skipped without it


def _user(source: str, *extra: str, output: tuple[str, ...] = ("--json",)) -> Build:
    """--user FILE:general on the bundled problem, numpy as the reference, JSON on stdout."""

    def build(tmp: Path) -> list[str]:
        (tmp / "mine.py").write_text(textwrap.dedent(source))
        return ["run", "-b", "numpy", *output, "--user", f"{tmp / 'mine.py'}:general", *extra]

    return build


def _two_users(source: str) -> Build:
    """A misbehaving function first, then a correct one: the second must still pass."""

    def build(tmp: Path) -> list[str]:
        (tmp / "mine.py").write_text(textwrap.dedent(source))
        (tmp / "right.py").write_text(CORRECT)
        users = ["--user", f"{tmp / 'mine.py'}:general", "--user", f"{tmp / 'right.py'}:general"]
        return ["run", "-b", "numpy", "--json", *users]

    return build


def _only_the_first_user_fails(tmp: Path, result: object) -> None:
    report = json.loads(result.stdout)  # type: ignore[attr-defined]
    assert [b["ok"] for b in report["backends"]] == [True, False, True], report["backends"]


def _utils(source: str, *extra: str) -> Build:
    def build(tmp: Path) -> list[str]:
        (tmp / "u.py").write_text(textwrap.dedent(source))
        return ["run", "-b", "numpy", "--json", "--utils", str(tmp / "u.py"), *extra]

    return build


_DATA = "import numpy as np\ndef getdata():\n    return np.ones((2, 3)), np.ones((2, 1))\n"
_PARAMS = "def getparams():\n    return [[[1.0], [2.0], [3.0]]], [[0.0]]\n"


def _npz(tmp: Path, name: str = "d.npz", **change: object) -> str:
    named: dict[str, object] = {**arrays(), **change}
    np.savez(tmp / name, **named)  # type: ignore[arg-type]
    return str(tmp / name)


def _data(change: dict[str, object], *extra: str) -> Build:
    def build(tmp: Path) -> list[str]:
        return ["run", "-b", "numpy", "--json", "--data", _npz(tmp, **change), *extra]

    return build


def _header_bomb(tmp: Path) -> list[str]:
    """An .npz whose X.npy header declares (10**6, 10**6) float64 (7.3 TB) in a few bytes."""
    path = tmp / "bomb.npz"
    header = "{'descr': '<f8', 'fortran_order': False, 'shape': (1000000, 1000000), }"
    header += " " * (63 - (len(header) + 10) % 64) + "\n"
    npy = b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode() + b"\0" * 64
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("X.npy", npy)
    return ["run", "--data", str(path), "--params", _npz(tmp, "p.npz")]


def _zip_bomb(tmp: Path) -> list[str]:
    """6 MB of zeros compressed to a few kB, read under a 1 MB budget."""
    path = tmp / "bomb.npz"
    named = {**data_of(arrays()), "X": np.zeros((250_000, 3))}
    np.savez_compressed(path, **named)  # type: ignore[arg-type]
    return ["run", "--data", str(path), "--max-input-mb", "1"]


def _expanded_pt(tmp: Path) -> list[str]:
    """A 2 kB .pt whose tensors, expanded, are 80 GB as float64."""
    import torch

    big = {"0.weight": torch.zeros(1).expand(100_000, 100_000), "0.bias": torch.zeros(1)}
    big["0.bias"] = big["0.bias"].expand(100_000)
    torch.save(big, tmp / "p.pt")
    return ["run", "--data", _npz(tmp), "--params", str(tmp / "p.pt")]


class _Payload:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, ("echo pwned",))


def _pickle_pt(tmp: Path) -> list[str]:
    with open(tmp / "p.pt", "wb") as handle:
        pickle.dump({"0.weight": _Payload()}, handle, protocol=2)
    return ["run", "--data", _npz(tmp), "--params", str(tmp / "p.pt")]


def _pickle_in_zip_pt(tmp: Path) -> list[str]:
    import torch

    torch.save({"0.weight": torch.ones(2, 3), "0.bias": torch.ones(2)}, tmp / "ok.pt")
    with zipfile.ZipFile(tmp / "ok.pt") as source, zipfile.ZipFile(tmp / "p.pt", "w") as out:
        for info in source.infolist():
            content = source.read(info)
            if info.filename.endswith("data.pkl"):
                content = pickle.dumps({"0.weight": _Payload()}, protocol=2)
            out.writestr(info, content)
    return ["run", "--data", _npz(tmp), "--params", str(tmp / "p.pt")]


def _wide_hidden_layer(tmp: Path) -> list[str]:
    """A 640 kB file whose 20,000-unit hidden layer over 20,000 samples is 6 GB of values."""
    n = 20_000
    named = {"X": np.ones((n, 1)), "T": np.ones((n, 1)), "W0": np.ones((1, n)), "B0": np.zeros(n)}
    np.savez(tmp / "d.npz", **named, W1=np.ones((n, 1)), B1=np.zeros(1))
    return ["run", "-b", "numpy", "--data", str(tmp / "d.npz")]


def _padded_convolution(tmp: Path) -> list[str]:
    """A 1x1 convolution padded by 100,000: 40 billion outputs per image from a few bytes."""
    params = {"0.weight": np.ones((1, 1, 1, 1)), "0.bias": np.zeros(1)}
    np.savez(tmp / "p.npz", **params, **{"3.weight": np.ones((2, 1)), "3.bias": np.zeros(2)})
    np.savez(tmp / "d.npz", X=np.ones((2, 1, 1, 1)), T=np.array([0, 1]))
    layers = "Conv2d(1,1,1,padding=100000), MaxPool2d(200001), Flatten, Linear(1,2)"
    files = ["--data", str(tmp / "d.npz"), "--params", str(tmp / "p.npz")]
    return ["run", "-b", "numpy", *files, "--layers", layers, "--loss", "cross-entropy"]


def _layers(text: str, *extra: str) -> Build:
    """--layers TEXT over 6 samples of 4 features; parameters of Linear(4,5)-ReLU-Linear(5,2)."""

    def build(tmp: Path) -> list[str]:
        rng = np.random.default_rng(0)
        params = {"0.weight": rng.standard_normal((5, 4)), "0.bias": np.zeros(5)}
        params |= {"2.weight": rng.standard_normal((2, 5)), "2.bias": np.zeros(2)}
        np.savez(tmp / "p.npz", **params)
        np.savez(tmp / "d.npz", X=rng.standard_normal((6, 4)), T=rng.standard_normal((6, 2)))
        files = ["--data", str(tmp / "d.npz"), "--params", str(tmp / "p.npz")]
        return ["run", "-b", "numpy", *files, "--layers", text, *extra]

    return build


def _odd_key(tmp: Path) -> list[str]:
    """A state_dict whose extra key holds a line break and a workflow command."""
    import torch

    torch.manual_seed(0)
    state = {"0.weight": torch.randn(5, 4), "0.bias": torch.zeros(5)}
    state |= {"2.weight": torch.randn(2, 5), "2.bias": torch.zeros(2)}
    torch.save({**state, "x\n::error::forged": torch.zeros(1)}, tmp / "p.pt")
    args = _layers("Linear(4, 5), ReLU, Linear(5, 2)")(tmp)
    args[args.index("--params") + 1] = str(tmp / "p.pt")
    return args


_MODELS = """
import torch
from torch import nn

def shared_relu():
    torch.manual_seed(0)
    act = nn.ReLU()
    return nn.Sequential(nn.Linear(4, 5), act, nn.Linear(5, 5), act, nn.Linear(5, 2))

def shared_linear():
    layer = nn.Linear(4, 4)
    return nn.Sequential(layer, nn.ReLU(), layer, nn.Linear(4, 2))

def complex_weight():
    model = nn.Sequential(nn.Linear(4, 2))
    model[0].weight = nn.Parameter(torch.ones(2, 4, dtype=torch.complex64))
    return model

class Linear(nn.Module):
    def __init__(self):
        super().__init__()
        self.in_features, self.out_features = 16 ** 5000, 2

def huge_size():
    return nn.Sequential(Linear())

def doubling_hook():
    model = nn.Sequential(nn.Linear(4, 5), nn.ReLU(), nn.Linear(5, 2))
    model[1].register_forward_hook(lambda module, inputs, output: 2 * output)
    return model
"""


def _model(function: str, *extra: str) -> Build:
    """--model FILE:FUNC (a function of _MODELS) over 6 samples of 4 features."""

    def build(tmp: Path) -> list[str]:
        (tmp / "m.py").write_text(_MODELS)
        args = _layers("")(tmp)
        return [*args[: args.index("--params")], "--model", f"{tmp / 'm.py'}:{function}", *extra]

    return build


def _every_layer_checked(tmp: Path, result: object) -> None:
    report = json.loads(result.stdout)  # type: ignore[attr-defined]
    assert report["problem"]["layers"][3] == "ReLU()", report["problem"]["layers"]


def _csv_rows(tmp: Path) -> list[str]:
    rows = "".join("1,2,3,0.5\n" for _ in range(40_000))
    (tmp / "d.csv").write_text("a,b,c,T\n" + rows)
    np.savez(tmp / "p.npz", **params_of(arrays()))  # type: ignore[arg-type]
    return [
        "run",
        "--data",
        str(tmp / "d.csv"),
        "--params",
        str(tmp / "p.npz"),
        "--max-input-mb",
        "1",
    ]


def _csv_field(tmp: Path) -> list[str]:
    (tmp / "d.csv").write_text("a" * 200_000 + ",T\n1,2\n")
    return ["run", "--data", str(tmp / "d.csv"), "--params", _npz(tmp, "p.npz")]


def _fifo(option: str) -> Build:
    def build(tmp: Path) -> list[str]:
        os.mkfifo(tmp / "fifo")  # reading it would block forever
        if option == "--user":
            return ["run", "--user", f"{tmp / 'fifo'}:f"]
        return ["run", option, str(tmp / "fifo")]

    return build


def _config(body: str, *extra: str, command: str = "run") -> Build:
    """A project folder with a pyproject.toml; files outside it that must stay untouched."""

    def build(tmp: Path) -> list[str]:
        project = tmp / "project"
        project.mkdir()
        (tmp / "outside.py").write_text(
            f"open({str(tmp / 'ran')!r}, 'w').write('ran')\n" + CORRECT + _DATA + _PARAMS
        )
        (project / "pyproject.toml").write_text("[tool.gradcheck]\n" + textwrap.dedent(body))
        return [command, "--config", str(project / "pyproject.toml"), *extra]

    return build


def _nothing_ran_or_written(tmp: Path, result: object) -> None:
    assert not (tmp / "ran").exists(), "code outside the project ran"
    assert not (tmp / "out.xml").exists() and not (tmp / "x.md").exists()


def _config_file(content: bytes | str) -> Build:
    def build(tmp: Path) -> list[str]:
        path = tmp / "gradcheck.toml"
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
        return ["run", "--config", str(path)]

    return build


def _junit(target: Callable[[Path], str]) -> Build:
    def build(tmp: Path) -> list[str]:
        data = _npz(tmp)
        return ["run", "-b", "numpy", "--data", data, "--junit", target(tmp)]

    return build


def _data_unchanged(tmp: Path, result: object) -> None:
    with np.load(tmp / "d.npz") as archive:
        assert set(archive.files) == set(arrays())


CASES: list[Case] = [
    # --- user functions: whatever they do, it is their failure, never a pass
    Case(
        "os._exit(0) in the call",
        _user("import os\ndef general(X, T, W, B):\n    os._exit(0)\n"),
        1,
        "exited with code 0",
    ),
    Case("os._exit(0) at import", _user("import os\nos._exit(0)\n"), 1, "exited with code 0"),
    Case(
        "os._exit(5)",
        _user("import os\ndef general(X, T, W, B):\n    os._exit(5)\n"),
        1,
        "exited with code 5",
    ),
    Case(
        "sys.exit(0)",
        _user("import sys\ndef general(X, T, W, B):\n    sys.exit(0)\n"),
        1,
        "SystemExit: 0",
    ),
    Case(
        "SIGKILL",
        _user(
            "import os, signal\n"
            "def general(X, T, W, B):\n    os.kill(os.getpid(), signal.SIGKILL)\n"
        ),
        1,
        "killed by SIGKILL",
    ),
    Case(
        "segfault",
        _user("import ctypes\ndef general(X, T, W, B):\n    ctypes.string_at(0)\n"),
        1,
        "killed by SIGSEGV",
    ),
    Case(
        "hangs in the call",
        _user("import time\ndef general(X, T, W, B):\n    time.sleep(60)\n", "--timeout", "0.5"),
        1,
        "within the 0.5 s timeout",
    ),
    Case(
        "hangs at import",
        _user("import time\ntime.sleep(60)\n", "--timeout", "0.5"),
        1,
        "within the 0.5 s timeout",
    ),
    Case(
        "BaseException subclass",
        _user(
            "class Boom(BaseException):\n    pass\ndef general(X, T, W, B):\n    raise Boom('no')\n"
        ),
        1,
        "Boom: no",
    ),
    Case(
        "KeyboardInterrupt",
        _user("def general(X, T, W, B):\n    raise KeyboardInterrupt\n"),
        1,
        "KeyboardInterrupt",
    ),
    Case(
        "returns more than the budget",
        _user(
            "import numpy as np\n"
            "def general(X, T, W, B):\n    return [np.zeros(300_000)] * len(W), B\n",
            "--max-input-mb",
            "1",
        ),
        1,
        "of arrays, more than the input budget of 1 MB",
    ),
    Case(
        "prints through every channel, changes global state",
        _user(
            textwrap.dedent(
                """
            import os, sys, threading, time, torch, numpy as np
            torch.set_grad_enabled(False)
            torch.set_default_dtype(torch.float32)
            np.seterr(all="raise")
            os.system("echo from-os-system")
            os.write(1, b"raw write to fd 1\\n")
            print("print at import")
            sys.stdout = sys.stderr
            threading.Thread(target=lambda: (time.sleep(0.2), print("late thread"))).start()
            """
            )
            + CORRECT,
            "-b",
            "torch-functional",
            "-b",
            "torch-sequential",
        ),
        0,
        torch=True,
    ),
    Case(
        "forges workflow commands",
        _user(
            "def general(X, T, W, B):\n    print('::error::forged by print')\n"
            "    raise ValueError('bad\\n::notice::forged in the message\\r##[error]old form')\n",
            output=("--format", "github"),
        ),
        1,
    ),
    Case(
        "kills its parent (the fork server), next to a correct function",
        _two_users(
            "import os, signal\n"
            "def general(X, T, W, B):\n    os.kill(os.getppid(), signal.SIGKILL)\n"
        ),
        1,
        check=_only_the_first_user_fails,
    ),
    Case(
        "leaves a daemon behind",
        _user(
            "import os, time\n"
            "def general(X, T, W, B):\n"
            "    if os.fork() == 0:\n"
            "        os.setsid()\n"
            "        time.sleep(2)\n"
            "        os.write(1, b'::error::late daemon')\n"
            "        os._exit(0)\n"
            "    raise ValueError('done')\n"
        ),
        1,
        "ValueError: done",
    ),
    # --- utils files: whatever they do, it is bad input
    Case(
        "utils os._exit(0) at import", _utils("import os\nos._exit(0)\n"), 2, "exited with code 0"
    ),
    Case(
        "utils getdata os._exit(0)",
        _utils("import os\ndef getdata():\n    os._exit(0)\n" + _PARAMS),
        2,
        "exited with code 0",
    ),
    Case(
        "utils hangs",
        _utils(_DATA + "import time\ndef getparams():\n    time.sleep(60)\n", "--timeout", "0.5"),
        2,
        "within the 0.5 s timeout",
    ),
    Case(
        "utils BaseException",
        _utils("class Boom(BaseException):\n    pass\nraise Boom('x')\n"),
        2,
        "raised Boom: x",
    ),
    Case(
        "utils over the budget",
        _utils(
            "import numpy as np\n"
            "def getdata():\n    return np.ones((300_000, 3)), np.ones((300_000, 1))\n" + _PARAMS,
            "--max-input-mb",
            "1",
        ),
        2,
        "more than the input budget",
    ),
    # --- resource bombs and special files
    Case(".npy header of (10**6, 10**6)", _header_bomb, 2, "declares shape (1000000, 1000000)"),
    Case("compressed .npz over the budget", _zip_bomb, 2, "more than the input budget of 1 MB"),
    Case(".pt expanded to 80 GB", _expanded_pt, 2, "more than the input budget", torch=True),
    Case(
        ".pt pickle with code",
        _pickle_pt,
        2,
        "holds a pickled Python object (posix.system)",
        torch=True,
    ),
    Case(
        ".pt zip with code",
        _pickle_in_zip_pt,
        2,
        "holds a pickled Python object (posix.system)",
        torch=True,
    ),
    Case("CSV rows over the budget", _csv_rows, 2, "40000 rows of 4 columns"),
    Case("hidden layer of 6 GB from a small file", _wide_hidden_layer, 2, "holds 5.96 GB, more"),
    Case("padded convolution of 1.75 TB", _padded_convolution, 2, "holds 1.75 TB, more than"),
    Case(
        "--layers of bytes not UTF-8",
        _layers("(\udcff): Linear(4, 5), ReLU, Linear(5, 2)"),
        2,
        "not valid text: '\\udcff' at position 1",
    ),
    Case(
        "--layers nested 100,000 deep",
        _layers("Linear(" + "-" * 100_000 + "4, 5), ReLU, Linear(5, 2)"),
        2,
        "is nested too deeply to be a layer",
    ),
    Case(
        "--layers with a 400-digit slope",
        _layers("Linear(4, 5), LeakyReLU(" + "9" * 400 + "), Linear(5, 2)"),
        2,
        "negative_slope must be finite",
    ),
    Case(
        "state_dict key with a line break",
        _odd_key,
        2,
        "x\\n::error::forged not a parameter of these layers",
        torch=True,
    ),
    Case(
        "--model with one ReLU module used twice",
        _model("shared_relu", "--json"),
        0,
        check=_every_layer_checked,  # named_children() gave it once: the second was dropped
        torch=True,
    ),
    Case(
        "--model with a forward hook that doubles an output",
        _model("doubling_hook"),
        2,
        "module 1 has a forward hook, which the check cannot reproduce; remove it",
        torch=True,
    ),
    Case(
        "--model with one Linear used twice",
        _model("shared_linear"),
        2,
        "module 2 is module 0 again (shared weights)",
        torch=True,
    ),
    Case(
        "--model with a complex weight",
        _model("complex_weight"),
        2,
        "0.weight is complex (torch.complex64); expected real numbers",
        torch=True,
    ),
    Case(
        "--model with a 6000-digit in_features",
        _model("huge_size"),
        2,
        "in_features is a whole number too large for any size",
        torch=True,
    ),
    Case(
        "--layers with a 5000-digit size",
        _layers("Linear(4, 0x" + "F" * 5000 + "), ReLU, Linear(5, 2)"),
        2,
        "out_features must be below 2**63, got a value too large to write",
    ),
    Case("CSV field over 131072 characters", _csv_field, 2, "field larger than field limit"),
    Case("FIFO as data", _fifo("--data"), 2, "not a regular file"),
    Case("FIFO as params", _fifo("--params"), 2, "not a regular file"),
    Case("FIFO as utils", _fifo("--utils"), 2, "not a regular file"),
    Case("FIFO as user file", _fifo("--user"), 2, "not a regular file"),
    Case("/dev/zero as data", lambda tmp: ["run", "--data", "/dev/zero"], 2, "not a regular file"),
    Case(
        "/dev/zero as config", lambda tmp: ["run", "--config", "/dev/zero"], 2, "not a regular file"
    ),
    Case("FIFO as config", lambda tmp: _fifo("--config")(tmp), 2, "not a regular file"),
    Case("binary config", _config_file(bytes(range(256)) * 4), 2, "not UTF-8"),
    Case(
        "config nested 200k deep",
        _config_file("a = " + "[" * 200_000 + "]" * 200_000),
        2,
        "nested too deeply",
    ),
    Case("config of 2 MB", _config_file("# " + "x" * (2 << 20)), 2, "at most 1 MB"),
    Case(
        "--fd-samples 10**12 directions",
        lambda tmp: ["run", "-b", "numpy", "--fd", "directional", "--fd-samples", str(10**12)],
        2,
        "more than the input budget",
    ),
    Case(
        "--timeout 0", lambda tmp: ["run", "--timeout", "0"], 2, "timeout must be a positive number"
    ),
    Case(
        "--max-input-mb -1",
        lambda tmp: ["run", "--max-input-mb", "-1"],
        2,
        "--max-input-mb must be a positive number",
    ),
    # --- configs run and write only inside their project
    Case(
        "config utils outside",
        _config('utils = "../outside.py"\n'),
        2,
        "utils = '../outside.py' points outside",
        _nothing_ran_or_written,
    ),
    Case(
        "config user outside",
        _config('user = ["../outside.py:general"]\n'),
        2,
        "points outside the project",
        _nothing_ran_or_written,
    ),
    Case(
        "config junit absolute",
        lambda tmp: _config(f'junit = "{(tmp / "out.xml").as_posix()}"\n')(tmp),
        2,
        "junit =",
        _nothing_ran_or_written,
    ),
    Case(
        "config summary above",
        _config('summary = "../x.md"\n'),
        2,
        "summary = '../x.md' points outside",
        _nothing_ran_or_written,
    ),
    Case(
        "inspect with config utils outside",
        _config('utils = "../outside.py"\n', command="inspect"),
        2,
        "points outside",
        _nothing_ran_or_written,
    ),
    # --- outputs
    Case(
        "--junit replaces the data",
        _junit(lambda tmp: str(tmp / "d.npz")),
        2,
        "is an input of this run",
        _data_unchanged,
    ),
    Case("--junit /dev/full", _junit(lambda tmp: "/dev/full"), 2, "not a regular file"),
    Case("--junit a folder", _junit(lambda tmp: str(tmp)), 2, "is a directory"),
    Case("--junit ''", _junit(lambda tmp: ""), 2, "needs a file name"),
    Case(
        "--junit in a missing folder",
        _junit(lambda tmp: str(tmp / "no" / "j.xml")),
        2,
        "does not exist",
    ),
    # --- numbers
    Case(
        "float32 overflow of the loss",
        _data({"W0": arrays()["W0"] * 1e20}, "--dtype", "float32"),
        2,
        "overflows); rescale X or the parameters, or use --dtype float64",
    ),
    Case(
        "X = 1e39 in float32",
        _data({"X": np.full_like(arrays()["X"], 1e39)}, "--dtype", "float32"),
        2,
        "does not fit in float32",
    ),
    Case(
        "cross-entropy label 1e20",
        _data({"T": np.full(arrays()["X"].shape[0], 1e20)}, "--loss", "cross-entropy"),
        2,
        "= 1e+20 is not a class label",
    ),
    Case(
        "float64 overflow of the loss",
        _data({"X": arrays()["X"] * 1e200}),
        2,
        "the forward pass overflows",
    ),
]
