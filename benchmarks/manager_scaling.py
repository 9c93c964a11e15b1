"""Does the manager's cost per trial stay flat over a long experiment? nascli against a bare
2-worker pool, per window of trials, for Random, TPE and PPOTuner.

    python benchmarks/manager_scaling.py [--trials 5000] [--window 500] [--tuners Random,TPE]

Every arm runs the same N trivial trials (each imports nascli and reports one final result) at
concurrency 2 on a space of 16.7M architectures (8 keys x 8 options), so no tuner exhausts it.
The baseline (``POOL_PROGRAM``) is ``ThreadPoolExecutor(2)`` running ``sh -c COMMAND`` per
trial, each trial in its own session as nascli starts them.

Interleaved finely: the machine's speed drifts by 10-20 % within the minutes one arm takes, so
one pool run before a 5,000-trial experiment cannot support per-window ratios. Every
``--interleave`` successes (100 by default) the benchmark stops the experiment (SIGSTOP to the
manager, then to the process group of each of its children: the trials' launchers and what they
run), runs the pool on as many trials as that stretch completed, and continues the experiment
(SIGCONT). A stretch's nascli time is the time the experiment ran in it; trials caught mid-run
at a stop finish in the next stretch, so each trial's work is counted once. The pool's time is
to its n-th completion with one trial more started, so that neither ends a stretch with a slot
idle. A window (``--window`` trials) sums its stretches on both sides.

Arms, in order: each tuner in ``--tuners`` with ``create --foreground`` on a pseudo-terminal
(drained by a thread, as a terminal emulator would; the live view draws), then the first tuner
detached (``create`` without ``--foreground``, the manager a daemon).

Per window:
- wall ratio: the window's nascli time over the pool's time for the same number of trials, run
  in the window's pauses;
- manager CPU ms per trial: the manager process's own user+system time over the window
  (``/proc/<pid>/stat``, sampled every 50 ms; trials are children and not counted).
Goal (issue 19): wall ratio <= 1.10 in every window for Random and TPE, <= 1.20 for PPOTuner;
foreground <= 1.05x detached (the ratio of the two arms' whole-run ratios to their pools).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

POOL_PROGRAM = """
import json, subprocess, sys, time
from concurrent.futures import ThreadPoolExecutor
n, command = int(sys.argv[1]), sys.argv[2]
ends = []
def one(_):
    code = subprocess.run(command, shell=True, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
                          start_new_session=True).returncode
    ends.append(time.time())
    return code
start = time.time()
with ThreadPoolExecutor(2) as pool:
    codes = list(pool.map(one, range(n)))
print(json.dumps({"start": start, "ends": sorted(ends)}))
sys.exit(0 if codes == [0] * n else 1)
"""


def trial_command() -> str:
    return f"{sys.executable} -c 'import nascli; nascli.report_final_result(1.0)'"


def write_config(directory: Path, name: str, trials: int) -> Path:
    space = directory / "search_space.json"
    keys = {f"k{i}": {"_type": "layer_choice", "_value": [f"op{j}" for j in range(8)]}
            for i in range(8)}  # fmt: skip
    space.write_text(json.dumps(keys))
    config = directory / f"config_{name}.yml"
    config.write_text(
        f"experimentName: manager-scaling-{name}\n"
        f"trialConcurrency: 2\n"
        f"maxTrialNum: {trials}\n"
        f"searchSpacePath: {space}\n"
        f"tuner:\n  builtinTunerName: {name}\n  classArgs: {{seed: 0}}\n"
        f"trial:\n  command: \"{trial_command()}\"\n  codeDir: {directory}\n"
    )  # fmt: skip
    return config


class CpuSampler:
    """Samples a process's own CPU seconds (user + system) every ``period`` seconds."""

    def __init__(self, pid: int, period: float = 0.05):
        self.pid, self.period = pid, period
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _read(self) -> float | None:
        try:
            fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime

    def _run(self) -> None:
        while not self._stop.is_set():
            cpu = self._read()
            if cpu is None:
                return
            self.samples.append((time.time(), cpu))
            self._stop.wait(self.period)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def at(self, moment: float) -> float:
        """CPU seconds at ``moment`` (the last sample not after it)."""
        value = self.samples[0][1] if self.samples else 0.0
        for t, cpu in self.samples:
            if t > moment:
                break
            value = cpu
        return value


def run_pool(trials: int, workdir: Path, last: bool = False) -> float:
    """The pool's own time for ``trials`` trials: from its start to its ``trials``-th
    completion, with one more trial started, so that no slot idles at the end (nascli's
    stretches end with both slots busy too; a trial in flight there finishes in the next).
    ``last``: the experiment's last stretch, which ends as its last trial does: no more."""
    result = subprocess.run(
        [sys.executable, "-c", POOL_PROGRAM, str(trials + (not last)), trial_command()],
        cwd=workdir, capture_output=True, text=True, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    return sorted(out["ends"])[trials - 1] - out["start"]


class Pause:
    """Stops a manager and everything its children run, and continues them.

    The manager stops first, so it starts nothing while its children are stopped. Each child
    (a launcher, in its own session) is stopped by its process group; a child caught between
    fork and setsid still shares the manager's group and is stopped by pid."""

    def __init__(self, manager_pid: int):
        self.pid = manager_pid
        self._stopped: list[int] = []  # negative: a process group

    def _children(self) -> list[int]:
        found = []
        for task in Path(f"/proc/{self.pid}/task").iterdir():
            try:
                found += [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                pass
        return found

    def state(self) -> str:
        """The manager's process state letter (``/proc/<pid>/stat``)."""
        return Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()[0]

    def stop(self) -> None:
        os.kill(self.pid, signal.SIGSTOP)
        while self.state() not in ("T", "t"):
            time.sleep(0.001)
        own_group = os.getpgid(self.pid)
        self._stopped = []
        for child in self._children():
            try:
                group = os.getpgid(child)
                target = child if group == own_group else -group
                os.kill(target, signal.SIGSTOP)
                self._stopped.append(target)
            except ProcessLookupError:
                pass

    def resume(self) -> None:
        for target in self._stopped:
            try:
                os.kill(target, signal.SIGCONT)
            except ProcessLookupError:
                pass
        self._stopped = []
        try:
            os.kill(self.pid, signal.SIGCONT)
        except ProcessLookupError:
            pass


def start_nascli(config: Path, env: dict[str, str], home: Path, foreground: bool):
    """(experiment id, manager pid, the foreground process or None); the experiment runs."""
    from nascli.experiment.store import ExperimentStore

    cli = [sys.executable, "-m", "nascli.cli.main", "create", "--config", str(config)]
    if foreground:
        import pty

        master, slave = pty.openpty()
        from foreground_view import drain  # this script's directory is on sys.path

        threading.Thread(target=drain, args=(master,), daemon=True).start()
        env = dict(env, COLUMNS="160", LINES="50")
        proc = subprocess.Popen([*cli, "--foreground"], stdout=slave, stderr=slave, env=env,
                                stdin=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
        os.close(slave)
        while True:  # the home holds this experiment only
            made = [d for d in home.iterdir() if (d / "experiment.sqlite").is_file()]
            if made:
                return made[0].name, proc.pid, proc
            if proc.poll() is not None:
                raise SystemExit(f"nascli create --foreground failed: exit {proc.returncode}")
            time.sleep(0.005)
    before = set(home.iterdir()) if home.is_dir() else set()
    result = subprocess.run(cli, capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        raise SystemExit(f"nascli failed:\n{result.stdout}\n{result.stderr}")
    exp_id = result.stdout.split()[1]
    assert (home / exp_id) not in before
    store = ExperimentStore(home / exp_id)
    pid = None
    while pid is None:
        pid = store.experiment().manager_pid
        time.sleep(0.01)
    store.close()
    return exp_id, pid, None


def run_arm(config: Path, env: dict[str, str], home: Path, foreground: bool, size: int,
            workdir: Path) -> list[dict[str, float]]:  # fmt: skip
    """One experiment, stopped after every ``size`` successes for a pool run of as many trials.
    Per stretch between stops: trials, nascli seconds, pool seconds, manager CPU seconds."""
    from nascli.experiment.store import ExperimentStore

    home.mkdir()  # this experiment's alone (start_nascli finds it there)
    env = dict(env, NASCLI_HOME=str(home))
    exp_id, pid, proc = start_nascli(config, env, home, foreground)  # its database is made
    store = ExperimentStore(home / exp_id)
    while True:
        try:
            store.experiment()
            break
        except (TypeError, sqlite3.OperationalError):  # the database is being made
            time.sleep(0.005)
    sampler = CpuSampler(pid)
    pause = Pause(pid)
    try:
        return _stretches(store, pid, proc, sampler, pause, size, workdir)
    except BaseException:  # interrupted: nothing stays stopped or running
        pause.resume()
        try:
            os.kill(pid, signal.SIGTERM)  # the manager ends its trials
        except ProcessLookupError:
            pass
        raise
    finally:
        if proc is not None:
            proc.wait()
        store.close()


def _stretches(store, pid: int, proc, sampler: CpuSampler, pause: Pause, size: int,
               workdir: Path) -> list[dict[str, float]]:  # fmt: skip
    result, done, began = [], 0, None
    while True:
        exp = store.experiment()
        if exp.ended is not None:
            break
        began = began or exp.started
        succeeded = store.status_counts()["SUCCEEDED"]
        if succeeded - done >= size:
            pause.stop()
            stopped_at = time.time()
            succeeded = store.status_counts()["SUCCEEDED"]
            if store.experiment().ended is not None:  # it ended just before the stop
                pause.resume()
                break
            cpu = sampler.at(stopped_at) - sampler.at(began)
            pool = run_pool(succeeded - done, workdir)
            result.append({"trials": succeeded - done, "nascli": stopped_at - began,
                           "pool": pool, "cpu": cpu})  # fmt: skip
            done = succeeded
            began = time.time()
            pause.resume()
        time.sleep(0.1)
    if proc is not None:
        proc.wait()
    else:
        while Path(f"/proc/{pid}").exists() and pause.state() not in ("Z", "X"):
            time.sleep(0.05)
    sampler.stop()
    exp = store.experiment()
    trials = store.trials()
    bad = [t.status for t in trials if t.status != "SUCCEEDED"]
    assert not bad, f"{len(bad)} trials did not succeed: {bad[:3]}"
    last_end = max(t.ended for t in trials)
    n = len(trials) - done
    result.append({"trials": n, "nascli": last_end - began, "pool": run_pool(n, workdir, True),
                   "cpu": sampler.at(exp.ended) - sampler.at(began)})  # fmt: skip
    return result


def windows(stretches: list[dict[str, float]], size: int) -> list[dict[str, float]]:
    """Consecutive stretches summed into windows of at least ``size`` trials (the last one
    may be shorter)."""
    rows: list[dict[str, float]] = []
    for stretch in stretches:
        if not rows or rows[-1]["trials"] >= size:
            rows.append(dict.fromkeys(stretch, 0))
        for key, value in stretch.items():
            rows[-1][key] += value
    return rows


def print_arm(title: str, rows: list[dict[str, float]]) -> float:
    """Prints one arm's windows; returns its whole-run ratio to the pool."""
    print(f"\n{title}: each window against the pool runs made in its pauses")
    print(f"{'trials':>12}{'pool s':>9}{'nascli s':>10}{'ratio':>8}{'manager CPU ms/trial':>22}")
    first = 1
    for row in rows:
        span = f"{first}-{first + row['trials'] - 1}"
        first += row["trials"]
        print(
            f"{span:>12}{row['pool']:9.2f}{row['nascli']:10.2f}"
            f"{row['nascli'] / row['pool']:8.3f}{row['cpu'] * 1000 / row['trials']:22.2f}"
        )
    pool, ours = sum(r["pool"] for r in rows), sum(r["nascli"] for r in rows)
    cpu, n = sum(r["cpu"] for r in rows), sum(r["trials"] for r in rows)
    ratios = [r["nascli"] / r["pool"] for r in rows]
    print(f"{'all':>12}{pool:9.2f}{ours:10.2f}{ours / pool:8.3f}{cpu * 1000 / n:22.2f}")
    print(f"{'windows':>12}  ratio {min(ratios):.3f}-{max(ratios):.3f}", flush=True)
    return ours / pool


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=5000)
    parser.add_argument("--window", type=int, default=500)
    parser.add_argument("--interleave", type=int, default=100,
                        help="trials between the experiment's stops for a pool run")  # fmt: skip
    parser.add_argument("--tuners", default="Random,TPE,PPOTuner")
    parser.add_argument("--no-detached", action="store_true", help="skip the detached run")
    args = parser.parse_args()
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    size = min(args.window, args.trials)
    print(f"{args.trials} trivial trials at concurrency 2, windows of about {size} trials, "
          f"load average before: {os.getloadavg()[0]:.2f}")  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="nascli-scaling-", ignore_cleanup_errors=True) as tmp:
        workdir = Path(tmp)
        env = dict(os.environ)
        env["PYTHONPATH"] = f"{REPO}{os.pathsep}{env.get('PYTHONPATH', '')}"
        sys.path.insert(0, str(REPO))
        run_pool(4, workdir)  # warm the page cache
        whole = {}
        tuners = args.tuners.split(",")
        arms = [(name, True) for name in tuners]
        if not args.no_detached:
            arms.append((tuners[0], False))
        for n, (name, foreground) in enumerate(arms):
            config = write_config(workdir, name, args.trials)
            stretch = min(args.interleave, size)
            stretches = run_arm(config, env, workdir / f"home-{n}", foreground, stretch, workdir)
            rows = windows(stretches, size)
            mode = "foreground, on a terminal" if foreground else "detached"
            whole[name, foreground] = print_arm(f"{name} ({mode})", rows)
        if not args.no_detached:
            fg, det = whole[tuners[0], True], whole[tuners[0], False]
            print(f"\n{tuners[0]}: foreground / detached = {fg:.3f} / {det:.3f} = {fg / det:.3f}")
        print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
