"""The JSON text of a report: strict JSON, non-finite numbers as null with a note."""

from __future__ import annotations

import json

import numpy as np

from gradcheck_cli.outputs.json_report import to_json_text


def test_non_finite_numbers_become_null_and_are_noted():
    data = {
        "backends": [{"name": "numpy", "loss": float("inf"), "params": [{"name": "W0", "n": 1.0}]}],
        "agreement": {"a~b": np.float64("nan")},
        "count": np.int64(3),
        "notes": ["earlier note"],
    }
    text = to_json_text(data)
    report = json.loads(text, parse_constant=lambda token: 1 / 0)  # NaN/Infinity would raise
    assert report["backends"][0]["loss"] is None and report["agreement"]["a~b"] is None
    assert report["count"] == 3 and report["backends"][0]["params"][0]["n"] == 1.0
    assert report["notes"] == [
        "earlier note",
        "not finite, written as null: backends[numpy].loss was inf; agreement.a~b was nan",
    ]
    assert json.loads(to_json_text({"x": 1.5})) == {"x": 1.5}  # nothing to note: no notes key
