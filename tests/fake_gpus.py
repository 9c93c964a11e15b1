"""A fake ``nvidia-smi`` for GPU tests: put ``install(dir)`` on PATH; it answers the two queries
nascli makes from CSV files that tests can rewrite at any time."""

from __future__ import annotations

import os
import stat
from pathlib import Path

FOUR_GPUS_ONE_BUSY = """\
0, GPU-aaaa, NVIDIA A100, 40960, 10, 0
1, GPU-bbbb, NVIDIA A100, 40960, 10, 0
2, GPU-cccc, NVIDIA A100, 40960, 30000, 97
3, GPU-dddd, NVIDIA A100, 40960, 10, 0
"""
# PID 1 (init) stands for a process of another user on GPU 2.
BUSY_APPS = "GPU-cccc, 1, 29000\n"

_SCRIPT = """#!/bin/sh
[ -n "$FAKE_SMI_SLEEP" ] && sleep "$FAKE_SMI_SLEEP"
if [ -n "$FAKE_SMI_FAIL" ]; then
  echo "NVIDIA-SMI has failed because it couldn't communicate" >&2
  exit 9
fi
case "$1" in
  --query-gpu=*) cat "{dir}/gpus.csv" ;;
  --query-compute-apps=*) cat "{dir}/apps.csv" ;;
  *) echo "fake nvidia-smi: unsupported arguments $*" >&2; exit 2 ;;
esac
"""


def install(directory: Path, gpus: str = FOUR_GPUS_ONE_BUSY, apps: str = BUSY_APPS) -> Path:
    """Write the fake ``nvidia-smi`` and its data into ``directory``; returns the directory."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "gpus.csv").write_text(gpus)
    (directory / "apps.csv").write_text(apps)
    script = directory / "nvidia-smi"
    script.write_text(_SCRIPT.replace("{dir}", str(directory)))
    script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return directory


def path_with(directory: Path) -> str:
    return f"{directory}{os.pathsep}{os.environ.get('PATH', '')}"
