"""`gradcheck run --user`: a row per function named file:function, its mistakes named, bad specs
as exit code 2, and the user's prints and exit() kept off stdout."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from gradcheck_cli import cli
from tests.helpers import UNSUMMED_BIAS, USER_CORPUS

runner = CliRunner()


@pytest.mark.torch
def test_correct_user_function_exits_0():
    result = runner.invoke(cli.app, ["run", "--user", f"{USER_CORPUS / 'correct.py'}:exercise"])
    assert result.exit_code == 0, result.output
    assert "✓  correct.py:exercise" in result.stdout  # its own row, named file:function
    assert "all 4 backends agree" in result.stdout


@pytest.mark.torch
def test_wrong_user_function_exits_1_and_names_the_mistake():
    result = runner.invoke(
        cli.app, ["run", "--json", "--user", f"{USER_CORPUS / 'transposed_square.py'}:exercise"]
    )
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    user = report["backends"][-1]
    assert user["name"] == "transposed_square.py:exercise" and user["kind"] == "user"
    assert [b["ok"] for b in report["backends"]] == [True, True, True, False]
    (w1,) = [p for p in user["params"] if not p["ok"]]
    assert w1["name"] == "W1"
    assert w1["hint"].startswith("transposed: it matches the reference's transpose (residual ")


def test_unsummed_bias_in_json_is_error_plus_hints():
    result = runner.invoke(
        cli.app,
        ["run", "--json", "-b", "numpy", "--user", f"{USER_CORPUS / 'bias_not_summed.py'}:general"],
    )
    assert result.exit_code == 1
    user = json.loads(result.stdout)["backends"][-1]
    assert user["error"] == "DB[0] has shape (20, 6); expected (6,)"
    assert "the bias gradient is not summed over the batch" in user["hints"][0]


def test_two_user_functions_and_text_hints():
    result = runner.invoke(
        cli.app,
        [
            "run",
            "-b",
            "numpy",
            "--user",
            f"{USER_CORPUS / 'sign_flipped.py'}:general",
            "--user",
            f"{USER_CORPUS / 'correct.py'}:general",
        ],
        env={"COLUMNS": "200"},
    )
    assert result.exit_code == 1
    assert "1 of 3 backends failed: sign_flipped.py:general" in result.stdout
    assert "the sign is flipped" in result.stdout


@pytest.mark.torch
def test_missing_file_or_function_exits_2():
    for spec, message in [
        ("nowhere.py:f", "--user nowhere.py: no such file"),
        (f"{USER_CORPUS / 'correct.py'}:nope", "no function 'nope' in that file"),
        (f"{USER_CORPUS / 'correct.py'}", "expected FILE:FUNC"),
    ]:
        result = runner.invoke(cli.app, ["run", "--user", spec])
        assert result.exit_code == 2, spec
        assert message in result.stderr
        assert result.stdout == "" and "Traceback" not in result.output


@pytest.mark.torch
def test_same_user_function_twice_exits_2():
    spec = f"{USER_CORPUS / 'correct.py'}:general"
    result = runner.invoke(cli.app, ["run", "--user", spec, "--user", spec])
    assert result.exit_code == 2
    assert "--user given twice: correct.py:general" in result.stderr


def test_same_file_name_in_two_folders_runs_both(tmp_path, monkeypatch):
    # A TA checks each student's backprop.py: the same file name in two folders is two
    # functions, each named by its path, not "--user given twice".
    for student, source in (("alice", "correct.py"), ("bob", "half_mse.py")):
        (tmp_path / student).mkdir()
        (tmp_path / student / "backprop.py").write_text((USER_CORPUS / source).read_text())
    monkeypatch.chdir(tmp_path)
    users = ["--user", "alice/backprop.py:exercise", "--user", "bob/backprop.py:exercise"]
    result = runner.invoke(cli.app, ["run", "-b", "numpy", "--json", *users])
    assert result.exit_code == 1, result.output
    verdicts = {b["name"]: b["ok"] for b in json.loads(result.stdout)["backends"]}
    assert verdicts == {
        "numpy": True,
        "alice/backprop.py:exercise": True,
        "bob/backprop.py:exercise": False,  # half-MSE: its own file, not alice's module
    }


def test_the_same_function_twice_is_still_bad_usage():
    spec = f"{USER_CORPUS / 'correct.py'}:exercise"
    result = runner.invoke(cli.app, ["run", "-b", "numpy", "--user", spec, "--user", spec])
    assert result.exit_code == 2
    assert "--user given twice: correct.py:exercise" in result.stderr


def test_exercise_form_returning_three_values_says_so(tmp_path):
    # The exercise form returns DW or (DW, DB): (DW, DB, loss) is named as 3 values, not read as
    # DW alone ("returned 3 arrays for DW").
    (tmp_path / "three.py").write_text(
        UNSUMMED_BIAS.replace("return DW, DB", "return DW, [b.sum(0) for b in DB], 0.5")
    )
    user = f"{tmp_path / 'three.py'}:back_propagation"
    result = runner.invoke(cli.app, ["run", "-b", "numpy", "--user", user, "--json"])
    assert result.exit_code == 1, result.output
    backend = json.loads(result.stdout)["backends"][1]
    assert backend["error"] == "returned 3 values; expected DW or (DW, DB)"


def test_user_prints_and_exit_never_reach_stdout_or_stop_the_run(tmp_path):
    # A student's file exported from a notebook prints at import and while running, and may
    # even call exit(); --json must still print exactly one JSON document and finish.
    printing = tmp_path / "printing.py"
    printing.write_text(
        "import numpy as np\n"
        "print('loaded')\n"
        "def general(X, T, W, B):\n"
        "    print('running')\n"
        "    return [np.zeros_like(w) for w in W], [np.zeros_like(b) for b in B]\n"
    )
    exiting = tmp_path / "exiting.py"
    exiting.write_text("import sys\ndef general(X, T, W, B):\n    sys.exit(3)\n")
    result = CliRunner().invoke(
        cli.app,
        [
            "run",
            "--json",
            "-b",
            "numpy",
            "--user",
            f"{printing}:general",
            "--user",
            f"{exiting}:general",
        ],
    )
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    assert "loaded" in result.stderr and "running" in result.stderr
    by_name = {b["name"]: b for b in report["backends"]}
    assert by_name["exiting.py:general"]["error"] == "SystemExit: 3"
    assert by_name["numpy"]["ok"] is True
