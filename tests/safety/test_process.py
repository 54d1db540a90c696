"""User code in a child process: what it does stays there; the child does not outlive its use."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from gradcheck_cli import check
from gradcheck_cli.backends import create_backend
from gradcheck_cli.backends.user import UserBackend
from gradcheck_cli.safety import process
from gradcheck_cli.verdict import run_checks
from tests.helpers import USER_CORPUS

CORRECT = (USER_CORPUS / "correct.py").read_text()


def _gone(pid: int) -> bool:
    """Whether `pid` has ended (a zombie counts: it runs nothing)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return "State:\tZ" in status


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_the_child_and_what_it_started_end_with_the_call(tmp_path, exercise_problem):
    (tmp_path / "spawns.py").write_text(
        "import os, subprocess\n"
        f"open({str(tmp_path / 'pids')!r}, 'w').write("
        'f\'{os.getpid()} {subprocess.Popen(["sleep", "30"]).pid}\')\n' + CORRECT
    )
    user = UserBackend(f"{tmp_path / 'spawns.py'}:general")
    report = run_checks(exercise_problem, [create_backend("numpy"), user])
    assert report.ok
    pids = [int(p) for p in (tmp_path / "pids").read_text().split()]
    deadline = time.monotonic() + 5
    while not all(_gone(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert all(_gone(p) for p in pids)


def test_a_backend_can_be_run_again_and_leaves_this_process_alone(tmp_path, exercise_problem):
    # (torch.set_grad_enabled(False) at import: the adversarial corpus of the CLI tests.)
    (tmp_path / "state.py").write_text(
        "import sys, numpy as np\nnp.seterr(all='raise')\nsys.modules['gc_marker'] = 1\n" + CORRECT
    )
    errors = np.geterr()
    user = UserBackend(f"{tmp_path / 'state.py'}:general")
    for _ in range(2):  # a fresh process each time
        assert run_checks(exercise_problem, [create_backend("numpy"), user]).ok
    assert np.geterr() == errors
    assert "gc_marker" not in sys.modules
    assert not any(name.startswith("_gradcheck_user_") for name in sys.modules)


def test_output_is_shown_on_stderr_clipped_and_a_flood_is_stopped(
    tmp_path, exercise_problem, capfd, monkeypatch
):
    (tmp_path / "chatty.py").write_text(
        "print('x' * 2_000_000)\n" + CORRECT.replace("def general(", "def general(", 1)
    )
    report = run_checks(exercise_problem, [UserBackend(f"{tmp_path / 'chatty.py'}:general")])
    assert report.ok
    captured = capfd.readouterr()
    assert captured.out == ""
    assert "more bytes of output from chatty.py:general not shown" in captured.err
    assert len(captured.err) < 2 * process.OUTPUT_SHOWN
    monkeypatch.setattr(process, "OUTPUT_LIMIT", 1 << 20)
    (tmp_path / "flood.py").write_text(
        "def general(X, T, W, B):\n    while True:\n        print('y' * 10_000)\n"
    )
    report = run_checks(exercise_problem, [UserBackend(f"{tmp_path / 'flood.py'}:general")])
    assert report.backends[0].error == "printed more than 1 MB of output"


def test_an_unused_backend_stops_its_child(tmp_path):
    user = UserBackend(f"{USER_CORPUS / 'correct.py'}:general")
    child = user._child
    assert child is not None and child.alive
    user.close()
    assert not child.alive


def test_check_isolates_file_functions_and_runs_live_ones_here(tmp_path):
    (tmp_path / "slow.py").write_text("import time\ndef general(X, T, W, B):\n    time.sleep(30)\n")
    start = time.monotonic()
    report = check(f"{tmp_path / 'slow.py'}:general", backends=["numpy"], timeout=1)
    assert time.monotonic() - start < 15
    assert not report.ok
    assert report.backend("slow.py:general").error == "did not finish within the 1 s timeout"
    calls = []
    namespace: dict[str, object] = {}
    exec(compile(CORRECT, str(USER_CORPUS / "correct.py"), "exec"), namespace)
    general = namespace["general"]

    def live(X, T, W, B):  # a closure: no other process could import it
        calls.append(os.getpid())
        return general(X, T, W, B)  # type: ignore[operator]

    assert check(live, backends=["numpy"]).ok
    assert calls == [os.getpid()]


@pytest.mark.parametrize("fork_server", [True, False])
def test_a_child_sees_the_current_folder_and_environment(
    tmp_path, exercise_problem, monkeypatch, fork_server
):
    # Forked children come from a server started earlier, elsewhere: they still get gradcheck's
    # folder and environment of now, as a new process would.
    monkeypatch.setattr(process, "USE_FORK_SERVER", fork_server)
    (tmp_path / "where.py").write_text(
        "import os\n"
        f"open({str(tmp_path / 'seen')!r}, 'w').write(os.getcwd() + '|' + os.environ['GC_SEEN'])\n"
        + CORRECT
    )
    (tmp_path / "run").mkdir()
    monkeypatch.chdir(tmp_path / "run")
    monkeypatch.setenv("GC_SEEN", "yes")
    report = run_checks(exercise_problem, [UserBackend(f"{tmp_path / 'where.py'}:general")])
    assert report.ok
    assert (tmp_path / "seen").read_text() == f"{tmp_path / 'run'}|yes"
