"""Every process a trial starts, found and ended with the trial, even those that leave its
process group (``setsid sleep 300 &``, a fork–setsid–fork daemon).

Two trackers, used together:

- **A cgroup per trial** where the kernel lets the manager make one: a writable cgroup v2
  hierarchy (``cgroup2`` in ``/proc/self/mountinfo``; on hybrid systems ``/sys/fs/cgroup/unified``)
  and the manager's own cgroup (``/proc/self/cgroup``, line ``0::``) accepting children. The
  experiment gets ``<manager's cgroup>/nascli-<exp_id>/`` (its path recorded in the experiment
  directory as ``trials.cgroup``, so a CLI ``stop`` finds it after the manager died) and each
  trial a child named by its id; the trial's launcher moves itself in before the command starts,
  so every descendant is in it whatever it does with sessions, and ``cgroup.kill`` ends them all.
  Nothing a process can do without root takes it out.
- **An environment tag** everywhere: every trial runs with ``NASCLI_TRIAL_DIR=<its directory>``,
  inherited by its descendants; ``/proc/<pid>/environ`` of the user's processes is scanned for
  it. This needs no privileges and survives the manager, but a descendant that scrubs its
  environment *and* leaves the session escapes it.

What each platform gets: Linux with a delegated or root-writable cgroup v2 (root in a container
with cgroup2 mounted rw, systemd with ``Delegate=yes``): complete tracking. Other Linux (cgroup
v1 only, unprivileged users under systemd): the environment tag. Without ``/proc`` (macOS): the
process group only. A child subreaper (``PR_SET_CHILD_SUBREAPER``, also available here) was not
used: it only helps while the manager lives, cannot tell which trial an orphan came from, and
makes the manager reap processes that are not its trials.

``end`` sends SIGTERM to every member, waits up to the grace period, then SIGKILLs what is left;
zombies do not count as members.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterable
from pathlib import Path

from nascli.channel import ENV_TRIAL_DIR

__all__ = ["Containment", "cgroup_base", "carries_tag"]

CGROUP_FILE = "trials.cgroup"  # in the experiment directory: the experiment's cgroup path
_ENVIRON_LIMIT = 1 << 20

_base_cache: list[Path | None] = []


def cgroup_base() -> Path | None:
    """The cgroup v2 directory of this process when it is writable (children can be made in
    it), else None. Computed once per process."""
    if _base_cache:
        return _base_cache[0]
    _base_cache.append(_find_cgroup_base())
    return _base_cache[0]


def _find_cgroup_base() -> Path | None:
    if os.environ.get("NASCLI_NO_CGROUP"):
        return None
    try:
        with open("/proc/self/cgroup") as f:
            own = next((line[3:].strip() for line in f if line.startswith("0::")), None)
        with open("/proc/self/mountinfo") as f:
            mounts = [line.split() for line in f]
    except OSError:
        return None
    if own is None:
        return None
    for fields in mounts:
        sep = fields.index("-") if "-" in fields else -1
        if sep < 0 or sep + 1 >= len(fields) or fields[sep + 1] != "cgroup2":
            continue
        base = Path(fields[4]) / own.lstrip("/")
        if (base / "cgroup.procs").is_file() and os.access(base, os.W_OK):
            return base
    return None


class Containment:
    """One experiment's trial tracking; ``exp_dir`` is the experiment directory.

    The manager calls ``trial_cgroup`` before a launch (the launcher shell joins the cgroup),
    ``members`` / ``end_trial`` when a trial's leader exits, and ``end_experiment`` on stop; a
    CLI ``stop`` or ``delete`` with no manager alive calls ``experiment_members`` /
    ``end_experiment`` on a fresh instance.
    """

    def __init__(self, exp_dir: Path):
        self.exp_dir = Path(exp_dir)
        self._trials_prefix = (str(self.exp_dir / "trials") + os.sep).encode()
        self._root: Path | None = None  # the experiment's cgroup, once found or made

    # ------------------------------------------------------------------ cgroups

    def _experiment_cgroup(self, create: bool) -> Path | None:
        if self._root is None:
            self._root = self._find_experiment_cgroup(create)
        return self._root

    def _find_experiment_cgroup(self, create: bool) -> Path | None:
        recorded = self.exp_dir / CGROUP_FILE
        try:
            path = Path(recorded.read_text().strip())
            if path.name == f"nascli-{self.exp_dir.name}" and (path / "cgroup.procs").is_file():
                return path
        except OSError:
            pass
        base = cgroup_base() if create else None
        if base is None:
            return None
        path = base / f"nascli-{self.exp_dir.name}"
        try:
            path.mkdir(exist_ok=True)
            recorded.write_text(str(path) + "\n")
        except OSError:
            return None
        return path

    def trial_cgroup(self, trial_id: str) -> Path | None:
        """The cgroup the trial's launcher joins (made now), or None where there is none."""
        root = self._experiment_cgroup(create=True)
        if root is None:
            return None
        path = root / trial_id
        try:
            path.mkdir(exist_ok=True)
        except OSError:
            return None
        return path

    def _trial_cgroups(self) -> list[Path]:
        root = self._experiment_cgroup(create=False)
        if root is None:
            return []
        try:
            return [p for p in root.iterdir() if p.is_dir()]
        except OSError:
            return []

    # ------------------------------------------------------------------ members

    def members(self, trial_dir: Path, cgroup: Path | None = None) -> set[int]:
        """The live processes of one trial: its cgroup's (nothing leaves a cgroup), or, without
        one, those carrying its tag."""
        if cgroup is not None and (cgroup / "cgroup.procs").is_file():
            return _cgroup_pids(cgroup)
        tag = f"{ENV_TRIAL_DIR}={trial_dir}".encode()
        return _tagged(lambda env: tag in env.split(b"\0"))

    def experiment_members(self) -> set[int]:
        """The live processes of every trial of the experiment."""
        pids: set[int] = set()
        for cgroup in self._trial_cgroups():
            pids |= _cgroup_pids(cgroup)
        tag = f"{ENV_TRIAL_DIR}=".encode() + self._trials_prefix
        pids |= _tagged(lambda env: any(v.startswith(tag) for v in env.split(b"\0")))
        return pids

    def end_trial(self, trial_dir: Path, cgroup: Path | None, grace: float) -> None:
        """End every process of one trial (SIGTERM, ``grace``, SIGKILL); remove its cgroup."""
        _end(lambda: self.members(trial_dir, cgroup), [cgroup] if cgroup else [], grace)
        if cgroup is not None:
            _remove(cgroup)

    def end_experiment(self, grace: float) -> None:
        """End every process of every trial of the experiment."""
        cgroups = self._trial_cgroups()
        _end(self.experiment_members, cgroups, grace)
        for cgroup in cgroups:
            _remove(cgroup)
        root = self._experiment_cgroup(create=False)
        if root is not None:
            _remove(root)
            self._root = None


def carries_tag(pid: int, trial_dir: Path) -> bool:
    """Whether process ``pid`` belongs to the trial in ``trial_dir`` (carries its tag): tells a
    trial's launcher apart from a later process that reused its pid."""
    tag = f"{ENV_TRIAL_DIR}={trial_dir}".encode()
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            return tag in f.read(_ENVIRON_LIMIT).split(b"\0")
    except OSError:
        return False


def _cgroup_pids(cgroup: Path) -> set[int]:
    try:
        with open(cgroup / "cgroup.procs") as f:
            return {int(line) for line in f if line.strip()}
    except (OSError, ValueError):
        return set()


def _tagged(match) -> set[int]:  # noqa: ANN001 - a predicate over a raw environ block
    found = set()
    me = os.getpid()
    try:
        entries = os.listdir("/proc")
    except OSError:
        return found
    for entry in entries:
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                env = f.read(_ENVIRON_LIMIT)
        except OSError:
            continue
        if env and match(env):  # a zombie's environ is empty
            found.add(int(entry))
    return found


def _signal(pids: Iterable[int], sig: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def _end(members, cgroups: list[Path], grace: float) -> None:  # noqa: ANN001
    live = members()
    if not live:
        return
    _signal(live, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while live and time.monotonic() < deadline:
        time.sleep(0.02)
        live = members()
    if not live:
        return
    for cgroup in cgroups:
        try:
            (cgroup / "cgroup.kill").write_text("1")
        except OSError:
            pass
    for _ in range(3):  # SIGKILL can race a fork; a few rounds catch the children
        _signal(live, signal.SIGKILL)
        time.sleep(0.02)
        live = members()
        if not live:
            return


def _remove(cgroup: Path) -> None:
    try:
        cgroup.rmdir()
    except OSError:
        pass
