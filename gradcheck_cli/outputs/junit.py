"""A Report as JUnit XML: one testsuite per run, one testcase per backend x parameter.

Besides the parameter testcases, every backend gets a `loss` testcase (its
reported loss against the float64 reference, and any other backend-level
finding), and the run gets one `finite differences` testcase. The layout
(testsuites > testsuite > testcase with failure / error / skipped) is the one
Jenkins, GitLab, Azure and the GitHub JUnit report actions all read.

It is valid under the strict schemas too: Jenkins' junit-10.xsd (xunit plugin) and the
Apache Ant JUnit.xsd. So <testsuites> has no attributes (the Ant schema allows none, and
Jenkins' no `skipped`), the one <testsuite> has `package` and `id`, its properties, testcases,
then <system-out> and <system-err>; times have three decimals, the timestamp no zone.
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


def _seconds(value: float) -> str:
    """A duration as JUnit readers write it: seconds with three decimals."""
    return f"{max(value, 0.0):.3f}"


def _case(suite: ET.Element, classname: str, name: str, seconds: float) -> ET.Element:
    return ET.SubElement(suite, "testcase", classname=classname, name=name, time=_seconds(seconds))


def _mark(case: ET.Element, tag: str, message: str, kind: str, body: str | None = None) -> None:
    element = ET.SubElement(case, tag, message=_clean(message), type=kind)
    if body:
        element.text = _clean(body)


def _skip(case: ET.Element, message: str) -> None:
    # A message only: the Ant schema allows <skipped> no `type`.
    ET.SubElement(case, "skipped", message=_clean(message))


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
            _skip(case, f"{result.name} did not return {name}")
        elif param.ok and param.max_rel_err is None and directional:
            # Directional mode checks projections on random directions, not this parameter's
            # entries: a passing testcase would claim a check that did not happen.
            message = f"{name} not checked entry by entry: see the finite differences testcase"
            _skip(case, message)
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
        _skip(case, f"{result.name} did not report a loss")


def to_junit(report: Report, *, timestamp: datetime | None = None) -> str:
    """The JUnit XML document of a report (UTF-8 text with an XML declaration)."""
    timings = report.timings
    fd_seconds = float(timings.get("finite_difference", 0.0) or 0.0)
    total = float(timings.get("load", 0.0) or 0.0) + fd_seconds
    total += sum(r.seconds for r in report.backends)
    root = ET.Element("testsuites")
    suite = ET.SubElement(
        root,
        "testsuite",
        name=SUITE_NAME,
        package=SUITE_NAME,
        id="0",
        timestamp=(timestamp or datetime.now(timezone.utc)).strftime("%Y-%m-%dT%H:%M:%S"),
        hostname=socket.gethostname() or "localhost",
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
        _skip(fd_case, f"--fd off: compared with the {report.reference_name}")
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
    suite.set("tests", str(len(cases)))
    suite.set("failures", str(counts["failure"]))
    suite.set("errors", str(counts["error"]))
    suite.set("skipped", str(counts["skipped"]))
    suite.set("time", _seconds(total))
    # Required by the Ant schema after the testcases, even when empty.
    ET.SubElement(suite, "system-out")
    ET.SubElement(suite, "system-err")
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"
