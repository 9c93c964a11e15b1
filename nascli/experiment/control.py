"""Starting, stopping and resuming experiments, and cancelling trials, from a CLI process.

These run in the ``nascli`` command's process, next to (not inside) the manager. Changes to an
experiment whose manager runs go through the manager: ``stop`` signals it (SIGTERM) and waits for
it to cancel its trials and record STOPPED; ``kill_trial`` records the cancellation in the store
before it signals the trial's process group, so the manager records USER_CANCELED whatever the
exit code. When no manager runs (it crashed or was killed), these commands take the experiment's
lock and do the work themselves. Every wait here has a timeout.

``stop`` wins at every moment: a start is recorded as a request (``store.request_start``) before
the manager is spawned, and the manager runs only if the request is still there once it holds
the lock; ``stop`` withdraws it, waits out a manager between taking the lock and recording its
pid, and signals before it writes anything, so it works when the store cannot be written (a
full disk, a writer stuck in its transaction): processes are ended first, the record after.

The detached manager is started with a sys.path that does not hold the directory ``create`` is
run in (``python -m`` would put it first): the only user code it runs is the trial command and
the custom tuner the config names.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from nascli._text import file_tail
from nascli.errors import ManagerStartError, NasCliError, UsageError
from nascli.experiment.containment import Containment
from nascli.experiment.processes import (
    manager_alive,
    process_alive,
    terminate_group,
    terminate_groups,
)
from nascli.experiment.store import ExperimentRecord, ExperimentStore, StoreFullError, TrialRecord
from nascli.experiment.store import delete_experiment as _delete_dir
from nascli.experiment.trials import ACTIVE, LIVE_EXPERIMENT, ExperimentStatus, Ledger, TrialStatus

__all__ = [
    "ManagerStartError",
    "manager_alive",
    "start_manager",
    "resume_experiment",
    "check_resumable",
    "stop_experiment",
    "kill_trial",
    "delete_experiment",
    "daemon_command",
]

_READY_TIMEOUT = 15.0


def daemon_command(exp_dir: Path, token: str) -> list[str]:
    """The command line of the detached manager: ``nascli.cli.daemon`` run with the script
    directory (``''``: the current directory) dropped from ``sys.path``, and nascli's own root
    appended so that a source checkout still imports (after the standard library and
    site-packages, so nothing there is shadowed)."""
    root = str(Path(__file__).resolve().parents[2])
    code = (
        "import sys, runpy; del sys.path[0]; "
        f"sys.path.append({root!r}); "
        "runpy.run_module('nascli.cli.daemon', run_name='__main__', alter_sys=True)"
    )
    return [sys.executable, "-c", code, str(exp_dir), token]


def start_manager(
    store: ExperimentStore, timeout: float = _READY_TIMEOUT, token: str | None = None
) -> int:
    """Start the detached manager (own session, output to ``manager.log``, working directory
    the experiment's) and return its pid once it has taken the experiment (lock held, pid
    recorded), or once it has already ended it (a very short experiment, or a ``stop`` that
    came first: the experiment's status says which).

    ``token``: the start request to answer (``store.pending_start()`` of a new experiment);
    a new request is made when None (``resume``).

    Raises:
        ManagerStartError: it failed, or did not take the experiment within ``timeout``.
    """
    token = token or store.request_start()
    with open(store.manager_log, "ab") as log:
        proc = subprocess.Popen(
            daemon_command(store.dir, token),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            cwd=store.dir,
            start_new_session=True,
            close_fds=True,
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        code = proc.poll()
        if store.experiment().manager_pid == proc.pid:
            proc.returncode = 0  # detached: nobody waits for it, silence Popen's warning
            return proc.pid
        if code is not None:
            if code == 0 and not store.start_requested(token):
                return proc.pid  # it ran and ended already, or a stop withdrew the start
            store.withdraw_start()
            raise ManagerStartError(
                f"the manager of experiment {store.id} exited at once (code {code})"
                + _log_tail(store)
            )
        time.sleep(0.01)
    store.withdraw_start()
    terminate_group(proc.pid, grace=2.0, leader=proc)
    raise ManagerStartError(
        f"the manager of experiment {store.id} did not start within {timeout:g} s"
        + _log_tail(store)
    )


def _log_tail(store: ExperimentStore) -> str:
    return file_tail(store.manager_log, 12, str(store.manager_log))


def resume_experiment(store: ExperimentStore) -> int:
    """Start a manager for a stopped or crashed experiment; returns its pid.

    Raises:
        UsageError: it is running, or it is DONE (nothing left to do).
    """
    check_resumable(store)
    return start_manager(store)


def check_resumable(store: ExperimentStore) -> None:
    """Raise ``UsageError`` unless the experiment can be resumed (not running, not DONE)."""
    exp = store.experiment()
    if store.manager_running():
        raise UsageError(
            f"experiment {exp.id} is running (manager pid {exp.manager_pid}); nothing to resume"
        )
    if exp.status == ExperimentStatus.DONE:
        raise UsageError(
            f"experiment {exp.id} is DONE ({exp.reason or 'budget used'}); nothing to resume"
        )


@dataclass(frozen=True)
class StopResult:
    experiment_id: str
    was_running: bool
    cancelled_trials: int


def stop_experiment(
    store: ExperimentStore, grace: float = 5.0, timeout: float = 30.0
) -> StopResult:
    """End the manager and every trial process (their process groups and every descendant,
    see ``containment.py``); the experiment ends STOPPED and its running trials USER_CANCELED
    before this returns. Signals come first, writes last.

    Raises:
        StoreFullError: every process was ended but the disk is too full to record it.
    """
    exp = store.experiment()
    running_before = store.status_counts()[TrialStatus.RUNNING.value]
    deadline = time.monotonic() + timeout
    while True:
        current = store.experiment()
        # (A manager in this very process, as in tests and `create -f`, is stopped with
        # Manager.request_stop, never by signalling ourselves.)
        if manager_alive(current) and current.manager_pid not in (None, os.getpid()):
            _end_manager(store, current, grace, deadline)
            break
        # No live manager on record: withdraw a start not yet taken; one that holds the lock
        # but has not recorded its pid yet is waited for, then signalled.
        store.withdraw_start()
        if not store.manager_running() or time.monotonic() >= deadline:
            break
        time.sleep(0.02)
    # Whatever the manager did not get to (it was not running, or it had to be killed).
    with store.exclusive():
        trials = store.trials([status.value for status in ACTIVE])
        # early-stopped (recorded) but perhaps never signalled when the manager died
        stopping = [t for t in store.trials([TrialStatus.EARLY_STOPPED.value]) if t.ended is None]
        groups = [
            t.pid for t in trials + stopping if t.pid and t.status != TrialStatus.WAITING
            and process_alive(t.pid, t.pid_token)
        ]  # fmt: skip
        terminate_groups(groups, grace)
        Containment(store.dir).end_experiment(grace)
        remote_error = _end_remote_trials(store, trials, grace)
        try:
            _record_stopped(store, trials, stopping)
        except StoreFullError:
            if not store.release_reserve():
                raise StoreFullError(
                    f"experiment {store.id}: its manager and trials were ended, but the disk is "
                    "too full to record that (free some space and run `nascli stop` again)"
                ) from None
            _record_stopped(store, trials, stopping)
    if remote_error is not None:
        raise NasCliError(f"experiment {exp.id} is STOPPED, but {remote_error}")
    return StopResult(exp.id, exp.status in LIVE_EXPERIMENT, running_before)


def _end_manager(
    store: ExperimentStore, exp: ExperimentRecord, grace: float, deadline: float
) -> None:
    """Signal the manager (after a best-effort note of ``grace``: a store that cannot be
    written costs at most half a second here) and wait for it to end; SIGKILL at ``deadline``."""
    assert exp.manager_pid is not None
    store.try_update_experiment(0.5, stop_grace=grace)  # the manager gives trials this long
    try:
        os.kill(exp.manager_pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    while time.monotonic() < deadline and process_alive(exp.manager_pid, exp.manager_token):
        time.sleep(0.02)
    if process_alive(exp.manager_pid, exp.manager_token):
        os.kill(exp.manager_pid, signal.SIGKILL)
        while process_alive(exp.manager_pid, exp.manager_token):
            time.sleep(0.01)


def _end_remote_trials(
    store: ExperimentStore, trials: list[TrialRecord], grace: float
) -> str | None:
    """End trials that run on a remote service's nodes (no local process), when no manager
    runs to do it. Returns what went wrong (the records are written regardless), or None."""
    from nascli.experiment.services.ray import TOKEN_PREFIX

    tokens = [t.pid_token for t in trials if t.pid_token and t.pid_token.startswith(TOKEN_PREFIX)]
    if not tokens:
        return None
    from nascli.experiment.config import ExperimentConfig
    from nascli.experiment.services.ray import ray_settings, stop_remote_trials

    config = ExperimentConfig.from_dict(store.experiment().config)
    try:
        stop_remote_trials(ray_settings(config, store.id), tokens, grace)
    except NasCliError as exc:
        return f"its {len(tokens)} trial(s) on the Ray cluster could not be reached: {exc}"
    return None


def _record_stopped(
    store: ExperimentStore, trials: list[TrialRecord], stopping: list[TrialRecord]
) -> None:
    now = time.time()
    ledger = Ledger(store)
    with store.transaction():
        for t in trials:
            ledger.cancel(t.id, "experiment stopped", ended=now)
        for t in stopping:  # its status stays: only its end is recorded
            store.update_trial(t.id, ended=now)
        if store.experiment_status() in LIVE_EXPERIMENT or trials:
            ledger.end_experiment(
                ExperimentStatus.STOPPED, "stopped by the user", by=" (by `nascli stop`)",
                ended=now,
            )  # fmt: skip


def delete_experiment(store: ExperimentStore) -> Path:
    """Remove an experiment's directory. Refused while its manager runs, and while any of its
    trials' processes is alive (a manager killed with ``kill -9`` leaves them running; once the
    directory is gone no command could reach them).

    Raises:
        UsageError: trial processes are alive (``nascli stop`` ends them).
    """
    live = {
        t.pid for t in store.trials(["RUNNING"]) if t.pid and process_alive(t.pid, t.pid_token)
    }
    live |= Containment(store.dir).experiment_members()
    if live:
        shown = ", ".join(map(str, sorted(live)[:8]))
        raise UsageError(
            f"experiment {store.id} still has {len(live)} trial process(es) alive (pid {shown}); "
            f"`nascli stop {store.id}` ends them, then delete it"
        )
    return _delete_dir(store)


def kill_trial(store: ExperimentStore, trial_id: str, grace: float = 5.0) -> str:
    """Cancel one trial (its whole process group). Returns the trial's status afterwards.

    Raises:
        UsageError: no such trial, or it already ended.
    """
    trial = store.trial(trial_id)
    if trial is None:
        known = ", ".join(t.id for t in store.trials()[-10:]) or "none"
        raise UsageError(f"experiment {store.id} has no trial {trial_id!r} (recent: {known})")
    if trial.terminal:
        raise UsageError(f"trial {trial_id} already ended ({trial.status})")
    with store.transaction():
        store.request_cancel(trial_id)
    if trial.pid and process_alive(trial.pid, trial.pid_token):
        terminate_group(trial.pid, grace)
    if not manager_alive(store.experiment()):
        if (problem := _end_remote_trials(store, [trial], grace)) is not None:
            raise NasCliError(f"trial {trial_id}: {problem}")
        with store.exclusive(), store.transaction():
            Ledger(store).cancel(trial_id, "cancelled by the user")
        return TrialStatus.USER_CANCELED.value
    # The manager records the end; wait for it briefly so the caller sees the final state.
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline:
        current = store.trial(trial_id)
        if current is not None and current.terminal:
            return current.status
        time.sleep(0.02)
    current = store.trial(trial_id)
    return current.status if current else TrialStatus.USER_CANCELED.value
