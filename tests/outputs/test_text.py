"""The text report's findings: the explanation first, then the details."""

from __future__ import annotations

import pytest

import gradcheck_cli
from gradcheck_cli.outputs.text import findings
from gradcheck_cli.outputs.verdicts import consensus_text
from tests.helpers import forgot_the_mean


def test_the_explanation_of_every_failing_parameter_comes_first():
    report = gradcheck_cli.check(forgot_the_mean, backends=["numpy"])
    lines = [line.plain for line in findings(report)]
    assert "every failing parameter is off by the same factor 20" in lines[0], lines
    details = lines[1:]
    assert [line.split(":")[0] for line in details] == [
        f"✗ forgot_the_mean {name}" for name in ("W0", "W1", "W2", "W3", "B0", "B1", "B2", "B3")
    ]


def test_the_reference_says_what_validated_it():
    """FD on: validated by finite differences; FD off with two built-ins: by their agreement;
    FD off with one: not validated (and the run is inconclusive, never a pass)."""
    cases = [
        (["numpy", "torch-functional"], "auto", "validated by finite differences"),
        (["numpy", "torch-functional"], "off", "validated by the built-ins' agreement"),
        (["numpy"], "off", "not validated;"),
    ]
    for backends, fd, said in cases:
        if "torch-functional" in backends:
            pytest.importorskip("torch")
        report = gradcheck_cli.check(forgot_the_mean, backends=backends, fd=fd)
        assert f"the built-ins' float64 consensus ({said}" in consensus_text(report), (backends, fd)
        assert "(;" not in consensus_text(report)
        assert not report.ok
