"""The JSON report as text: strict JSON, which has no NaN or Infinity.

`json.dumps` would write the non-standard tokens `NaN` and `Infinity`, which most parsers
(jq, JavaScript, Go) reject. A non-finite number is written as null instead, and a note in
the report's `notes` says where it was and what it was.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

from ..verdict.result import Report

_MAX_NOTES = 10


def _clean(value: Any, where: str, found: list[str]) -> Any:
    """`value` with non-finite floats as None (recorded in `found`) and NumPy types as plain."""
    if isinstance(value, dict):
        return {
            str(k): _clean(v, f"{where}.{k}" if where else str(k), found) for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        out = []
        for i, item in enumerate(value):
            name = item.get("name") if isinstance(item, dict) else None
            out.append(_clean(item, f"{where}[{name if isinstance(name, str) else i}]", found))
        return out
    if isinstance(value, np.ndarray):
        return _clean(value.tolist(), where, found)
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, (float, np.floating)):
        number = float(value)
        if not math.isfinite(number):
            found.append(f"{where} was {number}")
            return None
        return number
    return value


def to_json_text(data: dict[str, Any], notes_key: str | None = "notes") -> str:
    """`data` as indented strict JSON; non-finite numbers become null, with a note appended to
    the list `notes_key` (created if need be; None: no note)."""
    found: list[str] = []
    clean = _clean(data, "", found)
    if found and notes_key is not None:
        shown = found[:_MAX_NOTES]
        more = f" (and {len(found) - _MAX_NOTES} more)" if len(found) > _MAX_NOTES else ""
        note = "not finite, written as null: " + "; ".join(shown) + more
        clean[notes_key] = [*clean.get(notes_key, []), note]
    return json.dumps(clean, indent=2, allow_nan=False) + "\n"


def report_json(report: Report) -> str:
    """The JSON report of `gradcheck run --json` (Report.to_dict(), strict JSON)."""
    return to_json_text(report.to_dict())
