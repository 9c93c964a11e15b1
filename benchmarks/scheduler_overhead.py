"""Scheduling overhead of nascli's manager against a bare 2-worker subprocess pool.

Both run the same N trivial trial commands (each imports nascli and reports one final result) at
concurrency 2, interleaved round by round in one run; the pool is a ten-line Python program
(``POOL_PROGRAM``: ``ThreadPoolExecutor(2)`` running ``sh -c COMMAND`` per trial). Two ratios:

- the experiment against the pool itself: from the manager starting the experiment to it
  recording the end (the store's timestamps): proposals, trial directories, launches, exit
  handling, metric ingestion, store commits, tuner checkpoints. The scheduler's overhead, paid
  per trial.
- the whole ``nascli create --foreground`` command against the whole pool program: the above plus
  what each pays once (interpreter start-up and imports; for nascli also the config and
  search-space checks, store creation, the summary).

Also printed: how long a freed slot stays empty before the next trial starts, and how long a
detached ``nascli create`` takes to return. ``--sleep S`` makes each trial sleep S seconds first,
to show how the once-per-command cost weighs with longer trials.

    python benchmarks/scheduler_overhead.py [--trials 100] [--rounds 3] [--sleep 0]
    python benchmarks/scheduler_overhead.py --platform ray [--trials 40] [--rounds 2]
    python benchmarks/scheduler_overhead.py --baseline DIR [--trials 100] [--rounds 5]

``--baseline DIR`` runs the same experiment with another checkout's manager (e.g. the tree
before a change: ``git archive REV | tar -x -C DIR``), interleaved with this tree's and the pool.

``--platform ray`` starts a local two-node Ray cluster (``tests/ray_cluster.py``: loopback-only
network namespace, as root) and runs the same experiment on it and on the local service,
interleaved, inside that namespace: the per-trial time of each and their ratio (what Ray's
actor start, code shipping and file streaming cost per trial).

NNI reference points (users_and_peers.md §3c): ~5.3 s of overhead per trial for NNI 1.9 and
~0.5 s for NNI 3.0 on this kind of machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def trial_command(sleep_seconds: float) -> str:
    sleep = f"import time; time.sleep({sleep_seconds}); " if sleep_seconds else ""
    return f"{sys.executable} -c '{sleep}import nascli; nascli.report_final_result(1.0)'"


def nascli_cli() -> list[str]:
    return [sys.executable, "-m", "nascli.cli.main"]


def write_config(directory: Path, trials: int, command: str, platform: str = "local",
                 address: str = "") -> Path:  # fmt: skip
    space = directory / "search_space.json"
    space.write_text(
        json.dumps(
            {
                "a": {"_type": "layer_choice", "_value": [f"op{i}" for i in range(10)]},
                "b": {"_type": "layer_choice", "_value": [f"op{i}" for i in range(10)]},
                "c": {"_type": "layer_choice", "_value": [f"op{i}" for i in range(10)]},
            }
        )
    )
    config = directory / "config.yml"
    config.write_text(
        f"experimentName: scheduler-overhead\n"
        f"trialConcurrency: 2\n"
        f"maxTrialNum: {trials}\n"
        f"searchSpacePath: {space}\n"
        f"tuner:\n  builtinTunerName: Random\n  classArgs: {{seed: 0}}\n"
        f"trial:\n  command: \"{command}\"\n  codeDir: {directory}\n"
    )
    if platform == "ray":
        with open(config, "a") as f:
            f.write(f"trainingServicePlatform: ray\nrayConfig:\n  address: {address}\n")
    return config


# The baseline: the shortest honest program that runs the commands two at a time. It prints
# how long the pool itself took; its whole run is timed from outside, like nascli's. Each trial
# starts in its own session, as nascli starts them: with the kernel's autogroup scheduling a
# session is a scheduling group, so a pool running every trial in its own session (its parent's)
# got less CPU than nascli on a loaded machine, and nascli measured faster than the pool (0.79x).
POOL_PROGRAM = """
import subprocess, sys, time
from concurrent.futures import ThreadPoolExecutor
n, command = int(sys.argv[1]), sys.argv[2]
def one(_):
    return subprocess.run(command, shell=True, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
                          start_new_session=True).returncode
start = time.perf_counter()
with ThreadPoolExecutor(2) as pool:
    codes = list(pool.map(one, range(n)))
print(time.perf_counter() - start)
sys.exit(0 if codes == [0] * n else 1)
"""


def run_pool(trials: int, workdir: Path, command: str) -> tuple[float, float]:
    """(the whole program's wall time, the pool's own) in seconds."""
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-c", POOL_PROGRAM, str(trials), command],
        cwd=workdir, capture_output=True, text=True, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    elapsed = time.perf_counter() - start
    assert result.returncode == 0, result.stderr
    return elapsed, float(result.stdout)


def run_nascli(
    config: Path, env: dict[str, str], wrap=lambda argv: argv, cwd: Path | None = None
) -> tuple[float, str]:
    start = time.perf_counter()
    result = subprocess.run(
        wrap([*nascli_cli(), "create", "--config", str(config), "--foreground"]),
        capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL, cwd=cwd,
    )  # fmt: skip
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"nascli failed:\n{result.stdout}\n{result.stderr}")
    exp_id = result.stdout.split()[1]
    return elapsed, exp_id


def experiment_seconds(home: Path, exp_id: str) -> float:
    """From the manager starting the experiment to it recording the end (no CLI start-up)."""
    from nascli.experiment.store import ExperimentStore

    exp = ExperimentStore(home / exp_id).experiment()
    return exp.ended - exp.started


def slot_gaps(home: Path, exp_id: str) -> list[float]:
    """For each trial after the first two: its start minus the latest end before it (ms)."""
    from nascli.experiment.store import ExperimentStore

    trials = ExperimentStore(home / exp_id).trials()
    ends = sorted(t.ended for t in trials if t.ended)
    gaps = []
    for t in trials[2:]:
        before = [e for e in ends if e <= t.started]
        if before:
            gaps.append((t.started - before[-1]) * 1000)
    succeeded = sum(t.status == "SUCCEEDED" for t in trials)
    assert succeeded == len(trials), f"only {succeeded}/{len(trials)} trials succeeded"
    return gaps


def create_latency(config: Path, env: dict[str, str], home: Path) -> float:
    start = time.perf_counter()
    result = subprocess.run(
        [*nascli_cli(), "create", "--config", str(config)],
        capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    elapsed = time.perf_counter() - start
    exp_id = result.stdout.split()[1]
    subprocess.run([*nascli_cli(), "stop", exp_id], env=env, capture_output=True)
    return elapsed


def compare_ray(trials: int, rounds: int, command: str) -> None:
    """The same experiment on a local two-node Ray cluster and on the local service."""
    sys.path.insert(0, str(REPO))
    from tests.ray_cluster import RayCluster, skip_reason

    if (reason := skip_reason()) is not None:
        raise SystemExit(f"cannot start a Ray cluster here: {reason}")
    cluster = RayCluster([(2, 0), (2, 0)])
    try:
        cluster.start()
        with tempfile.TemporaryDirectory(prefix="nascli-bench-") as tmp:
            workdir = Path(tmp)
            home = workdir / "home"
            env = dict(cluster.env(), NASCLI_HOME=str(home))
            env["PYTHONPATH"] = f"{REPO}{os.pathsep}{env.get('PYTHONPATH', '')}"
            configs = {
                platform: write_config(workdir / platform, trials, command, platform,
                                       cluster.address)  # fmt: skip
                for platform in ("local", "ray")
                if (workdir / platform).mkdir() is None
            }
            per_trial: dict[str, list[float]] = {"local": [], "ray": []}
            for _ in range(rounds):
                for platform, config in configs.items():
                    _, exp_id = run_nascli(config, env, cluster.command)
                    per_trial[platform].append(experiment_seconds(home, exp_id) / trials)
    finally:
        cluster.stop()
    local, ray = (statistics.median(per_trial[p]) * 1000 for p in ("local", "ray"))
    print(f"{trials} trivial trials at concurrency 2, {rounds} interleaved rounds (medians), "
          "both inside the cluster's namespace")  # fmt: skip
    print(f"  local service   {local:8.1f} ms per trial")
    print(f"  Ray (2 nodes)   {ray:8.1f} ms per trial   ratio {ray / local:.2f}   "
          f"+{ray - local:.0f} ms per trial")  # fmt: skip


def compare_trees(trials: int, rounds: int, command: str, baseline: Path) -> None:
    """This tree's manager against ``baseline``'s (another checkout, e.g. ``git archive REV``),
    with the pool, interleaved: pool, this tree, baseline, each round. Trials import the
    nascli of the tree whose manager runs them."""
    with tempfile.TemporaryDirectory(prefix="nascli-bench-") as tmp:
        workdir = Path(tmp)
        home = workdir / "home"
        os.environ["NASCLI_HOME"] = str(home)
        config = write_config(workdir, trials, command)
        arms = {"this tree": REPO, "baseline": baseline.resolve()}
        pool_times: list[float] = []
        inside: dict[str, list[float]] = {arm: [] for arm in arms}
        run_pool(4, workdir, command)
        for _ in range(rounds):
            pool_times.append(run_pool(trials, workdir, command)[1])
            for arm, tree in arms.items():
                env = dict(os.environ, NASCLI_HOME=str(home), PYTHONPATH=str(tree))
                _, exp_id = run_nascli(config, env, cwd=tree)
                inside[arm].append(experiment_seconds(home, exp_id))
    pool = statistics.median(pool_times)
    print(f"{trials} trivial trials at concurrency 2, {rounds} interleaved rounds (medians)")
    print(f"  the pool                 {pool:6.2f} s")
    for arm, tree in arms.items():
        steady = statistics.median(inside[arm])
        print(f"  {arm:<10} experiment  {steady:6.2f} s   ratio {steady / pool:.3f}   "
              f"{(steady - pool) / trials * 1000:.1f} ms of overhead per trial   ({tree})")
    ours, base = (statistics.median(inside[arm]) for arm in arms)
    print(f"  this tree / baseline     {ours / base:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sleep", type=float, default=0.0, help="seconds each trial sleeps")
    parser.add_argument("--platform", choices=("local", "ray"), default="local")
    parser.add_argument("--baseline", type=Path, help="another checkout to compare managers with")
    args = parser.parse_args()
    command = trial_command(args.sleep)
    if args.baseline is not None:
        os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
        compare_trees(args.trials, args.rounds, command, args.baseline)
        return
    if args.platform == "ray":
        compare_ray(args.trials, args.rounds, command)
        return
    # As on a user's machine, Python may cache bytecode (both arms run the same interpreter);
    # without it every trial and every CLI run compiles nascli's modules again.
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    with tempfile.TemporaryDirectory(prefix="nascli-bench-") as tmp:
        workdir = Path(tmp)
        home = workdir / "home"
        env = dict(os.environ, NASCLI_HOME=str(home))
        env["PYTHONPATH"] = f"{REPO}{os.pathsep}{env.get('PYTHONPATH', '')}"
        os.environ["NASCLI_HOME"] = str(home)
        config = write_config(workdir, args.trials, command)
        pool_programs, pool_times, nascli_times, inside, gaps = [], [], [], [], []
        run_pool(4, workdir, command)  # warm the page cache for both
        for _ in range(args.rounds):
            program, pool_alone = run_pool(args.trials, workdir, command)
            pool_programs.append(program)
            pool_times.append(pool_alone)
            elapsed, exp_id = run_nascli(config, env)
            nascli_times.append(elapsed)
            inside.append(experiment_seconds(home, exp_id))
            gaps += slot_gaps(home, exp_id)
        created = [create_latency(config, env, home) for _ in range(3)]
    pool, ours = statistics.median(pool_times), statistics.median(nascli_times)
    program, steady = statistics.median(pool_programs), statistics.median(inside)
    n = args.trials
    kind = f"{args.sleep:g} s" if args.sleep else "trivial"
    print(f"{n} {kind} trials at concurrency 2, {args.rounds} interleaved rounds (medians)")
    print(f"  the pool                 {pool:6.2f} s   ({pool / n * 1000:.1f} ms per trial)")
    print(
        f"  nascli's experiment      {steady:6.2f} s   ratio {steady / pool:.3f}   "
        f"{(steady - pool) / n * 1000:.1f} ms of overhead per trial"
    )
    print(f"  the pool program, whole  {program:6.2f} s   (+{program - pool:.2f} s once)")
    print(
        f"  nascli create -f, whole  {ours:6.2f} s   ratio {ours / program:.3f}   "
        f"(+{ours - steady:.2f} s once: start-up, checks, summary, exit)"
    )
    gaps.sort()
    print(f"  slot refill gap         median {statistics.median(gaps):.1f} ms, "
          f"p95 {gaps[int(0.95 * (len(gaps) - 1))]:.1f} ms, max {gaps[-1]:.1f} ms "
          f"({len(gaps)} refills)")  # fmt: skip
    print(f"  detached create returns {statistics.median(created) * 1000:7.0f} ms (median of 3)")


if __name__ == "__main__":
    main()
