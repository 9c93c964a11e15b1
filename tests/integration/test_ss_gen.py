"""``nascli ss_gen`` end to end: the real CLI runs a real trial command."""

from __future__ import annotations

import json
import time

import pytest

from tests.helpers import PYTHON, REPO, pid_alive, run_nascli, torch_modules_after

EXPECTED_TRIAL_SPACE = {
    "first_conv": {"_type": "layer_choice", "_value": ["0", "1"]},
    "mid_conv": {"_type": "layer_choice", "_value": ["conv3x3", "conv5x5", "dil3x3"]},
    "skip": {"_type": "input_choice", "_value": {"candidates": ["", ""], "n_chosen": 1}},
}


@pytest.mark.parametrize("command", ["ss_gen", "ss-gen"])
def test_ss_gen_writes_the_trial_search_space(tmp_path, command):
    out = tmp_path / "space.json"
    result = run_nascli(
        command,
        "--trial_command",
        f"{PYTHON} trial.py",
        "--trial_dir",
        str(REPO / "trial"),
        "--file",
        str(out),
    )
    assert result.returncode == 0, result.stderr
    assert "3 choices, 12 architectures" in result.stdout
    assert json.loads(out.read_text()) == EXPECTED_TRIAL_SPACE
    # config_nas.yml uses the committed copy: it must be what the trial code defines today.
    assert json.loads((REPO / "trial" / "search_space.json").read_text()) == EXPECTED_TRIAL_SPACE


def _script(tmp_path, body: str) -> str:
    path = tmp_path / "script.py"
    path.write_text(body)
    return f"{PYTHON} {path}"


def test_failing_command_reports_exit_code_and_stderr_tail(tmp_path):
    cmd = _script(
        tmp_path, "import sys\nsys.stderr.write('line1\\nmodel broke here\\n')\nsys.exit(3)\n"
    )
    result = run_nascli("ss_gen", "-t", cmd, "-d", str(tmp_path), "-f", str(tmp_path / "o.json"))
    assert result.returncode == 1
    assert "failed with exit code 3" in result.stderr and "model broke here" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "o.json").exists()


def test_hanging_command_is_killed_with_its_children(tmp_path):
    pids = tmp_path / "pids"
    cmd = _script(
        tmp_path,
        f"""
import os, subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
open({str(pids)!r}, "w").write(f"{{os.getpid()}} {{child.pid}}")
time.sleep(120)
""",
    )
    start = time.monotonic()
    result = run_nascli(
        "ss_gen", "-t", cmd, "-d", str(tmp_path), "--timeout", "2", "-f", str(tmp_path / "o.json")
    )
    assert time.monotonic() - start < 30
    assert result.returncode == 1 and "did not finish within 2 s" in result.stderr
    for pid in map(int, pids.read_text().split()):
        deadline = time.monotonic() + 5
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not pid_alive(pid)


def test_command_that_never_builds_the_space(tmp_path):
    result = run_nascli(
        "ss_gen",
        "-t",
        _script(tmp_path, "print('hi')\n"),
        "-d",
        str(tmp_path),
        "-f",
        str(tmp_path / "o.json"),
    )
    assert result.returncode == 1
    assert "without writing a search space" in result.stderr
    assert "get_and_apply_next_architecture" in result.stderr


def test_garbage_search_space_is_refused(tmp_path):
    cmd = _script(
        tmp_path,
        "import os\nopen(os.environ['NASCLI_GEN_SEARCH_SPACE'], 'w')"
        '.write(\'{"k": {"_type": "layer_choice", "_value": []}}\')\n',
    )
    result = run_nascli("ss_gen", "-t", cmd, "-d", str(tmp_path), "-f", str(tmp_path / "o.json"))
    assert result.returncode == 2
    assert "invalid search space" in result.stderr and "key 'k'" in result.stderr


def test_bad_arguments_exit_2(tmp_path):
    result = run_nascli("ss_gen", "-t", "true", "-d", str(tmp_path / "nope"))
    assert result.returncode == 2 and "is not a directory" in result.stderr
    result = run_nascli("ss_gen", "-d", str(tmp_path))
    assert result.returncode == 2 and "--trial_command" in result.stderr


def test_debug_shows_the_traceback(tmp_path):
    result = run_nascli("--debug", "ss_gen", "-t", "true", "-d", str(tmp_path / "nope"))
    assert result.returncode == 2 and "Traceback" in result.stderr


def test_help_does_not_import_torch():
    assert torch_modules_after(["--help"]) == []
