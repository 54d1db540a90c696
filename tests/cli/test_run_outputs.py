"""Where `gradcheck run` writes: output files checked before the run and written atomically, never
over an input or through a link; the report on stdout always printed, in any console encoding;
a write that fails is one line on stderr and exit 2."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from gradcheck_cli import cli
from gradcheck_cli.cli import artifacts
from gradcheck_cli.inputs import bundled_problem_path
from gradcheck_cli.inputs.loading import load_problem

runner = CliRunner()
# The bundled problem given as --data: no warning that it was checked by default.
NUMPY = ["run", "-b", "numpy", "--data", str(bundled_problem_path())]


def test_junit_replaces_a_symlink_instead_of_writing_through_it(tmp_path):
    (tmp_path / "other.txt").write_text("keep me")
    (tmp_path / "j.xml").symlink_to(tmp_path / "other.txt")
    result = runner.invoke(cli.app, [*NUMPY, "--junit", str(tmp_path / "j.xml")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "other.txt").read_text() == "keep me"
    assert not (tmp_path / "j.xml").is_symlink()
    assert (tmp_path / "j.xml").read_text().startswith("<?xml")


def test_summary_appends_to_a_plain_file_and_refuses_a_symlink(tmp_path):
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    result = runner.invoke(cli.app, [*NUMPY, "--summary", str(summary)])
    assert result.exit_code == 0, result.output
    assert summary.read_text().startswith("earlier step\n### ")
    (tmp_path / "link.md").symlink_to(summary)
    result = runner.invoke(cli.app, [*NUMPY, "--summary", str(tmp_path / "link.md")])
    assert result.exit_code == 2 and "is a symbolic link" in result.stderr
    assert result.stdout == ""


def test_outputs_never_replace_the_config_file(tmp_path, monkeypatch):
    (tmp_path / "pyproject.toml").write_text('[tool.gradcheck]\nbackend = "numpy"\n')
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(cli.app, ["run", "--junit", "pyproject.toml"])
    assert result.exit_code == 2, result.output
    assert "is an input of this run" in result.stderr
    assert (tmp_path / "pyproject.toml").read_text().startswith("[tool.gradcheck]")


def test_a_failed_write_after_the_run_still_prints_the_report(tmp_path, monkeypatch):
    def disk_full(*args: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(artifacts.os, "replace", disk_full)
    result = runner.invoke(cli.app, [*NUMPY, "--json", "--junit", str(tmp_path / "j.xml")])
    assert result.exit_code == 2
    assert json.loads(result.stdout)["ok"] is True
    assert result.stderr.strip().splitlines() == [
        f"error: --junit {tmp_path / 'j.xml'}: cannot write: No space left on device"
    ]
    assert list(tmp_path.iterdir()) == []  # the temporary file is gone too


def test_bad_input_leaves_no_output_file_behind(tmp_path):
    result = runner.invoke(
        cli.app, [*NUMPY, "--junit", str(tmp_path / "j.xml"), "--data", str(tmp_path / "no.npz")]
    )
    assert result.exit_code == 2
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root writes anywhere")
def test_a_read_only_folder_is_refused_before_the_run(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        result = runner.invoke(cli.app, [*NUMPY, "--junit", str(folder / "j.xml")])
    finally:
        folder.chmod(0o755)
    assert result.exit_code == 2 and "cannot write" in result.stderr and result.stdout == ""


def test_text_report_falls_back_to_ascii_on_a_cp1252_console():
    result = CliRunner(charset="cp1252").invoke(cli.app, NUMPY)
    assert result.exit_code == 0, result.output
    assert "|v |numpy" in result.stdout and "|~ |finite diff." in result.stdout
    assert "v numpy agrees with finite differences" in result.stdout


def test_huge_gradients_give_standard_json_and_finite_norms(tmp_path):
    # Gradients of ~1e300: their squares overflow, but the norms are computed scaled (finite)
    # and whatever could not be (tests/outputs/test_json_report.py) is null, never Infinity.
    problem = load_problem()
    arrays = {"X": problem.X * 1e154, "T": problem.T}
    arrays |= {f"W{i}": w for i, w in enumerate(problem.weights)}
    arrays |= {f"B{i}": b for i, b in enumerate(problem.biases)}
    np.savez(tmp_path / "huge.npz", **arrays)
    command = ["run", "-b", "numpy", "--json", "--data", str(tmp_path / "huge.npz")]
    result = runner.invoke(cli.app, command)

    def refuse(token: str) -> None:
        raise AssertionError(f"non-standard JSON: {token}")

    report = json.loads(result.stdout, parse_constant=refuse)
    norm = report["backends"][0]["params"][0]["norm"]
    assert norm is not None and 1e300 < norm < np.inf
    assert result.stderr.count("\n") <= 1  # numeric warnings are one summary line


@pytest.mark.parametrize("redirect", ["/dev/full", "closed"])
def test_stdout_that_cannot_be_written_is_one_line_and_exit_2(redirect):
    if not os.path.exists("/dev/full") and redirect == "/dev/full":
        pytest.skip("no /dev/full here")
    command = [sys.executable, "-m", "gradcheck_cli", *NUMPY, "--json"]
    if redirect == "closed":
        result = subprocess.run(
            command, stdout=None, stderr=subprocess.PIPE, text=True, pass_fds=(),
            preexec_fn=lambda: os.close(1), timeout=120,
        )  # fmt: skip
    else:
        with open(redirect, "w") as full:
            result = subprocess.run(
                command, stdout=full, stderr=subprocess.PIPE, text=True, timeout=120
            )
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [
        "error: cannot write the report to stdout: "
        + ("No space left on device" if redirect == "/dev/full" else "stdout is closed")
    ]
