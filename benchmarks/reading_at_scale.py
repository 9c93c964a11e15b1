"""How the reading commands scale with the number of trials: 50, 1,000 and 10,000 by default.

Each size gets its own ``$NASCLI_HOME`` holding one finished experiment built by
``tests/stores.py::build_store`` (a documented store-level fixture: the store's own write
functions, in the manager's order, parameters drawn in the tuners' format; 10 intermediate
results per trial, one in 20 failed, one in 50 cancelled). Before measuring, a real manager runs
a small experiment of trivial trials and the fixture's store is compared with it (tables, which
columns each status sets, metric kinds per trial, event kinds): a mismatch is printed.

Then every command runs as its own ``nascli`` process (stdout to a file, as in a pipe), all
commands and sizes interleaved round by round; printed per command and size: the median wall
time, the peak RSS of the process (``wait4``), and the ratio of the time to the smallest size's.
The baseline for ``--json`` and the exports is ``sqlite3 -json`` dumping the same rows (trials
and metrics) from the same database. ``nascli --version`` shows the interpreter's start-up.

    python benchmarks/reading_at_scale.py [--sizes 50,1000,10000] [--rounds 5] [--no-real-check]
                                          [--baseline TREE]

``--baseline TREE`` runs every command also from another source tree of nascli (say main's,
from ``git archive main | tar -x -C TREE``), interleaved with this one's, for before/after
figures from one run.

Bytecode: an installed nascli runs from byte-compiled modules (pip compiles them at install, and
an editable checkout writes ``__pycache__`` on first import), so the commands run with Python's
bytecode cache on, kept under the run's temporary directory (``PYTHONPYCACHEPREFIX``; each tree
is compiled by a first, unmeasured round), even where ``PYTHONDONTWRITEBYTECODE`` is set.
``--source`` measures instead what that variable gives: every nascli module compiled from
source on every run (about 45 ms of ``trial ls`` on the project's machine).

With ``--foreground N`` it measures instead the foreground live view's cost
(``benchmarks/foreground_view.py``): N trivial trials detached and ``--foreground`` on a
pseudo-terminal, interleaved (issue 19: foreground within 1.05x of detached).

    python benchmarks/reading_at_scale.py --foreground 2000 [--foreground-rounds 2]

With ``--ended K,N``: ``top --once`` and ``top --once --all`` over K ended experiments of N
trials each (issue 19: ten ended 5,000-trial experiments).

    python benchmarks/reading_at_scale.py --ended 10,5000 [--rounds 5] [--baseline TREE]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

COMMANDS: dict[str, list[str]] = {
    "--version": ["--version"],
    "status": ["status"],
    "status --json": ["status", "--json"],
    "trial ls": ["trial", "ls"],
    "trial ls --sort best": ["trial", "ls", "--sort", "best"],
    "trial ls --all": ["trial", "ls", "--all"],
    "trial ls --json": ["trial", "ls", "--json"],
    "export csv": ["experiment", "export", "--type", "csv", "--file", "{out}/e.csv"],
    "export json": ["experiment", "export", "--type", "json", "--file", "{out}/e.json"],
    "top --once": ["top", "--once"],
    "top --once --all": ["top", "--once", "--all"],
}
SQLITE_DUMP = (
    "SELECT * FROM trials ORDER BY seq; SELECT * FROM metrics ORDER BY trial_id, sequence;"
)


def run_once(
    argv: list[str], env: dict[str, str], out: Path, cwd: Path = REPO
) -> tuple[float, int, int]:
    """Wall seconds, peak RSS (KiB) and exit status of one process. The peak comes from
    ``/usr/bin/time`` (its child's ``wait4``): a child forked straight from this process would
    count this process's memory, copied at the fork, as its own."""
    with open(out / "stdout", "wb") as sink:
        start = time.perf_counter()
        proc = subprocess.run(
            ["/usr/bin/time", "-f", "%M", "-o", str(out / "rss"), *argv],
            env=env, stdout=sink, stderr=subprocess.DEVNULL, check=False, cwd=cwd,
        )  # fmt: skip
        elapsed = time.perf_counter() - start
    peak = (out / "rss").read_text().split()[-1]
    return elapsed, int(peak) if peak.isdigit() else 0, proc.returncode


def build_homes(root: Path, sizes: list[int]) -> dict[int, Path]:
    from tests.stores import build_store

    homes = {}
    for n in sizes:
        home = root / f"home{n}"
        os.environ["NASCLI_HOME"] = str(home)
        start = time.perf_counter()
        store = build_store(n)
        store.close()
        print(f"built {n} trials in {time.perf_counter() - start:.1f} s", flush=True)
        homes[n] = home
    return homes


def store_shape(db: Path) -> dict[str, object]:
    """What a reader relies on: columns set per trial status, metric kinds, event kinds."""
    import json
    import sqlite3

    conn = sqlite3.connect(db)
    try:
        tables = sorted(
            r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
        )
        columns = [r[1] for r in conn.execute("PRAGMA table_info(trials)")]
        set_by_status: dict[str, set[str]] = {}
        for row in conn.execute("SELECT * FROM trials"):
            status = row[columns.index("status")]
            present = {c for c, v in zip(columns, row, strict=True) if v is not None}
            set_by_status.setdefault(status, set()).update(present)
        first = json.loads(conn.execute("SELECT parameters FROM trials LIMIT 1").fetchone()[0])
        parameter_format = {
            k: sorted((f, type(v).__name__) for f, v in spec.items()) for k, spec in first.items()
        }
        kinds = sorted(r[0] for r in conn.execute("SELECT DISTINCT type FROM metrics"))
        finals = (
            conn.execute("SELECT COUNT(*) FROM metrics WHERE type = 'FINAL'").fetchone()[0]
            == conn.execute("SELECT COUNT(*) FROM trials WHERE status = 'SUCCEEDED'").fetchone()[0]
        )
        exp = conn.execute("SELECT status, started IS NOT NULL, ended IS NOT NULL FROM experiment")
        return {
            "tables": tables,
            "trial columns": columns,
            "columns set per status": {k: sorted(v) for k, v in set_by_status.items()},
            "parameter format": parameter_format,
            "metric kinds": kinds,
            "one FINAL per succeeded trial": finals,
            "experiment": exp.fetchone(),
        }
    finally:
        conn.close()


def real_check(root: Path) -> None:
    """Run a real 30-trial experiment; compare its store's shape with the fixture's."""
    import json

    import yaml

    from tests.stores import SEARCH_SPACE, build_store

    work = root / "real"
    work.mkdir()
    (work / "search_space.json").write_text(json.dumps(SEARCH_SPACE))
    (work / "trial.py").write_text(
        "import nascli\n"
        "for step in range(10):\n"
        "    nascli.report_intermediate_result(step / 10)\n"
        "nascli.report_final_result({'default': 0.5, 'loss': 0.5})\n"
    )
    doc = {
        "experimentName": "real", "trialConcurrency": 2, "maxTrialNum": 30,
        "searchSpacePath": "search_space.json",
        "tuner": {"builtinTunerName": "Random", "classArgs": {"seed": 1}},
        "trial": {"command": f"{sys.executable} trial.py", "codeDir": "."},
    }  # fmt: skip
    (work / "config.yml").write_text(yaml.safe_dump(doc))
    env = {**os.environ, "NASCLI_HOME": str(work / "home")}
    subprocess.run(
        [sys.executable, "-m", "nascli.cli.main", "create", "--config", str(work / "config.yml"),
         "--foreground"], env=env, check=True, stdout=subprocess.DEVNULL, cwd=work,
    )  # fmt: skip
    real_db = next((work / "home").iterdir()) / "experiment.sqlite"
    os.environ["NASCLI_HOME"] = str(work / "fixture")
    fixture = build_store(30)
    fixture.close()
    real, fake = store_shape(real_db), store_shape(fixture.dir / "experiment.sqlite")
    # The fixture fails and cancels some trials; the real run only succeeds: compare those.
    fake["columns set per status"] = {
        k: v for k, v in fake["columns set per status"].items() if k == "SUCCEEDED"
    }
    diffs = [k for k in real if real[k] != fake[k]]
    if diffs:
        for key in diffs:
            print(
                f"fixture differs from a real store in {key}: real {real[key]} fixture {fake[key]}"
            )
    else:
        print("fixture store matches a real manager's store (tables, columns per status, metrics)")


def ended_experiments_check(
    root: Path, count: int, size: int, rounds: int, baseline: Path | None
) -> None:
    """``top --once`` (nothing running) and ``experiment list --all`` over ``count`` ended
    experiments of ``size`` trials each, in one home."""
    from tests.stores import build_store

    home = root / "ended"
    os.environ["NASCLI_HOME"] = str(home)
    for i in range(count):
        build_store(size, seed=i).close()
    out = root / "out"
    out.mkdir(exist_ok=True)
    trees = {"": REPO, **({" [baseline]": baseline.resolve()} if baseline else {})}
    times: dict[str, list[float]] = {}
    for _ in range(rounds):
        for argv in (["top", "--once"], ["top", "--once", "--all"]):
            for label, tree in trees.items():
                env = {**os.environ, "NASCLI_HOME": str(home), "PYTHONPATH": str(tree)}
                cmd = [sys.executable, "-m", "nascli.cli.main", *argv]
                elapsed, _, _ = run_once(cmd, env, out, tree)
                times.setdefault(" ".join(argv) + label, []).append(elapsed)
    print(f"{count} ended experiments of {size:,} trials, median of {rounds}:")
    for name, values in times.items():
        print(f"  {name}: {statistics.median(values) * 1000:.0f} ms")


def _bytecode_env(root: Path, source: bool) -> dict[str, str]:
    """The environment for the measured runs' bytecode cache: one under ``root`` (so no tree
    gets ``__pycache__`` directories and every run starts from the same state), or none."""
    return {} if source else {"PYTHONPYCACHEPREFIX": str(root / "pycache")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="50,1000,10000")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--no-real-check", action="store_true")
    parser.add_argument("--commands", default="", help="comma-separated subset of the commands")
    parser.add_argument(
        "--source", action="store_true",
        help="compile nascli from source on every run (no bytecode cache), as under "
        "PYTHONDONTWRITEBYTECODE=1",
    )  # fmt: skip
    parser.add_argument(
        "--foreground", type=int, default=0, metavar="N",
        help="instead: N trivial trials detached against --foreground on a terminal",
    )  # fmt: skip
    parser.add_argument("--foreground-rounds", type=int, default=2)
    parser.add_argument(
        "--ended", default="", metavar="K,N",
        help="instead: top --once over K ended experiments of N trials each",
    )  # fmt: skip
    parser.add_argument(
        "--baseline", type=Path, default=None, metavar="TREE",
        help="also run every command from another nascli source tree (e.g. `git archive main`), "
        "interleaved, as 'COMMAND [baseline]'",
    )  # fmt: skip
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    commands = {
        k: v for k, v in COMMANDS.items() if not args.commands or k in args.commands.split(",")
    }
    root = Path(tempfile.mkdtemp(prefix="nascli-reading-"))
    if args.ended:
        count, size = (int(x) for x in args.ended.split(","))
        try:
            ended_experiments_check(root, count, size, args.rounds, args.baseline)
        finally:
            shutil.rmtree(root, ignore_errors=True)
        return
    if args.foreground:
        from benchmarks.foreground_view import measure

        shutil.rmtree(root, ignore_errors=True)
        measure(args.foreground, args.foreground_rounds)
        return
    try:
        if not args.no_real_check:
            real_check(root)
        homes = build_homes(root, sizes)
        out = root / "out"
        out.mkdir()
        have_sqlite = shutil.which("sqlite3") is not None
        times: dict[tuple[str, int], list[float]] = {}
        peaks: dict[tuple[str, int], int] = {}
        failures: dict[tuple[str, int], int] = {}
        trees = {"": REPO}
        if args.baseline is not None:
            trees[" [baseline]"] = args.baseline.resolve()
        bytecode = _bytecode_env(root, args.source)
        # Round 0 is not measured: it fills the bytecode cache (and the file cache).
        for round_no in range(args.rounds + 1):
            for n, home in homes.items():
                runs: dict[str, tuple[list[str], Path]] = {}
                for name, argv in commands.items():
                    for label, tree in trees.items():
                        runs[name + label] = (
                            [sys.executable, "-m", "nascli.cli.main",
                             *(a.format(out=out) for a in argv)],
                            tree,
                        )  # fmt: skip
                if have_sqlite:
                    db = next(home.iterdir()) / "experiment.sqlite"
                    runs["sqlite3 -json dump"] = (["sqlite3", "-json", str(db), SQLITE_DUMP], REPO)
                for name, (argv, tree) in runs.items():
                    env = {**os.environ, **bytecode, "NASCLI_HOME": str(home),
                           "COLUMNS": "160", "PYTHONPATH": str(tree)}  # fmt: skip
                    if args.source:
                        env["PYTHONDONTWRITEBYTECODE"] = "1"
                    else:
                        env.pop("PYTHONDONTWRITEBYTECODE", None)
                    elapsed, peak, code = run_once(argv, env, out, tree)
                    if not round_no:
                        continue
                    times.setdefault((name, n), []).append(elapsed)
                    peaks[(name, n)] = max(peaks.get((name, n), 0), peak)
                    if code != 0:
                        failures[(name, n)] = code
        names = list(dict.fromkeys(name for name, _ in times))
        cache = "compiled from source on every run" if args.source else "from cached bytecode"
        print(f"\nnascli's modules {cache}")
        head = " | ".join(f"{n:,} trials" for n in sizes)
        print(f"\nmedian of {args.rounds} (ms), peak RSS (MiB), ratio to {sizes[0]:,} trials")
        print(f"| command | {head} |")
        print("|---|" + "---|" * len(sizes))
        for name in names:
            base = statistics.median(times[(name, sizes[0])])
            cells = []
            for n in sizes:
                med = statistics.median(times[(name, n)])
                mark = f" (exit {failures[(name, n)]})" if (name, n) in failures else ""
                cells.append(
                    f"{med * 1000:.0f} ms, {peaks[(name, n)] / 1024:.0f} MiB, "
                    f"{med / base:.2f}x{mark}"
                )
            print(f"| {name} | " + " | ".join(cells) + " |")
        if have_sqlite:
            print("\nagainst sqlite3's dump of the same rows (median time ratio):")
            listed = [f"{c}{label}" for c in ("trial ls --json", "export csv", "export json")
                      for label in trees]  # fmt: skip
            for name in listed:
                if name in names:
                    cells = []
                    for n in sizes:
                        ours = statistics.median(times[(name, n)])
                        dump = statistics.median(times[("sqlite3 -json dump", n)])
                        cells.append(f"{n:,}: {ours / dump:.2f}x")
                    print(f"  {name}: " + ", ".join(cells))
        if args.baseline is not None:
            print("\nthis tree against the baseline (median time ratio):")
            for name in commands:
                cells = []
                for n in sizes:
                    ours = statistics.median(times[(name, n)])
                    theirs = statistics.median(times[(name + " [baseline]", n)])
                    cells.append(f"{n:,}: {ours / theirs:.2f}x")
                print(f"  {name}: " + ", ".join(cells))
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
