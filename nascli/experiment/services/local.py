"""``LocalTrainingService``: trials as process groups on this machine (the protocol and its
contract are in ``base.py``).

Each trial runs as a ``/bin/sh`` launcher in its own session and process group, stdin closed; the
launcher runs the command in a subshell and writes the exit marker (``channel.EXIT_FILE``) after
it, so that the exit code survives the manager being down. Exits are seen through a pidfd in the
manager's own ``Inbox.wait``, or by one waiting thread per trial where pidfds are unavailable;
before an exit is reported, leftover children of the trial's group get SIGTERM, then SIGKILL.
This is how the manager learns of exits within a millisecond: no polling of trial state. An
adopted trial is not our child: its exit code comes from the exit marker.

The launcher also joins the trial's cgroup (where there is one, see ``containment.py``) and
writes its pid to the launch marker (``channel.LAUNCH_FILE``: a resumed manager adopts a trial it
started but did not record, instead of starting it twice). Markers are created with noclobber, never
through a link the trial may have planted; the exit marker is opened before the command starts
and written through that descriptor (see ``launcher_script``). A trial has ended when its
leader has and no process it started is left (``Containment``: processes that left the group
count too).
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from nascli._files import open_private
from nascli.channel import EXIT_FILE, LAUNCH_FILE, read_exit_marker
from nascli.experiment.containment import Containment
from nascli.experiment.inbox import Inbox
from nascli.experiment.processes import (
    group_alive,
    process_alive,
    terminate_group,
    terminate_groups,
)
from nascli.experiment.services.base import TrialExited, TrialProcess, TrialSpec
from nascli.experiment.services.standby import Standby

__all__ = ["LocalTrainingService", "clear_exit_marker", "launcher_script"]

_ADOPTED_POLL = 0.05


def launcher_script(
    command: str, code_dir: Path, trial_dir: Path, cgroup: Path | None = None,
    wait_for_go: bool = False,
) -> str:  # fmt: skip
    """The ``/bin/sh -c`` script that runs ``command`` in ``code_dir`` for the trial whose
    directory is ``trial_dir`` (joining ``cgroup`` first, where given), writing the launch and
    exit markers; also used by the Ray node runner (``ray_runner``). Its caller removes a stale
    exit marker first (``clear_exit_marker``). ``wait_for_go``: after joining the cgroup, wait
    for a line on stdin (a pipe; end of file: exit 125 having run nothing, written no marker),
    then run with stdin from ``/dev/null`` (``standby.py``).

    The script starts no process but the command's subshell: every fork and exec here is paid
    by every trial on its way to the slot being refilled (``mv`` alone cost 2 ms a trial). So
    the exit marker is opened once, before the command starts, with noclobber (a link in its
    place is refused), and written through that descriptor when the command ends: whatever
    the trial puts at the marker's path meanwhile (a FIFO, a link) is never opened by the
    launcher. Until the command ends the marker is empty, which readers take for "no marker".
    """
    marker = shlex.quote(str(trial_dir / EXIT_FILE))
    launched = shlex.quote(str(trial_dir / LAUNCH_FILE))
    join = (
        f"echo $$ > {shlex.quote(str(cgroup / 'cgroup.procs'))} 2>/dev/null\n" if cgroup else ""
    )
    # The markers come first (before the cgroup's join, which can take 10 ms): a manager that
    # died right after starting the launcher finds the launch marker when resuming. A launcher
    # waiting for its go has not started the trial: its markers wait for the go.
    markers = (
        f"set -C\n{{ echo $$ > {launched}; }} 2>/dev/null\n"
        f"{{ command exec 9> {marker}; }} 2>/dev/null || exec 9> /dev/null\nset +C\n"
    )
    go = "read nascli_go || exit 125\nexec 0< /dev/null\n" if wait_for_go else ""
    return (
        (join + go + markers if wait_for_go else markers + join)
        + f"cd {shlex.quote(str(code_dir))} || exit 126\n"
        f"(\nexec 9>&-\n{command}\n)\n"
        "nascli_code=$?\n"
        "echo $nascli_code >&9\n"
        "exit $nascli_code\n"
    )


def clear_exit_marker(trial_dir: Path) -> None:
    """Remove what an earlier launch left at the exit marker's path (never followed: a link is
    removed, not its target), so that the launcher can create the marker afresh."""
    try:
        os.unlink(trial_dir / EXIT_FILE)
    except FileNotFoundError:
        pass
    except IsADirectoryError:
        shutil.rmtree(trial_dir / EXIT_FILE, ignore_errors=True)


@dataclass
class LocalTrainingService:
    """Runs trials as local subprocesses; exits are reported in ``inbox``."""

    inbox: Inbox
    kill_grace: float = 5.0
    platform: str = "local"
    containment: Containment | None = None
    _procs: dict[str, TrialProcess] = field(default_factory=dict)
    _where: dict[str, tuple[Path, Path | None]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _standby: Standby = field(default_factory=Standby)

    def launch(self, spec: TrialSpec) -> TrialProcess:
        popen, cgroup = self._standby.take(spec) or self._spawn(spec, wait_for_go=False)
        # No identity token here: reading /proc of a process still in exec waits for the exec
        # (about 1 ms); the manager records it off the slot-refill path (``process_token``).
        proc = TrialProcess(spec.trial_id, popen.pid, None, time.time())
        with self._lock:
            self._procs[spec.trial_id] = proc
            self._where[spec.trial_id] = (spec.trial_dir, cgroup)
        if not self.inbox.watch_pid(
            popen.pid, lambda: self._finish(proc, popen.wait(), time.time())
        ):
            threading.Thread(
                target=self._wait_child, args=(proc, popen), name=f"trial-{spec.trial_id}",
                daemon=True,
            ).start()  # fmt: skip
        return proc

    def prepare(self, spec: TrialSpec) -> None:
        """Start the trial's launcher now, waiting (in the trial's cgroup) for ``launch`` with
        an equal spec to run the command (``standby.py``); ``discard`` ends it unused."""
        self._standby.prepare(spec, lambda: self._spawn(spec, wait_for_go=True))

    def discard(self, trial_id: str) -> None:
        """End the launcher ``prepare`` started for ``trial_id`` (if any) without running it."""
        self._standby.discard(trial_id)

    def _spawn(
        self, spec: TrialSpec, wait_for_go: bool
    ) -> tuple[subprocess.Popen[bytes], Path | None]:
        cgroup = self.containment.trial_cgroup(spec.trial_id) if self.containment else None
        clear_exit_marker(spec.trial_dir)
        script = launcher_script(spec.command, spec.code_dir, spec.trial_dir, cgroup, wait_for_go)
        with (
            open(open_private(spec.stdout, append=True), "ab") as out,
            open(open_private(spec.stderr, append=True), "ab") as err,
        ):
            popen = subprocess.Popen(
                ["/bin/sh", "-c", script],
                cwd=spec.trial_dir,
                env=dict(spec.env),
                stdin=subprocess.PIPE if wait_for_go else subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,
            )
        return popen, cgroup

    def adopt(self, trial_id: str, pid: int, token: str | None, trial_dir: Path) -> bool:
        """Watch a still-running trial of an earlier manager; False when it is not alive."""
        if not process_alive(pid, token):
            return False
        proc = TrialProcess(trial_id, pid, token)
        cgroup = self.containment.trial_cgroup(trial_id) if self.containment else None
        with self._lock:
            self._procs[trial_id] = proc
            self._where[trial_id] = (trial_dir, cgroup)
        # A pidfd also works for a process that is not our child; poll where there is none.
        if not self.inbox.watch_pid(pid, lambda: self._finish_adopted(proc, trial_dir)):
            threading.Thread(
                target=self._watch_adopted, args=(proc, trial_dir), name=f"adopted-{trial_id}",
                daemon=True,
            ).start()  # fmt: skip
        return True

    def running(self) -> dict[str, TrialProcess]:
        with self._lock:
            return dict(self._procs)

    def cancel(self, trial_id: str) -> None:
        proc = self.running().get(trial_id)
        if proc is not None:
            threading.Thread(target=self._end, args=(proc, self.kill_grace), daemon=True).start()

    def shutdown(self, grace: float) -> None:
        """End every trial's process group and every process it started (SIGTERM, ``grace``
        seconds, SIGKILL); returns once they are gone. Their exits then arrive in the inbox as
        usual."""
        self._standby.discard_all()
        terminate_groups([p.pid for p in self.running().values()], grace)
        if self.containment is not None:
            self.containment.end_experiment(grace)

    def _end(self, proc: TrialProcess, grace: float) -> None:
        terminate_group(proc.pid, grace)
        where = self._where.get(proc.trial_id)
        if self.containment is not None and where is not None:
            self.containment.end_trial(where[0], where[1], grace)

    def _leftovers(self, proc: TrialProcess) -> bool:
        if group_alive(proc.pid):
            return True
        where = self._where.get(proc.trial_id)
        return bool(
            self.containment is not None and where and self.containment.members(*where)
        )

    # ------------------------------------------------------------------ watchers

    def _finish(
        self, proc: TrialProcess, code: int | None, end_time: float, check: bool = True
    ) -> None:
        if check and self._leftovers(proc):
            # Children left behind by the trial: end them before the slot (and its GPUs) is
            # given to the next trial, without holding up the other trials' exits.
            threading.Thread(
                target=self._end_leftovers, args=(proc, code, end_time), daemon=True
            ).start()
            return
        with self._lock:
            self._procs.pop(proc.trial_id, None)
            where = self._where.pop(proc.trial_id, None)
        if where is not None and where[1] is not None and self.containment is not None:
            self.containment.release(where[1])
        self.inbox.put(TrialExited(proc.trial_id, code, end_time))

    def _end_leftovers(self, proc: TrialProcess, code: int | None, end_time: float) -> None:
        self._end(proc, grace=2.0)
        self._finish(proc, code, end_time, check=False)  # what SIGKILL did not end stays ended

    def _wait_child(self, proc: TrialProcess, popen: subprocess.Popen[bytes]) -> None:
        code = popen.wait()
        self._finish(proc, code, time.time())

    def _watch_adopted(self, proc: TrialProcess, trial_dir: Path) -> None:
        while process_alive(proc.pid, proc.token):
            time.sleep(_ADOPTED_POLL)
        self._finish_adopted(proc, trial_dir)

    def _finish_adopted(self, proc: TrialProcess, trial_dir: Path) -> None:
        marker = read_exit_marker(trial_dir)
        code, end = marker if marker else (None, time.time())
        self._finish(proc, code, end)
