"""The Report's JSON form."""

from __future__ import annotations

import numpy as np
import pytest

from gradcheck_cli.backends import create_backend
from gradcheck_cli.verdict import run_checks
from tests.helpers import builtin_backends


@pytest.mark.torch
def test_json_has_every_design_key(exercise_problem):
    d = run_checks(exercise_problem, builtin_backends()).to_dict()
    assert {"ok", "problem", "backends", "agreement", "finite_difference", "timings"} <= set(d)
    assert d["problem"] == {
        "source": "bundled exercise problem",
        "bundled": True,
        "layers": [4, 6, 6, 6, 1],
        "samples": 20,
        "activation": "relu",
        "loss": "mse",
        "dtype": "float64",
        "parameters": 121,
    }
    b = d["backends"][0]
    assert {"name", "kind", "ok", "error", "loss", "first_weight_grad", "params", "hints"} <= set(b)
    p = b["params"][0]
    assert set(p) == {
        "name",
        "shape",
        "norm",
        "max_abs_err",
        "max_rel_err",
        "ok",
        "worst_index",
        "hint",
        "sensitivity",
    }
    assert set(d["finite_difference"]) >= {
        "mode",
        "step",
        "checked",
        "failed",
        "kinks",
        "max_rel_err",
        "ok",
    }
    assert set(d["timings"]) == {"load", "backends", "finite_difference"}


def test_first_weight_grad_is_dE_dW0_00(exercise_problem):
    report = run_checks(exercise_problem, [create_backend("numpy")])
    fd = report.finite_difference
    assert fd is not None
    assert report.backend("numpy").first_weight_grad == pytest.approx(
        float(fd.estimates["W0"][0, 0]), rel=1e-6
    )
    assert np.isfinite(report.backend("numpy").loss)
