"""The trial the training-service contract suite runs, as a script (``python contract_trial.py``,
for services that run commands) or as a function (``behave``, for the in-process fake).

``CONTRACT_BEHAVIOUR`` in the trial's environment says what it does:

- ``report``: reads its ``parameter.json``, prints to stdout and stderr, echoes
  ``CONTRACT_VALUE`` and its trial id, reports an intermediate and a final metric, exits 0;
- ``exit3``: prints a line to stderr and exits 3;
- ``sleep``: starts a child that sleeps (its pid in ``child.pid``), then sleeps itself, 60 s.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO

from nascli import channel


def behave(
    env: Mapping[str, str], out: IO[str], err: IO[str], sleep: Callable[[float], bool],
    spawn_child: bool,
) -> int:  # fmt: skip
    trial_dir = Path(env["NASCLI_TRIAL_DIR"])
    kind = env.get("CONTRACT_BEHAVIOUR", "report")
    if kind == "report":
        parameter_id, parameters, _ = channel.read_parameters(trial_dir)
        print(f"hello from {env['NASCLI_TRIAL_ID']} on {env['NASCLI_PLATFORM']}", file=out)
        print(f"value={env.get('CONTRACT_VALUE')}", file=out)
        print("a warning", file=err)
        channel.append_metric(trial_dir, channel.INTERMEDIATE, 0.25)
        channel.append_metric(trial_dir, channel.FINAL, {"default": 0.5, "pid": parameter_id})
        return 0
    if kind == "exit3":
        print("failing on purpose", file=err)
        return 3
    if kind == "sleep":
        if spawn_child:
            child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
            (trial_dir / "child.pid").write_text(str(child.pid))
        (trial_dir / "started").write_text("1")
        sleep(60.0)
        return 0
    raise ValueError(f"unknown CONTRACT_BEHAVIOUR {kind!r}")


if __name__ == "__main__":
    sys.exit(behave(os.environ, sys.stdout, sys.stderr, lambda s: time.sleep(s) or True, True))
