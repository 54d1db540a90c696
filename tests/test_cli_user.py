"""`gradcheck run --user/--show` and `gradcheck init` on the command line."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from gradcheck_cli import cli
from tests.helpers import USER_CORPUS

runner = CliRunner()


def test_correct_user_function_exits_0():
    result = runner.invoke(cli.app, ["run", "--user", f"{USER_CORPUS / 'correct.py'}:exercise"])
    assert result.exit_code == 0, result.output
    assert "✓  correct.py:exercise" in result.stdout  # its own row, named file:function
    assert "all 4 backends agree" in result.stdout


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


def test_same_user_function_twice_exits_2():
    spec = f"{USER_CORPUS / 'correct.py'}:general"
    result = runner.invoke(cli.app, ["run", "--user", spec, "--user", spec])
    assert result.exit_code == 2
    assert "--user given twice: correct.py:general" in result.stderr


def test_show_prints_the_parameter_entry_by_entry():
    result = runner.invoke(
        cli.app,
        [
            "run",
            "-b",
            "numpy",
            "--user",
            f"{USER_CORPUS / 'one_unit_wrong.py'}:general",
            "--show",
            "W1",
        ],
        env={"COLUMNS": "200"},
    )
    assert result.exit_code == 1
    out = result.stdout
    assert "W1 (6×6) · finite differences" in out
    assert "W1 · one_unit_wrong.py:general · relative error" in out
    assert "[:, 2]" in out and "only W1[:, 2] is wrong" in out


def test_show_unknown_parameter_exits_2():
    result = runner.invoke(cli.app, ["run", "--show", "W9"])
    assert result.exit_code == 2
    assert "--show W9: no such parameter; choose from W0, W1, W2, W3, B0, B1, B2, B3" in (
        result.stderr
    )


def test_init_writes_a_starter_that_fails_until_filled_in(tmp_path):
    path = tmp_path / "mine.py"
    result = runner.invoke(cli.app, ["init", str(path)])
    assert result.exit_code == 0, result.output
    assert f"gradcheck run --user {path}:back_propagation" in result.stdout
    text = path.read_text()
    assert "def back_propagation(W, B, A, Y, T):" in text
    assert "raise NotImplementedError" in text
    again = runner.invoke(cli.app, ["init", str(path)])
    assert again.exit_code == 2 and "already exists" in again.stderr
    assert runner.invoke(cli.app, ["init", str(path), "--force"]).exit_code == 0
    run = runner.invoke(
        cli.app, ["run", "--json", "-b", "numpy", "--user", f"{path}:back_propagation"]
    )
    assert run.exit_code == 1
    user = json.loads(run.stdout)["backends"][-1]
    assert user["error"] == "NotImplementedError: write the backward pass here"


def test_init_into_a_folder(tmp_path):
    result = runner.invoke(cli.app, ["init", str(tmp_path)])
    assert result.exit_code == 0
    assert (tmp_path / "mybackprop.py").is_file()
