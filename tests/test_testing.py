"""assert_gradients(): gradcheck inside a user's own test suite."""

from __future__ import annotations

import textwrap

import pytest

from gradcheck_cli.testing import assert_gradients
from tests.helpers import USER_CORPUS, arrays, forgot_the_mean, my_backprop


def test_a_right_function_passes_and_returns_the_report():
    report = assert_gradients(my_backprop, backends=["numpy"])
    assert report.ok and [b.name for b in report.backends] == ["numpy", "my_backprop"]


def test_a_wrong_function_fails_with_the_findings_as_the_message():
    with pytest.raises(AssertionError) as caught:
        assert_gradients(forgot_the_mean, backends=["numpy"])
    lines = str(caught.value).splitlines()
    assert lines[0].startswith("✗ 1 of 2 backends failed: forgot_the_mean")
    # The parameter, its worst entry and the hint, in plain text (no markup, no colours).
    assert any(
        line.startswith("✗ forgot_the_mean W0: worst entry W0[")
        and "the 1/N of the mean is missing" in line
        for line in lines
    ), lines
    assert "[" not in lines[0] and "\x1b" not in str(caught.value)


def test_options_are_those_of_check(tmp_path):
    import numpy as np

    named = arrays()
    np.savez(tmp_path / "d.npz", **named)
    spec = f"{USER_CORPUS / 'correct.py'}:general"
    report = assert_gradients(spec, data=tmp_path / "d.npz", backends=["numpy"], fd="full")
    assert report.problem.layers == [3, 4, 2] and not report.problem.bundled
    with pytest.raises(AssertionError, match=r"half_mse\.py:general W0: worst entry"):
        assert_gradients(f"{USER_CORPUS / 'half_mse.py'}:general", backends=["numpy"])


def test_in_pytest_the_failure_shows_the_callers_line(pytester):
    pytester.makepyfile(
        test_user=textwrap.dedent(
            """
            from gradcheck_cli.testing import assert_gradients

            def back_propagation(X, T, W, B):
                raise ValueError("not written yet")

            def test_backprop():
                assert_gradients(back_propagation, backends=["numpy"])
            """
        )
    )
    result = pytester.runpytest_subprocess("-q")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            ">*assert_gradients(back_propagation, backends=*",
            "E *AssertionError: ✗ 1 of 2 backends failed: back_propagation*",
            "E *✗ back_propagation: ValueError: not written yet",
        ]
    )
    assert "testing.py" not in result.stdout.str()  # assert_gradients' own frame is hidden
