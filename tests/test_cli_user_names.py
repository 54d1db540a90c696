"""--user rows and the check() API: names of user functions and backends, the FD default."""

from __future__ import annotations

import json

import numpy as np
from typer.testing import CliRunner

import gradcheck_cli
from gradcheck_cli import cli
from gradcheck_cli.fd import FULL_MODE_MAX_PARAMETERS
from tests.helpers import USER_CORPUS

runner = CliRunner()


def test_same_file_name_in_two_folders_runs_both(tmp_path, monkeypatch):
    # A TA checking each student's backprop.py got "--user given twice: backprop.py:exercise".
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


def test_check_accepts_one_backend_name_as_a_string():
    # check(fn, backends="numpy") said "unknown backend 'n'" (the string read letter by letter).
    report = gradcheck_cli.check(f"{USER_CORPUS / 'correct.py'}:exercise", backends="numpy")
    assert [b.name for b in report.backends] == ["numpy", "correct.py:exercise"]
    assert report.ok


def test_check_samples_finite_differences_on_a_large_network_like_the_cli():
    # check() defaulted to fd="full", so a notebook on a big model ran every entry while
    # `gradcheck run` (fd auto) sampled.
    rng = np.random.default_rng(0)
    X, T = rng.normal(size=(4, 300)), rng.normal(size=(4, 1))
    W = [rng.normal(size=(300, 200)) / 17, rng.normal(size=(200, 1)) / 14]
    B = [np.zeros(200), np.zeros(1)]
    report = gradcheck_cli.check(data=(X, T), params=(W, B), backends=["numpy"])
    assert report.problem.parameter_count > FULL_MODE_MAX_PARAMETERS
    assert report.finite_difference is not None
    assert report.finite_difference.mode == "sample"
    assert report.ok
