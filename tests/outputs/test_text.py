"""The text report's findings: the explanation first, then the details."""

from __future__ import annotations

import gradcheck_cli
from gradcheck_cli.outputs.text import findings
from tests.helpers import forgot_the_mean


def test_the_explanation_of_every_failing_parameter_comes_first():
    report = gradcheck_cli.check(forgot_the_mean, backends=["numpy"])
    lines = [line.plain for line in findings(report)]
    assert "every failing parameter is off by the same factor 20" in lines[0], lines
    details = lines[1:]
    assert [line.split(":")[0] for line in details] == [
        f"✗ forgot_the_mean {name}" for name in ("W0", "W1", "W2", "W3", "B0", "B1", "B2", "B3")
    ]
