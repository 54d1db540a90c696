"""[tool.gradcheck]: discovery, validation against run's options, and file < flags precedence."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from gradcheck_cli import cli
from gradcheck_cli.cli import run_command
from gradcheck_cli.cli.config import find_config, load_config, option_specs, read_table
from gradcheck_cli.errors import InputError
from tests.helpers import assert_bad_input

runner = CliRunner()


def write_problem(path: Path) -> None:
    rng = np.random.default_rng(3)
    np.savez(
        path,
        X=rng.standard_normal((5, 3)),
        T=rng.standard_normal((5, 2)),
        W0=rng.standard_normal((3, 4)),
        B0=0.1 * rng.standard_normal(4),
        W1=rng.standard_normal((4, 2)),
        B1=0.1 * rng.standard_normal(2),
    )


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A project with data in data/d.npz, a [tool.gradcheck] table, run from a subdirectory."""
    (tmp_path / "data").mkdir()
    write_problem(tmp_path / "data" / "d.npz")
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "demo"\n\n'
        "[tool.gradcheck]\n"
        'data = "data/d.npz"\n'
        'backend = ["numpy"]\n'
        'activation = "tanh"\n'
        "fd_step = 1e-5\n"
        "rtol = 1e-6\n",
        encoding="utf-8",
    )
    (tmp_path / "src" / "deep").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "src" / "deep")
    return tmp_path


def run_json(*args: str) -> dict:
    result = runner.invoke(cli.app, ["run", "--json", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def without_timings(report: dict) -> dict:
    return {k: v for k, v in report.items() if k != "timings"}


def test_no_flags_checks_exactly_what_the_config_says(project):
    from_config = run_json()
    explicit = run_json(
        "--data",
        str(project / "data" / "d.npz"),
        "-b",
        "numpy",
        "--activation",
        "tanh",
        "--fd-step",
        "1e-5",
        "--rtol",
        "1e-6",
    )
    assert without_timings(from_config) == without_timings(explicit)
    assert from_config["problem"]["layers"] == [3, 4, 2]
    assert from_config["problem"]["activation"] == "tanh"
    assert [b["name"] for b in from_config["backends"]] == ["numpy"]
    assert from_config["finite_difference"]["step"] == 1e-5
    assert from_config["tolerances"]["rtol"] == 1e-6


@pytest.mark.torch
def test_flags_override_the_config_and_the_rest_still_applies(project):
    report = run_json("--activation", "sigmoid", "-b", "torch-sequential", "--rtol", "1e-4")
    assert report["problem"]["activation"] == "sigmoid"
    assert [b["name"] for b in report["backends"]] == ["torch-sequential"]
    assert report["tolerances"]["rtol"] == 1e-4
    assert report["problem"]["layers"] == [3, 4, 2]  # data still from the config
    assert report["finite_difference"]["step"] == 1e-5


def test_config_can_choose_the_output_and_a_flag_can_take_it_back(project):
    with (project / "pyproject.toml").open("a", encoding="utf-8") as f:
        f.write("json = true\n")
    result = runner.invoke(cli.app, ["run"])
    assert json.loads(result.stdout)["ok"] is True
    result = runner.invoke(cli.app, ["run", "--format", "text"])
    assert "Gradient check" in result.stdout
    assert "config: " in result.stderr and "pyproject.toml" in result.stderr


@pytest.mark.parametrize(
    "line, message",
    [
        ("colour = 1", "unknown gradcheck option 'colour'"),
        ('rtol = "big"', "rtol must be a number, got 'big'"),
        ("rtol = true", "rtol must be a number, got True"),
        ('activation = "softplus"', "activation must be one of 'relu'"),
        ("fd-step = 1e-4", "'fd-step' and 'fd_step' set the same option"),
        ('data = ["a.npz"]', "data must be a single value, not a list"),
        ("backend = [1]", "backend must be a string (or a list of them), got [1]"),
        ("[tool.gradcheck.nested]\nx = 1", "unknown gradcheck option 'nested'"),
    ],
)
def test_bad_config_exits_2_naming_key_and_file(project, line, message):
    text = "[tool.gradcheck]\nfd_step = 1e-5\n" + line + "\n"
    (project / "pyproject.toml").write_text(text, encoding="utf-8")
    result = runner.invoke(cli.app, ["run"])
    assert result.exit_code == 2
    assert message in result.stderr
    assert str(project / "pyproject.toml") in result.stderr
    assert result.stdout == "" and "Traceback" not in result.output


def test_invalid_toml_is_a_one_line_error(project):
    (project / "pyproject.toml").write_text("[tool.gradcheck\n", encoding="utf-8")
    result = runner.invoke(cli.app, ["run"])
    assert result.exit_code == 2
    assert "invalid TOML" in result.stderr and result.stdout == ""


def test_explicit_config_file_with_top_level_keys(tmp_path, monkeypatch):
    cfg = tmp_path / "conf" / "gradcheck.toml"
    (tmp_path / "conf" / "inputs").mkdir(parents=True)
    write_problem(tmp_path / "conf" / "inputs" / "d.npz")
    cfg.write_text('data = "inputs/d.npz"\nbackend = "numpy"\nloss = "sse"\n', encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    report = run_json("--config", str(cfg))
    assert report["problem"]["loss"] == "sse"
    assert report["problem"]["layers"] == [3, 4, 2]
    assert [b["name"] for b in report["backends"]] == ["numpy"]
    missing = runner.invoke(cli.app, ["run", "--config", str(tmp_path / "nope.toml")])
    assert missing.exit_code == 2 and "no such config file" in missing.stderr


def test_the_search_passes_over_a_pyproject_without_the_table(tmp_path):
    # As ruff looks for [tool.ruff]: a sub-package's pyproject.toml does not hide the
    # repository's [tool.gradcheck].
    (tmp_path / "pyproject.toml").write_text("[tool.gradcheck]\nrtol = 1.0\n", encoding="utf-8")
    inner = tmp_path / "pkg"
    (inner / "src").mkdir(parents=True)
    (inner / "pyproject.toml").write_text('[project]\nname = "x"\n', encoding="utf-8")
    assert read_table(inner / "pyproject.toml") is None
    assert find_config(inner / "src") == (tmp_path / "pyproject.toml").resolve()
    found = load_config(None, option_specs(run_command.run), cwd=inner / "src")
    assert found is not None and found.values == {"rtol": 1.0}
    # The nearest table wins.
    (inner / "pyproject.toml").write_text("[tool.gradcheck]\nrtol = 0.5\n", encoding="utf-8")
    nearest = load_config(None, option_specs(run_command.run), cwd=inner / "src")
    assert nearest is not None and nearest.values == {"rtol": 0.5}


@pytest.mark.parametrize(
    "table",
    ["tool.gradchek", "tool.grad-check", "tool.GradCheck", "tool.gradcheck-cli", "gradcheck"],
)
def test_a_misspelt_table_is_bad_input_not_a_silent_default_run(tmp_path, monkeypatch, table):
    # [tool.gradchek] would otherwise let `gradcheck run` check the bundled problem and pass.
    (tmp_path / "pyproject.toml").write_text(f'[{table}]\ndata = "d.npz"\n', encoding="utf-8")
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")
    assert_bad_input(
        ["run", "-b", "numpy"],
        f"pyproject.toml: [{table}] looks like a misspelling of [tool.gradcheck]",
    )


def test_other_tools_tables_are_not_misspellings(tmp_path, monkeypatch):
    (tmp_path / "pyproject.toml").write_text(
        "[tool.ruff]\nline-length = 100\n[tool.gradio]\nx = 1\n[tool.pycheck]\nx = 1\n",
        encoding="utf-8",
    )
    assert read_table(tmp_path / "pyproject.toml") is None


def test_paths_are_relative_to_the_config_file(tmp_path):
    cfg = tmp_path / "a" / "pyproject.toml"
    cfg.parent.mkdir()
    inside = tmp_path / "a" / "p.npz"
    cfg.write_text(
        f'[tool.gradcheck]\ndata = "x/d.npz"\nparams = "{inside.as_posix()}"\n', encoding="utf-8"
    )
    config = load_config(cfg, option_specs(run_command.run))
    assert config is not None
    assert Path(config.values["data"]) == (tmp_path / "a" / "x" / "d.npz").resolve()
    assert config.values["params"] == inside.as_posix()  # absolute, but inside the project


def test_paths_outside_the_config_folder_are_refused_by_key(tmp_path):
    # A repository's config must not run code or write files outside the repository.
    cfg = tmp_path / "a" / "pyproject.toml"
    cfg.parent.mkdir()
    (tmp_path / "a" / "link").symlink_to(tmp_path)
    for key, value in (
        ("params", "/abs/p.npz"),
        ("junit", "../out.xml"),
        ("summary", "~/summary.md"),
        ("utils", "link/u.py"),  # inside by name, outside once the link is followed
        ("user", "../../mine.py:f"),
    ):
        cfg.write_text(f'[tool.gradcheck]\n{key} = "{value}"\n', encoding="utf-8")
        with pytest.raises(InputError, match=f"{key} = '{value}' points outside the project"):
            load_config(cfg, option_specs(run_command.run))


def test_every_option_of_run_is_configurable():
    """The introspection sees exactly the options typer builds for `run` (minus --config, and
    --debug, which is about gradcheck itself, not the check)."""
    command = typer.main.get_command(cli.app).commands["run"]  # type: ignore[attr-defined]
    typer_names = {p.name for p in command.params if p.name not in ("config", "help", "debug")}
    assert {s.name for s in option_specs(run_command.run).values()} == typer_names


def test_an_option_added_later_is_picked_up_with_its_type():
    def command(
        ctx: typer.Context,
        fd_samples: Annotated[int, typer.Option(help="entries to sample")] = 10,
        show: Annotated[list[str] | None, typer.Option("--show", "-s")] = None,
        quiet: bool = False,
        seed: int = typer.Option(0, "--random-seed"),
        user: Annotated[list[str] | None, typer.Option()] = None,
    ) -> None:
        pass

    specs = option_specs(command)
    assert set(specs) == {"fd-samples", "show", "quiet", "random-seed", "user"}
    assert specs["fd-samples"].type is int and not specs["fd-samples"].multiple
    assert specs["show"].multiple and specs["show"].type is str
    table = {"fd_samples": 50, "show": "heatmap", "quiet": True, "random_seed": 7}
    config_values = load_config_from_table(table, specs)
    assert config_values == {"fd_samples": 50, "show": ["heatmap"], "quiet": True, "seed": 7}
    with pytest.raises(InputError, match=r"fd-samples must be an integer, got 2\.5"):
        load_config_from_table({"fd-samples": 2.5}, specs)
    # FILE:FUNC strings (the form of --user) name a file relative to the config too.
    # An absolute one stays as it is (inside the project; outside it is refused).
    users = load_config_from_table({"user": ["lib/bp.py:grad", "/cfg/bp.py:grad", "x:y"]}, specs)
    assert users["user"] == [str(Path("/cfg/lib/bp.py")) + ":grad", "/cfg/bp.py:grad", "x:y"]


def load_config_from_table(table: dict, specs) -> dict:
    from gradcheck_cli.cli.config import resolve_config

    return resolve_config(table, specs, Path("/cfg/pyproject.toml"))


def test_an_explicit_pyproject_without_the_table_is_bad_input(tmp_path):
    # --config names a file to be read: a pyproject.toml there without [tool.gradcheck] is an
    # error, not a silent run with the defaults.
    path = tmp_path / "pyproject.toml"
    path.write_text('[tool.poetry]\nname = "x"\n')
    for command in ("run", "inspect"):
        result = runner.invoke(cli.app, [command, "--config", str(path)])
        assert result.exit_code == 2, result.output
        assert result.stderr.strip() == f"error: {path}: has no [tool.gradcheck] table"


def test_a_nearby_pyproject_without_the_table_is_still_fine(tmp_path, monkeypatch):
    (tmp_path / "pyproject.toml").write_text('[tool.poetry]\nname = "x"\n')
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(cli.app, ["inspect", "--json"])
    assert result.exit_code == 0, result.output
    assert "config:" not in result.stderr


def test_an_implicit_optional_around_annotated_is_seen_through():
    # What Python 3.10's get_type_hints makes of `x: Annotated[float | None, ...] = None`:
    # the Optional wraps the Annotated, hiding the option's flag and type unless unwrapped.
    def command(rtol=None, backend=None):
        pass

    command.__annotations__ = {
        "rtol": Optional[Annotated[Optional[float], typer.Option(help="tolerance")]],  # noqa: UP045
        "backend": Optional[Annotated[Optional[list[str]], typer.Option("--backend", "-b")]],  # noqa: UP045
    }
    specs = option_specs(command)
    assert specs["rtol"].type is float and not specs["rtol"].multiple
    assert specs["backend"].type is str and specs["backend"].multiple
    values = load_config_from_table({"rtol": 1e-6, "backend": ["numpy"]}, specs)
    assert values == {"rtol": 1e-6, "backend": ["numpy"]}
