"""A Report in a notebook: rendered by rich and as an HTML fragment for Jupyter."""

from __future__ import annotations

from rich.console import Console

import gradcheck_cli
from tests.helpers import forgot_the_mean


def test_rich_and_html_rendering():
    report = gradcheck_cli.check(forgot_the_mean, backends=["numpy"])
    console = Console(record=True, width=200, file=None)
    with console.capture() as capture:
        console.print(report)  # uses Report.__rich__
    text = capture.get()
    assert "✗  forgot_the_mean" in text and "1 of 2 backends failed" in text
    assert "1/N of the mean" in text
    html = report._repr_html_()
    # A fragment for Jupyter's page: no document, no global styles.
    assert html.lstrip().startswith("<pre") and "forgot_the_mean" in html
    assert "<html" not in html and "<body" not in html and "<style" not in html
