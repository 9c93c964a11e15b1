"""Does the manager's cost per trial stay flat over a long experiment? nascli against a bare
2-worker pool, per window of trials, for Random, TPE and PPOTuner.

    python benchmarks/manager_scaling.py [--trials 5000] [--window 500] [--tuners Random,TPE]

Every arm runs the same N trivial trials (each imports nascli and reports one final result) at
concurrency 2 on a space of 16.7M architectures (8 keys x 8 options), so no
tuner exhausts it. The baseline (``POOL_PROGRAM``) is ``ThreadPoolExecutor(2)`` running
``sh -c COMMAND`` per trial, each trial in its own session as nascli starts them. The arms are
interleaved: pool, Random, pool, TPE, pool, PPOTuner, then a detached Random run (``nascli
create`` without ``--foreground``, the manager a daemon).

Per window of ``--window`` trials (by order of completion):
- wall ratio: the window's wall time in nascli (between the completions that bound it, from the
  store's timestamps) over the same window in the pool run just before it;
- manager CPU ms per trial: the manager process's own user+system time over the window
  (``/proc/<pid>/stat``, sampled every 50 ms; trials are children and not counted).
Goal (issue 19): wall ratio <= 1.10 in every window for Random and TPE, <= 1.20 for PPOTuner;
foreground <= 1.05x detached (the whole experiment's wall time; the view is issue 18's).
"""

from __future__ import annotations

import argparse
import json
import os
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


def run_pool(trials: int, workdir: Path) -> tuple[float, list[float]]:
    result = subprocess.run(
        [sys.executable, "-c", POOL_PROGRAM, str(trials), trial_command()],
        cwd=workdir, capture_output=True, text=True, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    return out["start"], out["ends"]


def experiment_times(home: Path, exp_id: str) -> tuple[float, list[float], float]:
    """(started, trial end times sorted, ended) from the store."""
    from nascli.experiment.store import ExperimentStore

    store = ExperimentStore(home / exp_id)
    exp = store.experiment()
    trials = store.trials()
    bad = [t.status for t in trials if t.status != "SUCCEEDED"]
    assert not bad, f"{len(bad)} trials did not succeed: {bad[:3]}"
    return exp.started, sorted(t.ended for t in trials), exp.ended


def run_nascli(config: Path, env: dict[str, str], home: Path, foreground: bool):
    """(experiment id, CPU sampler of the manager)."""
    cli = [sys.executable, "-m", "nascli.cli.main", "create", "--config", str(config)]
    if foreground:
        proc = subprocess.Popen([*cli, "--foreground"], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=env,
                                stdin=subprocess.DEVNULL)  # fmt: skip
        sampler = CpuSampler(proc.pid)
        out, err = proc.communicate()
        sampler.stop()
        if proc.returncode != 0:
            raise SystemExit(f"nascli failed:\n{out}\n{err}")
        return out.split()[1], sampler
    result = subprocess.run(cli, capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        raise SystemExit(f"nascli failed:\n{result.stdout}\n{result.stderr}")
    exp_id = result.stdout.split()[1]
    from nascli.experiment.store import ExperimentStore

    store = ExperimentStore(home / exp_id)
    pid = None
    while pid is None:
        pid = store.experiment().manager_pid
        time.sleep(0.01)
    sampler = CpuSampler(pid)
    while store.experiment().ended is None:
        time.sleep(0.2)
    sampler.stop()
    return exp_id, sampler


def windows(start: float, ends: list[float], size: int) -> list[tuple[float, float]]:
    """(window start, window end) per ``size`` completions."""
    bounds = [start] + [ends[i - 1] for i in range(size, len(ends) + 1, size)]
    return list(zip(bounds, bounds[1:], strict=False))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=5000)
    parser.add_argument("--window", type=int, default=500)
    parser.add_argument("--tuners", default="Random,TPE,PPOTuner")
    parser.add_argument("--no-detached", action="store_true", help="skip the detached run")
    args = parser.parse_args()
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    size = min(args.window, args.trials)
    print(f"{args.trials} trivial trials at concurrency 2, windows of {size} trials")
    with tempfile.TemporaryDirectory(prefix="nascli-scaling-") as tmp:
        workdir = Path(tmp)
        home = workdir / "home"
        env = dict(os.environ, NASCLI_HOME=str(home))
        env["PYTHONPATH"] = f"{REPO}{os.pathsep}{env.get('PYTHONPATH', '')}"
        os.environ["NASCLI_HOME"] = str(home)
        sys.path.insert(0, str(REPO))
        run_pool(4, workdir)  # warm the page cache
        totals = {}
        for name in args.tuners.split(","):
            pool_start, pool_ends = run_pool(args.trials, workdir)
            config = write_config(workdir, name, args.trials)
            exp_id, sampler = run_nascli(config, env, home, foreground=True)
            started, ends, ended = experiment_times(home, exp_id)
            totals[name] = ended - started
            print(f"\n{name} (foreground) against the pool run just before it")
            print(f"{'trials':>12}{'pool s':>9}{'nascli s':>10}{'ratio':>8}"
                  f"{'manager CPU ms/trial':>22}")  # fmt: skip
            for i, ((a, b), (pa, pb)) in enumerate(
                zip(windows(started, ends, size), windows(pool_start, pool_ends, size),
                    strict=False)  # fmt: skip
            ):
                cpu = (sampler.at(b) - sampler.at(a)) * 1000 / size
                span = f"{i * size + 1}-{(i + 1) * size}"
                print(f"{span:>12}{pb - pa:9.2f}{b - a:10.2f}{(b - a) / (pb - pa):8.3f}{cpu:22.2f}")
            whole = (ends[-1] - started) / (pool_ends[-1] - pool_start)
            print(f"{'all':>12}{pool_ends[-1] - pool_start:9.2f}{ends[-1] - started:10.2f}"
                  f"{whole:8.3f}{sampler.at(ended) * 1000 / len(ends):22.2f}")  # fmt: skip
        if not args.no_detached:
            name = args.tuners.split(",")[0]
            config = write_config(workdir, name, args.trials)
            exp_id, sampler = run_nascli(config, env, home, foreground=False)
            started, ends, ended = experiment_times(home, exp_id)
            detached = ended - started
            print(f"\n{name} detached: {detached:.2f} s, manager CPU "
                  f"{sampler.at(ended) * 1000 / len(ends):.2f} ms/trial; foreground / detached "
                  f"= {totals[name] / detached:.3f}")  # fmt: skip


if __name__ == "__main__":
    main()
