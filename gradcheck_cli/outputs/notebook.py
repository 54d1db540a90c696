"""A Report in a notebook or a rich console: `check()` returns a NotebookReport.

The result model (check.result.Report) knows nothing of rendering; this subclass adds
Jupyter's `_repr_html_` (an HTML fragment, no page or global styles) and rich's
`__rich__`, both rendering the text report.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, fields
from typing import Any

from ..verdict.result import Report

# A fragment: Jupyter puts it inside its own page, so no <html>, <body> or global styles.
_FRAGMENT = (
    '<pre class="gradcheck-report" style="font-family: Menlo, \'DejaVu Sans Mono\', '
    "consolas, 'Courier New', monospace; line-height: 1.2\">{code}</pre>"
)


def to_html(report: Report) -> str:
    """The text report as an HTML fragment with inline styles."""
    from rich.console import Console

    from .text import render

    console = Console(record=True, width=120, file=io.StringIO(), force_jupyter=False)
    console.print(render(report))
    return console.export_html(inline_styles=True, code_format=_FRAGMENT)


@dataclass(frozen=True, eq=False, repr=False)
class NotebookReport(Report):
    """A Report that displays itself in Jupyter and when printed with rich."""

    @classmethod
    def of(cls, report: Report) -> NotebookReport:
        """The same report, displayable."""
        return cls(**{f.name: getattr(report, f.name) for f in fields(report)})

    def __rich__(self) -> Any:
        """The full tables and findings when printed with rich."""
        from .text import render

        return render(self)

    def _repr_html_(self) -> str:
        """The text report as an HTML fragment, for Jupyter."""
        return to_html(self)
