"""Input formats (npz, CSV, torch state_dict, utils.py) and a corpus of bad inputs.

Every bad input must end in exit code 2, one line on stderr naming the problem, no traceback and
nothing on stdout; the same problem given in every format must give identical gradients.
"""

from __future__ import annotations

import json
import sys
import textwrap
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
from tests.bad_inputs import BAD_INPUTS, write_npz
from tests.helpers import (
    ARRAYS_LAYERS,
    arrays,
    assert_bad_input,
    assert_same_arrays,
    data_of,
    params_of,
    sequential_for,
    torch_reference,
    write_every_format,
    write_utils,
)

runner = CliRunner()

# numpy backprop against torch autograd in float64: only summation order differs.
REFERENCE_RTOL = 1e-10
REFERENCE_ATOL = 1e-13


# ----------------------------------------------------------------------------------------------
# Round trips: the same problem in every format


def test_every_format_loads_the_same_problem_and_gradients(tmp_path):
    named = arrays()
    expected_loss, expected_dW, expected_dB = torch_reference(
        loading.make_problem(
            named["X"], named["T"], [named["W0"], named["W1"]], [named["B0"], named["B1"]]
        )
    )
    gradients = {}
    for label, files in write_every_format(tmp_path, named).items():
        problem = load_problem(**files)
        assert_same_arrays(problem, named)
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
    for label, files in write_every_format(tmp_path, named).items():
        args = ["run", "--json", "-b", "numpy", "-b", "torch-functional"]
        for option, path in files.items():
            args += [f"--{option}", str(path)]
        result = runner.invoke(cli.app, args)
        assert result.exit_code == 0, (label, result.output)
        report = json.loads(result.stdout)
        reports[label] = [(b["loss"], b["first_weight_grad"]) for b in report["backends"]]
        assert report["problem"]["layers"] == ARRAYS_LAYERS
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
    assert_same_arrays(problem, named)


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
    assert json.loads(result.stdout)["problem"]["layers"] == ARRAYS_LAYERS
    assert "loading the course data" in result.stderr


def test_extra_keys_warn_but_load(tmp_path):
    named = arrays()
    np.savez(tmp_path / "all.npz", notes=np.zeros(2), W01=np.zeros((3, 4)), **named)
    with pytest.warns(InputWarning, match="ignoring extra keys W01, notes"):
        problem = load_problem(tmp_path / "all.npz")
    assert_same_arrays(problem, named)
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


@pytest.mark.parametrize("name, build, message", BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS])
def test_bad_input_exits_2_with_one_clear_line(tmp_path, name, build, message):
    args, _ = build(tmp_path)
    assert_bad_input(args, message)


@pytest.mark.parametrize("name, build, message", BAD_INPUTS[:5], ids=[c[0] for c in BAD_INPUTS[:5]])
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
    data = write_npz(tmp_path, "data.npz", **data_of(arrays()))
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
