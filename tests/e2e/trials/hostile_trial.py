"""A torch-free trial that does what a careless or hostile trial can do to the manager.

``HOSTILE_MODE`` (comma-separated, run in order) chooses:
  bad_lines     append every kind of unreadable metric line (huge numbers, deep nesting, binary,
                overlong, wrong types), then report normally
  long_line     append one 6 MiB line without a newline for a while, then a newline
  fifo          replace metrics.jsonl by a FIFO, then sleep HOSTILE_SLEEP seconds and exit 1
  devzero       replace metrics.jsonl by a symlink to /dev/zero, exit 1 after HOSTILE_SLEEP
  metrics_dir   make metrics.jsonl a directory, exit 1
  huge_stderr   grow stderr to HOSTILE_STDERR_MB MiB (sparse), write a last line, exit 3
  escape        start `setsid sleep 300` and a fork-setsid-fork daemon; their pids go to
                escaped.pids in the trial directory (written before anything else happens)
  scrub         the escaped processes also clear their environment (only a cgroup finds them)
  sleep         sleep HOSTILE_SLEEP seconds
  report        report a final result (the default last step of modes that do not exit)
  counter       append one line to $HOSTILE_COUNTER (how often the trial ran)
  garbage_out   binary, NUL bytes and terminal escapes on stdout and stderr, then exit 1
  exit_fifo     put a FIFO where the launcher writes the exit marker, then report
  fill_disk     write to the trial directory until the disk is full, then sleep HOSTILE_SLEEP

``HOSTILE_MODES_BY_SEQ`` (modes for each trial, separated by ``;``) gives trial ``seq`` the
modes at ``seq`` modulo their number instead.
"""

import json
import os
import subprocess
import sys
import time

import nascli

trial_dir = os.environ.get("NASCLI_TRIAL_DIR", ".")
metrics = os.path.join(trial_dir, "metrics.jsonl")
nap = float(os.environ.get("HOSTILE_SLEEP", "0"))


def bad_lines() -> list[bytes]:
    deep = "[" * 100_000 + "]" * 100_000
    value = {"type": "FINAL", "value": 1.0, "time": 0}
    lines = [
        json.dumps({**value, "sequence": 1e400}).replace("Infinity", "1e400"),
        json.dumps({**value, "sequence": 1e30}),
        json.dumps({**value, "sequence": 10**30}),
        json.dumps({**value, "sequence": -1}),
        json.dumps({**value, "sequence": True}),
        json.dumps({**value, "sequence": 5, "time": "later"}),
        '{"type": "FINAL", "sequence": 7, "value": ' + deep + "}",
        deep,
        '{"type": "FINAL", "sequence": 8, "value": ' + "9" * 5000 + "}",
        '{"type": "FINAL", "sequence": 9, "value": {"default": 1e400}}',
        '{"type": "FINAL", "sequence": 10, "value": {"default": 1, "x": [1e400]}}',
        '{"type": "NOPE", "sequence": 11, "value": 1}',
        '{"sequence": 12}',
        "[1, 2, 3]",
        '"just a string"',
        "null",
        "x" * (200 << 10),
    ]
    raw = [line.encode() for line in lines]
    raw += [b"\xff\xfe\x00garbage\x1b[2J", b"\x00" * 1000, b""]
    return raw


def spawn_escapees(scrub: bool) -> None:
    env = {} if scrub else None
    pids_file = os.path.join(trial_dir, "escaped.pids")
    first = subprocess.Popen(["setsid", "sleep", "300"], env=env)  # setsid: no fork needed
    daemon = (
        "import os, sys, time\n"
        "if os.fork(): os._exit(0)\n"
        "os.setsid()\n"
        "if os.fork(): os._exit(0)\n"
        f"open({pids_file!r}, 'a').write(str(os.getpid()) + '\\n')\n"
        "time.sleep(300)\n"
    )
    with open(pids_file, "a") as f:
        f.write(f"{first.pid}\n")
    subprocess.run([sys.executable, "-c", daemon], env=env, check=True)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with open(pids_file) as f:
            if len(f.read().split()) >= 2:
                break
        time.sleep(0.02)


def main() -> None:
    chosen = os.environ.get("HOSTILE_MODE", "report")
    if os.environ.get("HOSTILE_MODES_BY_SEQ"):
        per_trial = os.environ["HOSTILE_MODES_BY_SEQ"].split(";")
        chosen = per_trial[(nascli.get_sequence_id() or 0) % len(per_trial)]
    modes = [m for m in chosen.split(",") if m]
    for mode in modes:
        if mode == "bad_lines":
            with open(metrics, "ab") as f:
                f.write(b"\n".join(bad_lines()) + b"\n")
        elif mode == "long_line":
            with open(metrics, "ab") as f:
                f.write(b"y" * (6 << 20))
                f.flush()
                time.sleep(1.0)
                f.write(b"\n")
        elif mode == "fifo":
            os.mkfifo(metrics)
            time.sleep(nap)
            sys.exit(1)
        elif mode == "devzero":
            os.symlink("/dev/zero", metrics)
            time.sleep(nap)
            sys.exit(1)
        elif mode == "metrics_dir":
            os.mkdir(metrics)
            sys.exit(1)
        elif mode == "huge_stderr":
            size = int(os.environ.get("HOSTILE_STDERR_MB", "600")) << 20
            sys.stderr.flush()
            os.ftruncate(2, size)
            os.lseek(2, 0, os.SEEK_END)
            os.write(2, b"\nthe last line of a huge stderr\n")
            sys.exit(3)
        elif mode in ("escape", "scrub"):
            spawn_escapees(scrub=mode == "scrub")
        elif mode == "sleep":
            time.sleep(nap)
        elif mode == "counter":
            with open(os.environ["HOSTILE_COUNTER"], "a") as f:
                f.write(f"{nascli.get_trial_id()}\n")
        elif mode == "garbage_out":
            sys.stdout.buffer.write(b"\x00\xff\xfe\x1b[2J\x1b]0;title\x07" * 1000 + b"\n")
            sys.stdout.flush()
            sys.stderr.buffer.write(b"\xff\x00 not utf-8\n\x1b[2J\x1b[31mlast line\x07\n")
            sys.stderr.flush()
            sys.exit(1)
        elif mode == "exit_fifo":
            marker = os.path.join(trial_dir, "exit")
            if os.path.lexists(marker):  # the launcher made it already: swap it for the FIFO
                os.unlink(marker)
            os.mkfifo(marker)
        elif mode == "fill_disk":
            try:
                with open(os.path.join(trial_dir, "fill"), "wb") as f:
                    while True:
                        f.write(b"\0" * (64 << 10))
                        f.flush()
            except OSError:
                pass
            time.sleep(nap)
        elif mode == "report":
            nascli.report_final_result(float(nascli.get_sequence_id() or 0))


if __name__ == "__main__":
    main()
