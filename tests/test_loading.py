"""Input formats (npz, CSV, torch state_dict, utils.py) and a corpus of bad inputs.

Every bad input must end in exit code 2, one line on stderr naming the problem, no traceback and
nothing on stdout; the same problem given in every format must give identical gradients.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from gradcheck_cli import cli
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
    write_every_format,
    write_utils,
)

runner = CliRunner()


# ----------------------------------------------------------------------------------------------
# Round trips: the same problem in every format


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


def test_extra_keys_warn_but_load(tmp_path):
    named = arrays()
    np.savez(tmp_path / "all.npz", notes=np.zeros(2), W01=np.zeros((3, 4)), **named)
    with pytest.warns(InputWarning, match="ignoring extra keys W01, notes"):
        problem = load_problem(tmp_path / "all.npz")
    assert_same_arrays(problem, named)
    result = runner.invoke(cli.app, ["inspect", "--data", str(tmp_path / "all.npz")])
    assert result.exit_code == 0
    assert "warning:" in result.stderr and "notes" in result.stderr


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
