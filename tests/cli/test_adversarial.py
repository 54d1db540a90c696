"""The adversarial corpus (tests/adversarial.py) through the CLI: every case keeps the contract.

No false pass: a case that expects a failure never exits 0. Bad input is exit 2 with one line
on stderr, no traceback, nothing on stdout. Nothing exits 3. `--json` stdout is strict JSON
(no NaN or Infinity). No output line is a workflow command except gradcheck's annotations.
"""

from __future__ import annotations

import json
import re

import pytest
from typer.testing import CliRunner

from gradcheck_cli import cli
from tests.adversarial import CASES, Case

runner = CliRunner()
# What a CI runner obeys: a line starting, after whitespace, with :: or ##[ (its own split:
# CR, LF). gradcheck's own annotations are the only ones allowed.
_COMMAND = re.compile(r"^\s*(::|##\[)")
# Our own annotations: a level, maybe where (file=, line=), then our title.
_OURS = re.compile(r"^::(error|warning|notice) (file=[^,:]*,line=\d+,)?title=gradcheck")


def strict_json(text: str) -> object:
    def refuse(token: str) -> object:
        raise ValueError(f"non-standard JSON token {token}")

    return json.loads(text, parse_constant=refuse)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_adversarial_case_keeps_the_contract(tmp_path, monkeypatch, case: Case):
    if case.torch:
        pytest.importorskip("torch")
    monkeypatch.chdir(tmp_path)
    args = case.build(tmp_path)
    result = runner.invoke(cli.app, args, env={"COLUMNS": "200"})
    output = result.stdout + result.stderr
    assert result.exit_code == case.code, (result.exit_code, output)
    if case.code == 2:
        assert result.stdout == "", result.stdout
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
        assert case.message in " ".join(result.stderr.split()), result.stderr
    else:
        assert "Traceback" not in result.stderr
        if "--json" in args:
            report = strict_json(result.stdout)
            if case.message:
                errors = [b["error"] or "" for b in report["backends"]]  # type: ignore[index]
                assert any(case.message in e for e in errors), errors
    for line in re.split(r"\r\n|\r|\n", output):
        assert not _COMMAND.match(line) or _OURS.match(line), line
    if case.check is not None:
        case.check(tmp_path, result)
