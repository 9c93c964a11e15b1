"""Generate a search space by running the trial command once (``nascli ss_gen``).

The command runs in the trial directory with ``NASCLI_GEN_SEARCH_SPACE`` set; the trial's
``get_and_apply_next_architecture(model)`` writes the model's search space there and exits 0.
The result is validated before it is written to the output path. Everything the command needs
runs in its own process group, which is killed when the command hangs past ``timeout`` or when
the caller is interrupted, so nothing is left behind.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

from nascli import space as spaces
from nascli._text import file_tail
from nascli.channel import ENV_GEN_SEARCH_SPACE
from nascli.errors import SearchSpaceError, TrialCommandError, UsageError
from nascli.experiment.processes import terminate_group

__all__ = ["generate_search_space", "DEFAULT_TIMEOUT"]

DEFAULT_TIMEOUT = 600.0
_TAIL_LINES = 15


def generate_search_space(
    command: str, trial_dir: str | os.PathLike[str], timeout: float = DEFAULT_TIMEOUT
) -> spaces.SearchSpace:
    """Run ``command`` (a shell command line) once in ``trial_dir`` and return its search space.

    Raises:
        UsageError: ``trial_dir`` does not exist or the command is empty.
        TrialCommandError: the command failed (exit code and stderr tail in the message), hung
            past ``timeout`` seconds, or ended without writing a search space.
        SearchSpaceError: what it wrote is not a valid search space.
    """
    workdir = Path(trial_dir)
    if not command.strip():
        raise UsageError("--trial_command: the command is empty")
    if not workdir.is_dir():
        raise UsageError(f"--trial_dir: {str(workdir)!r} is not a directory")
    with tempfile.TemporaryDirectory(prefix="nascli-ss-gen-") as tmp:
        out = Path(tmp) / "search_space.json"
        stderr_path = Path(tmp) / "stderr"
        env = dict(os.environ, **{ENV_GEN_SEARCH_SPACE: str(out)})
        env.pop("NASCLI_PLATFORM", None)
        with open(stderr_path, "wb") as stderr:
            proc = subprocess.Popen(
                command,
                shell=True,
                cwd=workdir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                start_new_session=True,
            )
            try:
                code = proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                raise TrialCommandError(
                    f"trial command {command!r} did not finish within {timeout:g} s "
                    f"(it should end at get_and_apply_next_architecture(model)); it was killed"
                    + _tail(stderr_path)
                ) from None
            finally:
                terminate_group(proc.pid, grace=3.0, leader=proc)
        if code != 0:
            raise TrialCommandError(
                f"trial command {command!r} in {str(workdir)!r} failed with exit code {code}"
                + _tail(stderr_path)
            )
        if not out.exists():
            raise TrialCommandError(
                f"trial command {command!r} exited 0 without writing a search space: it must "
                "call nascli.nas.get_and_apply_next_architecture(model) after building the model"
                + _tail(stderr_path)
            )
        try:
            return spaces.load_search_space(out)
        except SearchSpaceError as exc:
            raise SearchSpaceError(exc.problems, f"the output of {command!r}") from None


def _tail(path: Path) -> str:
    return file_tail(path, _TAIL_LINES, "its stderr")
