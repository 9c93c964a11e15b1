"""What the foreground live view costs the experiment: the same experiment of N trivial trials
run detached and with ``--foreground`` on a pseudo-terminal (drained by a thread, as a terminal
emulator would), interleaved round by round (issue 19: foreground within 1.05x of detached).

Printed per mode, medians over the rounds: the run time by the experiment's own clock (its
``started`` to ``ended``), the CPU seconds of the manager's process itself (user + system, read
from ``/proc`` while it runs: the view's drawing shows here when it shares that process), and the
CPU of everything that process waited for (its trials, and a view process if it has one); then
the ratios foreground / detached, and the load average seen before and after (the machine may be
shared: the run time is only as steady as the load).

    python benchmarks/foreground_view.py [--trials 1000] [--rounds 3] [--concurrency 2]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

_TICK = os.sysconf("SC_CLK_TCK")


def _cpu(pid: int) -> tuple[float, float] | None:
    """(own, waited-for children's) CPU seconds of a running process; None once it has ended
    (gone, or a zombie)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()  # after "pid (comm) "
    if fields[0] == "Z":
        return None
    utime, stime, cutime, cstime = (int(f) for f in fields[11:15])
    return (utime + stime) / _TICK, (cutime + cstime) / _TICK


def _experiment(home: Path) -> tuple[str, float | None, float | None, int | None] | None:
    if not home.is_dir():
        return None
    dirs = [d for d in home.iterdir() if (d / "experiment.sqlite").is_file()]
    if not dirs:
        return None
    conn = sqlite3.connect(dirs[0] / "experiment.sqlite", timeout=30)
    try:
        row = conn.execute("SELECT status, started, ended, manager_pid FROM experiment").fetchone()
    except sqlite3.OperationalError:  # being created
        return None
    finally:
        conn.close()
    return row


def drain(fd: int) -> None:
    """Read a pseudo-terminal's output until it closes, as a terminal emulator would."""
    try:
        while os.read(fd, 65536):
            pass
    except OSError:
        pass


def run(cli: list[str], home: Path, work: Path, foreground: bool) -> dict[str, float]:
    """One experiment; its run time and its manager process's CPU."""
    import pty

    env = {**os.environ, "NASCLI_HOME": str(home), "COLUMNS": "160", "LINES": "50"}
    master = slave = None
    if foreground:
        master, slave = pty.openpty()
        threading.Thread(target=drain, args=(master,), daemon=True).start()
        proc = subprocess.Popen([*cli, "--foreground"], env=env, cwd=work,
                                stdin=subprocess.DEVNULL, stdout=slave, stderr=slave)  # fmt: skip
        os.close(slave)
        pid = proc.pid
    else:
        subprocess.run(cli, env=env, check=True, stdout=subprocess.DEVNULL, cwd=work)
        proc, pid = None, None
    last: tuple[float, float] | None = None
    while True:
        if pid is None:
            row = _experiment(home)
            pid = row[3] if row else None
        cpu = _cpu(pid) if pid is not None else None
        if cpu is not None:
            last = cpu
        elif pid is not None and (proc is None or proc.poll() is not None):
            break  # the manager's process has ended
        time.sleep(0.05)
    if master is not None:
        os.close(master)
    while True:
        status, started, ended, _ = _experiment(home)
        if status not in ("RUNNING", "NO_MORE_TRIAL") and ended:
            break
        time.sleep(0.1)
    own, children = last or (0.0, 0.0)
    return {"seconds": ended - started, "manager cpu": own, "waited-for cpu": children}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=2)
    args = parser.parse_args()
    measure(args.trials, args.rounds, args.concurrency)


def measure(trials: int, rounds: int, concurrency: int = 2) -> None:
    import yaml

    from tests.stores import SEARCH_SPACE

    root = Path(tempfile.mkdtemp(prefix="nascli-fg-"))
    try:
        work = root / "work"
        work.mkdir()
        (work / "search_space.json").write_text(json.dumps(SEARCH_SPACE))
        doc = {
            "experimentName": "fg", "trialConcurrency": concurrency, "maxTrialNum": trials,
            "searchSpacePath": "search_space.json",
            "tuner": {"builtinTunerName": "Random", "classArgs": {"seed": 1}},
            "trial": {"command": f"{sys.executable} -c 'import nascli; "
                                 "nascli.report_final_result(1.0)'", "codeDir": "."},
        }  # fmt: skip
        (work / "config.yml").write_text(yaml.safe_dump(doc))
        config = str(work / "config.yml")
        cli = [sys.executable, "-m", "nascli.cli.main", "create", "--config", config]
        load_before = os.getloadavg()
        results: dict[str, list[dict[str, float]]] = {"detached": [], "foreground": []}
        for r in range(rounds):
            for mode in ("detached", "foreground") if r % 2 == 0 else ("foreground", "detached"):
                home = root / f"home-{mode}-{r}"
                result = run(cli, home, work, mode == "foreground")
                results[mode].append(result)
                print(f"  round {r + 1} {mode}: " + ", ".join(
                    f"{k} {v:.2f} s" for k, v in result.items()), flush=True)  # fmt: skip
                shutil.rmtree(home, ignore_errors=True)
        load_after = os.getloadavg()
        print(f"\n{trials} trivial trials, concurrency {concurrency}, median of {rounds}:")
        for key in ("seconds", "manager cpu", "waited-for cpu"):
            fg = statistics.median(r[key] for r in results["foreground"])
            det = statistics.median(r[key] for r in results["detached"])
            ratio = f"{fg / det:.3f}x" if det else "-"
            print(f"  {key}: foreground {fg:.2f} s, detached {det:.2f} s: {ratio}")
        print(
            "  load average (1, 5, 15 min): before "
            + " ".join(f"{x:.2f}" for x in load_before)
            + ", after "
            + " ".join(f"{x:.2f}" for x in load_after)
        )
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
