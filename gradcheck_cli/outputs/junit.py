"""A Report as JUnit XML: one testsuite per run, one testcase per backend x parameter.

Besides the parameter testcases, every backend gets a `loss` testcase (its
reported loss against the float64 reference, and any other backend-level
finding), and the run gets one `finite differences` testcase. The layout
(testsuites > testsuite > testcase with failure / error / skipped) is the one
Jenkins, GitLab, Azure and the GitHub JUnit report actions all read.
"""

from __future__ import annotations

import re
import socket
import xml.etree.ElementTree as ET
from datetime import datetime, timezone

from ..verdict.result import BackendResult, Report
from .notices import problem_warnings
from .verdicts import backend_failure, fd_failure, num, param_failure

SUITE_NAME = "gradcheck"
# XML 1.0 cannot hold most control characters, which a user's traceback may contain.
_INVALID_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _clean(text: str) -> str:
    return _INVALID_XML.sub("\ufffd", text)


def _case(suite: ET.Element, classname: str, name: str, seconds: float) -> ET.Element:
    return ET.SubElement(
        suite, "testcase", classname=classname, name=name, time=f"{max(seconds, 0.0):.6f}"
    )


def _mark(case: ET.Element, tag: str, message: str, kind: str, body: str | None = None) -> None:
    element = ET.SubElement(case, tag, message=_clean(message), type=kind)
    if body:
        element.text = _clean(body)


def _backend_cases(suite: ET.Element, result: BackendResult, report: Report) -> None:
    classname = f"{SUITE_NAME}.{result.name}"
    names = report.problem.parameter_names
    # The backend's time is spread over its testcases so that their sum is its runtime.
    share = result.seconds / (len(names) + 1)
    by_name = {p.name: p for p in result.params}
    fd = report.finite_difference
    directional = fd is not None and fd.mode == "directional"
    for name in names:
        case = _case(suite, classname, name, share)
        param = by_name.get(name)
        if result.error is not None:
            _mark(case, "error", backend_failure(result), "BackendError", result.traceback)
        elif param is None:
            _mark(case, "skipped", f"{result.name} did not return {name}", "skipped")
        elif param.ok and param.max_rel_err is None and directional:
            # Directional mode checks projections on random directions, not this parameter's
            # entries: a passing testcase would claim a check that did not happen.
            message = f"{name} not checked entry by entry: see the finite differences testcase"
            _mark(case, "skipped", message, "skipped")
        elif not param.ok:
            body = (
                f"shape {list(param.shape)}, gradient norm {param.norm:.6g}\n"
                f"max abs err {num(param.max_abs_err, '.3e')}, "
                f"max rel err {num(param.max_rel_err, '.3e')}\n"
                f"reference: {report.reference_name}\n"
                f"problem: {report.problem.describe()}"
            )
            _mark(case, "failure", param_failure(result, param, report), "GradientMismatch", body)
    case = _case(suite, classname, "loss", share)
    params_ok = all(p.ok for p in result.params)
    if result.error is not None:
        _mark(case, "error", backend_failure(result), "BackendError", result.traceback)
    elif not result.ok and params_ok:
        # The backend failed on something other than a parameter: its loss (or a later check).
        _mark(case, "failure", backend_failure(result), "LossMismatch", "\n".join(result.hints))
    elif result.loss is None:
        _mark(case, "skipped", f"{result.name} did not report a loss", "skipped")


def to_junit(report: Report, *, timestamp: datetime | None = None) -> str:
    """The JUnit XML document of a report (UTF-8 text with an XML declaration)."""
    timings = report.timings
    fd_seconds = float(timings.get("finite_difference", 0.0) or 0.0)
    total = float(timings.get("load", 0.0) or 0.0) + fd_seconds
    total += sum(r.seconds for r in report.backends)
    root = ET.Element("testsuites", name=SUITE_NAME)
    suite = ET.SubElement(
        root,
        "testsuite",
        name=SUITE_NAME,
        timestamp=(timestamp or datetime.now(timezone.utc)).strftime("%Y-%m-%dT%H:%M:%S"),
        hostname=socket.gethostname(),
    )
    properties = ET.SubElement(suite, "properties")
    for key, value in (
        ("problem", report.problem.describe()),
        ("source", report.problem.source),
        ("reference", report.reference_name),
        ("rtol", repr(report.rtol)),
        ("atol", repr(report.atol)),
        *(("warning", w) for w in problem_warnings(report.problem)),
    ):
        ET.SubElement(properties, "property", name=key, value=_clean(value))
    for result in report.backends:
        _backend_cases(suite, result, report)
    fd_case = _case(suite, f"{SUITE_NAME}.reference", "finite differences", fd_seconds)
    fd = report.finite_difference
    message = fd_failure(report)
    if report.unresolved and message is not None and (fd is None or fd.ok):
        _mark(fd_case, "failure", message, "Inconclusive")
    elif fd is None:
        _mark(fd_case, "skipped", f"--fd off: compared with the {report.reference_name}", "skipped")
    elif message is not None:
        body = (
            f"checked {fd.checked} {fd.unit}, failed {fd.failed}, at kinks {fd.kinks}, "
            f"step {fd.step:g}"
        )
        _mark(fd_case, "failure", message, "GradientMismatch", body)

    cases = suite.findall("testcase")
    counts = {
        tag: sum(1 for c in cases if c.find(tag) is not None)
        for tag in ("failure", "error", "skipped")
    }
    for element in (root, suite):
        element.set("tests", str(len(cases)))
        element.set("failures", str(counts["failure"]))
        element.set("errors", str(counts["error"]))
        element.set("skipped", str(counts["skipped"]))
        element.set("time", f"{total:.6f}")
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"
