"""Golden outputs of the reading commands, as the code before issue 18 printed them.

``tests/golden/reading/`` holds what main's code (commit 8b4b5e8) printed for two fixed
experiments (``tests/stores.py``: 60 trials maximizing dict finals, 25 minimizing plain numbers)
for each command in ``COMMANDS``. They were written with::

    python -m tests.reading_golden --write       # run on main's code, before the change
    python -m tests.reading_golden --write --today   # after a deliberate fix of the format

(Rewritten with ``--today`` when architecture texts such as ``skipin=[stem,cell1]`` stopped
being read as rich markup and cut to ``skipin=``; and, on main's code, when the fixture began
recording each trial's node as the manager does: only ``"node"`` changed, null to
``"localhost"``.)

``test_reading_views.py`` rebuilds the same experiments and checks today's code prints the same
bytes where the format was not meant to change. Outputs are normalised only for what differs
from one run to the next (the experiment id and directory, and for tables the padding after
the directory); times are fixed by the fixture and printed in UTC.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

GOLDEN = Path(__file__).resolve().parent / "golden" / "reading"
REPO = Path(__file__).resolve().parents[1]

#: name -> (experiment, argv, whether the output is a file written to {out}); argv may
#: use {id} and {out}. Formats this issue keeps; the table of `trial ls` now shows a screenful
#: by default, so its golden is what `trial ls --all --sort launch` must print.
COMMANDS: dict[str, tuple[str, list[str], bool]] = {
    "status.txt": ("max", ["status", "{id}"], False),
    "status.json": ("max", ["status", "{id}", "--json"], False),
    "status_min.json": ("min", ["status", "{id}", "--json"], False),
    "status_min.txt": ("min", ["status", "{id}"], False),
    "trial_ls.txt": ("max", ["trial", "ls", "{id}"], False),
    "trial_ls.json": ("max", ["trial", "ls", "{id}", "--json"], False),
    "trial_ls_failed.json": ("max", ["trial", "ls", "{id}", "--json", "-s", "failed"], False),
    "trial_ls_min.json": ("min", ["trial", "ls", "{id}", "--json"], False),
    "export.csv": ("max", ["experiment", "export", "{id}", "-t", "csv", "-f", "{out}"], True),
    "export.json": ("max", ["experiment", "export", "{id}", "-t", "json", "-f", "{out}"], True),
    "export_min.csv": ("min", ["experiment", "export", "{id}", "-t", "csv", "-f", "{out}"], True),
    "top_all.txt": ("max", ["top", "--once", "--all"], False),
}

#: Where the format did not change, today's command that prints the golden bytes. The table of
#: `trial ls` now shows a screenful, newest first: all 60 in launch order is today's table.
TODAY = {"trial_ls.txt": ["trial", "ls", "{id}", "--limit", "60", "--sort", "launch"]}


def build(home: Path) -> dict[str, str]:
    """Make the two experiments under ``home``; returns ``{"max": id, "min": id}``."""
    from tests.stores import build_store

    previous = os.environ.get("NASCLI_HOME")
    os.environ["NASCLI_HOME"] = str(home)
    try:
        first = build_store(60, seed=3, metrics_per_trial=3)
        second = build_store(25, seed=4, metrics_per_trial=2, t0=1_700_100_000.0,
                             optimize_mode="minimize", dict_finals=False)  # fmt: skip
    finally:
        if previous is None:
            del os.environ["NASCLI_HOME"]
        else:
            os.environ["NASCLI_HOME"] = previous
    ids = {"max": first.id, "min": second.id}
    first.close()
    second.close()
    return ids


def run(home: Path, ids: dict[str, str], argv: list[str], out: Path | None = None) -> str:
    """One nascli process reading ``home``; its stdout (or the file it wrote), normalised."""
    env = {**os.environ, "NASCLI_HOME": str(home), "COLUMNS": "200", "TZ": "UTC"}
    env.pop("NASCLI_DEBUG", None)
    proc = subprocess.run(
        [sys.executable, "-m", "nascli.cli.main", *argv],
        env=env, capture_output=True, text=True, check=False, cwd=REPO,
    )  # fmt: skip
    assert proc.returncode == 0, (argv, proc.stdout, proc.stderr)
    text = out.read_text() if out is not None else proc.stdout
    return normalise(text, home, ids)


def normalise(text: str, home: Path, ids: dict[str, str]) -> str:
    text = text.replace(str(home), "<HOME>")
    for name, exp_id in ids.items():
        text = text.replace(exp_id, f"<{name.upper()}>")
    return text


def same_but_padding(text: str) -> str:
    """A table padded to its widest line pads to the directory's length, which differs from
    one temporary directory to another: compare tables without trailing spaces."""
    return "\n".join(line.rstrip() for line in text.split("\n"))


def capture(home: Path, ids: dict[str, str], name: str, today: bool = False) -> str:
    """``name``'s output: main's command, or with ``today`` the command that prints it now."""
    which, argv, to_file = COMMANDS[name]
    argv = TODAY.get(name, argv) if today else argv
    out = home.parent / f"out-{name}"
    argv = [a.format(id=ids[which], out=out) for a in argv]
    return run(home, ids, argv, out if to_file else None)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--write", action="store_true", help="(re)write the golden files")
    parser.add_argument("--today", action="store_true",
                        help="use TODAY, after a deliberate format fix")  # fmt: skip
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        ids = build(home)
        GOLDEN.mkdir(parents=True, exist_ok=True)
        for name in COMMANDS:
            text = capture(home, ids, name, args.today)
            if args.write:
                (GOLDEN / name).write_text(text)
            print(f"{name}: {len(text)} characters")


if __name__ == "__main__":
    main()
