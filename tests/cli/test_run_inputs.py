"""`gradcheck run` on its inputs: data, params and utils files in every format; every bad input
ends in exit code 2 and one line on stderr naming the problem, with no traceback and nothing
on stdout."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from gradcheck_cli import cli, load_problem
from gradcheck_cli.errors import InputError
from tests.bad_inputs import bad_input_params, write_npz
from tests.helpers import (
    ARRAYS_LAYERS,
    arrays,
    assert_bad_input,
    data_of,
    sequential_for,
    write_every_format,
    write_utils,
)

runner = CliRunner()


@pytest.mark.parametrize(
    "args, message",
    [
        (["run", "--backend", "jax"], "unknown backend 'jax'"),
        (["run", "--data", "missing.npz"], "missing.npz: no such file"),
        (["run", "--fd", "off", "-b", "numpy"], "nothing to compare"),
        pytest.param(
            ["run", "--fd-step", "-1"], "must be between 1e-12 and 0.1", marks=pytest.mark.torch
        ),
        (["run", "-b", "numpy", "-b", "numpy"], "backend given twice"),
    ],
)
def test_bad_input_exits_2_with_one_line(args, message):
    result = runner.invoke(cli.app, args)
    assert result.exit_code == 2
    assert message in result.stderr
    assert "Traceback" not in result.output
    assert result.stdout == ""


def test_bad_params_file_names_the_shape(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "p.npz"
    np.savez(
        path,
        W0=rng.standard_normal((4, 6)),
        B0=np.zeros(6),
        W1=rng.standard_normal((5, 1)),
        B1=np.zeros(1),
    )
    result = runner.invoke(cli.app, ["run", "--params", str(path)])
    assert result.exit_code == 2
    assert "W1 is (5, 1) but W0 outputs 6 features" in result.stderr


@pytest.mark.torch
def test_data_and_params_files(tmp_path):
    rng = np.random.default_rng(1)
    np.savez(tmp_path / "d.npz", X=rng.standard_normal((5, 3)), T=rng.standard_normal((5, 2)))
    np.savez(
        tmp_path / "p.npz",
        W0=rng.standard_normal((3, 4)),
        B0=np.ones(4),
        W1=rng.standard_normal((4, 2)),
        B1=np.ones(2),
    )
    result = runner.invoke(
        cli.app,
        ["run", "--json", "--data", str(tmp_path / "d.npz"), "--params", str(tmp_path / "p.npz")],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["problem"]["layers"] == [3, 4, 2]


@pytest.mark.torch
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


def test_utils_prints_go_to_stderr_so_json_stays_clean(tmp_path):
    named = arrays(7)
    utils = write_utils(tmp_path, named)
    utils.write_text("print('loading the course data')\n" + utils.read_text())
    result = runner.invoke(cli.app, ["run", "--json", "-b", "numpy", "--utils", str(utils)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["problem"]["layers"] == ARRAYS_LAYERS
    assert "loading the course data" in result.stderr


@pytest.mark.parametrize("name, build, message", bad_input_params())
def test_bad_input_exits_2_with_one_clear_line(tmp_path, name, build, message):
    args, _ = build(tmp_path)
    assert_bad_input(args, message)


@pytest.mark.torch
def test_malicious_pickle_in_pt_is_never_executed(tmp_path):
    import torch

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


@pytest.mark.parametrize(
    ("loss", "T", "message"),
    [
        # Each message names the first offending target, as the README promises for inputs.
        ("bce", np.array([[0.5], [1.0], [-0.25], [0.0]]), "T[2, 0] = -0.25; bce targets"),
        ("cross-entropy", np.array([0.0, 2.0, 1.5, 1.0]), "T[2] = 1.5; cross-entropy labels"),
        (
            "cross-entropy",
            np.tile([[0.2, 0.3, 0.5]], (4, 1)) * [[1], [1], [1], [2]],
            "row T[3] sums to 2;",
        ),
        (
            "cross-entropy",
            np.array([[1, 0, 0], [-1, 1, 1], [0, 1, 0], [0, 0, 1]]),
            "row T[1] has a negative entry;",
        ),
    ],
)
def test_bad_targets_name_the_entry(tmp_path, loss, T, message):
    rng = np.random.default_rng(0)
    outputs = 1 if loss == "bce" else 3
    path = tmp_path / "d.npz"
    np.savez(
        path, X=rng.normal(size=(4, 2)), T=T, W0=rng.normal(size=(2, outputs)), B0=np.zeros(outputs)
    )
    result = runner.invoke(cli.app, ["run", "--data", str(path), "--loss", loss])
    assert result.exit_code == 2, result.output
    assert message in result.stderr


@pytest.mark.torch
def test_overflowing_loss_is_bad_input_not_three_failed_backends(tmp_path):
    # X of 1e200 overflows the forward pass: bad input (exit 2), not three backends "failing"
    # with NaN gradients (exit 1).
    problem = load_problem()
    path = tmp_path / "huge.npz"
    arrays = {"X": problem.X * 1e200, "T": problem.T}
    arrays |= {f"W{i}": w for i, w in enumerate(problem.weights)}
    arrays |= {f"B{i}": b for i, b in enumerate(problem.biases)}
    np.savez(path, **arrays)
    result = runner.invoke(cli.app, ["run", "--data", str(path), "--json"])
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    assert result.stderr.strip() == (
        f"error: {path}: the loss at these parameters is inf in float64 (the forward pass "
        "overflows); rescale X or the parameters"
    )


@pytest.mark.xfail(
    sys.version_info < (3, 11),
    reason="Python 3.10 raises ValueError, not SyntaxError, for null bytes, which the utils "
    "reader reports as raised while being run",
    strict=True,
)
def test_binary_file_as_utils_has_no_line_none(tmp_path):
    # `--utils d.npz`: the SyntaxError for null bytes has no line number, so the message
    # must not say "line None".
    path = tmp_path / "d.npz"
    np.savez(path, X=np.zeros((2, 2)))
    result = runner.invoke(cli.app, ["run", "--utils", str(path)])
    assert result.exit_code == 2, result.output
    message = result.stderr.strip()
    # The wording of the null-byte SyntaxError differs between Python versions.
    assert message.startswith(f"error: utils file {path}: ") and "null bytes" in message
    assert message.endswith("(not valid Python)") and "None" not in message


def test_weights_saved_in_pytorch_layout_are_called_transposed(tmp_path):
    # net[0].weight.numpy() is (out, in): a weight saved that way is named as transposed, with
    # the fix, rather than only "expected (4, ...)".
    problem = load_problem()
    path = tmp_path / "torch_layout.npz"
    arrays = {"X": problem.X, "T": problem.T}
    arrays |= {f"W{i}": w.T for i, w in enumerate(problem.weights)}
    arrays |= {f"B{i}": b for i, b in enumerate(problem.biases)}
    np.savez(path, **arrays)
    result = runner.invoke(cli.app, ["run", "--data", str(path)])
    assert result.exit_code == 2, result.output
    assert result.stderr.strip() == (
        f"error: {path}: W0 is (6, 4) but X has 4 features; expected (4, ...) "
        "(W0 looks transposed: nn.Linear.weight is (out, in); save its .T)"
    )


def test_a_plain_shape_mismatch_does_not_claim_a_transpose(tmp_path):
    problem = load_problem()
    path = tmp_path / "wrong.npz"
    arrays = {"X": problem.X, "T": problem.T, "W0": np.ones((5, 6)), "B0": np.zeros(6)}
    np.savez(path, **arrays)
    result = runner.invoke(cli.app, ["run", "--data", str(path)])
    assert result.exit_code == 2
    assert result.stderr.strip().endswith("expected (4, ...)")


def test_error_messages_are_not_read_as_rich_markup(tmp_path):
    # Messages are plain text, not rich markup: read as markup, "[tool.gradcheck] must be a
    # table" would print as " must be a table", and a folder named "runs[red]" would vanish
    # from a path (and turn the rest of the line red).
    config = tmp_path / "gradcheck.toml"
    config.write_text("[tool]\ngradcheck = 3\n")
    result = runner.invoke(cli.app, ["run", "--config", str(config)])
    assert result.exit_code == 2
    assert result.stderr.strip() == f"error: {config}: [tool.gradcheck] must be a table"
    folder = tmp_path / "runs[red]"
    folder.mkdir()
    result = runner.invoke(cli.app, ["run", "--data", str(folder / "d.npz")])
    assert result.exit_code == 2
    assert result.stderr.strip() == f"error: data file {folder / 'd.npz'}: no such file"


@pytest.mark.torch
def test_a_state_dict_with_the_default_activation_says_it_was_assumed(tmp_path):
    import torch

    named = arrays(2)
    np.savez(tmp_path / "d.npz", **data_of(named))
    torch.save(sequential_for(named).state_dict(), tmp_path / "m.pt")
    args = ["run", "-b", "numpy", "--data", str(tmp_path / "d.npz")]
    args += ["--params", str(tmp_path / "m.pt")]
    assumed = runner.invoke(cli.app, args)
    assert assumed.exit_code == 0, assumed.output
    assert "m.pt is a state_dict, which holds no activation: assumed relu" in assumed.stderr
    assert "bundled" not in assumed.stderr
    given = runner.invoke(cli.app, [*args, "--activation", "relu"])
    assert given.exit_code == 0 and "assumed" not in given.stderr
    (tmp_path / "gradcheck.toml").write_text('activation = "relu"\n')
    configured = runner.invoke(cli.app, [*args, "--config", str(tmp_path / "gradcheck.toml")])
    assert configured.exit_code == 0 and "assumed" not in configured.stderr
