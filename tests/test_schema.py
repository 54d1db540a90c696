"""The JSON report against the JSON Schema shipped in the package (`--json` consumers
validate with it), on real reports of every shape: passing, failing, raising, weights
only, --fd off, sampled, directional, kinks, inconclusive."""

from __future__ import annotations

import json
from importlib import resources

import jsonschema
import pytest
from typer.testing import CliRunner

from gradcheck_cli import cli
from gradcheck_cli.backends import create_backend
from gradcheck_cli.backends.user import UserBackend
from gradcheck_cli.verdict import CheckOptions, run_checks
from tests.helpers import (
    USER_CORPUS,
    RaisingBackend,
    ScaledBackend,
    arrays,
    near_convergence,
    zero_row_problem,
)

runner = CliRunner()


@pytest.fixture(scope="module")
def validator() -> jsonschema.protocols.Validator:
    text = resources.files("gradcheck_cli").joinpath("schema/report.schema.json").read_text()
    schema = json.loads(text)
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def _user(spec: str) -> UserBackend:
    return UserBackend(f"{USER_CORPUS / spec}")


def _check(validator, report: dict) -> None:
    errors = sorted(validator.iter_errors(report), key=lambda e: list(e.path))
    assert not errors, [f"{list(e.path)}: {e.message}" for e in errors[:5]]


REPORTS = {
    "passing": lambda p: run_checks(p, [create_backend("numpy")]),
    "wrong user function": lambda p: run_checks(
        p, [create_backend("numpy"), _user("half_mse.py:general")]
    ),
    "raising": lambda p: run_checks(p, [create_backend("numpy"), RaisingBackend()]),
    "weights only": lambda p: run_checks(
        p, [create_backend("numpy"), _user("correct.py:exercise_weights_only")]
    ),
    "fd off": lambda p: run_checks(
        p, [create_backend("numpy"), ScaledBackend("W1", 2.0)], CheckOptions(fd_mode="off")
    ),
    "sample": lambda p: run_checks(
        p, [create_backend("numpy")], CheckOptions(fd_mode="sample", fd_samples=10)
    ),
    "directional": lambda p: run_checks(
        p, [create_backend("numpy")], CheckOptions(fd_mode="directional")
    ),
    "kinks": lambda p: run_checks(zero_row_problem(p), [create_backend("numpy")]),
    "inconclusive": lambda p: run_checks(
        near_convergence(p.with_dtype("float32"), 1e-7), [create_backend("numpy")]
    ),
}


# What makes each report the shape it is named after, so that the schema sees them all.
SHAPES = {
    "passing": lambda r: r["ok"],
    "wrong user function": lambda r: not r["ok"] and r["backends"][1]["params"][0]["hint"],
    "raising": lambda r: r["backends"][1]["traceback"],
    "weights only": lambda r: len(r["backends"][1]["params"]) == 4,
    "fd off": lambda r: r["finite_difference"] == {"mode": "off"},
    "sample": lambda r: r["finite_difference"]["mode"] == "sample",
    "directional": lambda r: r["finite_difference"]["directions"],
    "kinks": lambda r: r["finite_difference"]["kink_entries"],
    "inconclusive": lambda r: r["unresolved"],
}


@pytest.mark.parametrize("name", REPORTS)
def test_every_kind_of_report_fits_the_schema(validator, exercise_problem, name):
    report = REPORTS[name](exercise_problem).to_dict()
    assert SHAPES[name](report), report  # the report has the shape it is named after
    _check(validator, json.loads(json.dumps(report)))


def test_the_cli_json_fits_the_schema_and_names_its_version(validator, tmp_path):
    import numpy as np

    np.savez(tmp_path / "d.npz", **arrays())
    spec = f"{USER_CORPUS / 'correct.py'}:general"
    args = ["run", "--json", "-b", "numpy", "--data", str(tmp_path / "d.npz"), "--user", spec]
    result = runner.invoke(cli.app, args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert next(iter(report)) == "schema_version"  # first, so that a reader sees it first
    assert report["schema_version"] == validator.schema["properties"]["schema_version"]["const"]
    _check(validator, report)


def test_the_schema_catches_a_broken_report(validator, exercise_problem):
    report = REPORTS["passing"](exercise_problem).to_dict()
    del report["backends"][0]["params"][0]["max_rel_err"]
    report["ok"] = "yes"
    assert len(list(validator.iter_errors(report))) == 2
    report = REPORTS["passing"](exercise_problem).to_dict()
    report["a key added later"] = 1  # additions stay valid: consumers ignore what they don't know
    _check(validator, report)
