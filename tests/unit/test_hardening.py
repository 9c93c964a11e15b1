"""Regression tests for what an adversarial run broke (issue 12), where a unit test reaches it:
trial-file reading, the config loader's bounds, create all-or-nothing, custom-tuner paths,
terminal escapes, permissions."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import sys
import threading
from pathlib import Path

import pytest
import yaml
from nascli.experiment.channel import METRICS_FILE, read_exit_marker, read_metrics
from typer.testing import CliRunner

from nascli.cli.main import app
from nascli.errors import SearchSpaceError, UsageError
from nascli.experiment.config import ConfigError, load_config
from nascli.experiment.store import (
    ExperimentStore,
    create_experiment,
    list_experiment_dirs,
    nascli_home,
    open_experiment,
)
from nascli.space import load_search_space
from tests.experiments import TRIALS, make_experiment, quick_config

sys.path.insert(0, str(TRIALS))
from hostile_trial import bad_lines  # noqa: E402

# ------------------------------------------------------------------ 1, 3, 4: trial files


def test_every_kind_of_bad_metric_line_is_skipped_and_counted(tmp_path: Path) -> None:
    lines = bad_lines()
    good = json.dumps({"type": "FINAL", "sequence": 0, "value": 0.5, "time": 1.0}).encode()
    (tmp_path / METRICS_FILE).write_bytes(b"\n".join([*lines, good]) + b"\n")
    records, offset, bad = read_metrics(tmp_path, 0)
    assert [(r.sequence, r.value) for r in records] == [(0, 0.5)]
    assert bad == len(lines)
    assert offset == (tmp_path / METRICS_FILE).stat().st_size


def test_a_huge_sequence_number_does_not_raise(tmp_path: Path) -> None:
    (tmp_path / METRICS_FILE).write_text(
        '{"type": "FINAL", "sequence": 1e400, "value": 1}\n'
        '{"type": "FINAL", "sequence": 1e30, "value": 1}\n'
    )
    assert read_metrics(tmp_path, 0)[2] == 2


def test_a_line_longer_than_a_read_is_skipped_in_bounded_steps(tmp_path: Path) -> None:
    from nascli.experiment.channel import METRICS_READ_LIMIT

    good = b'{"type": "FINAL", "sequence": 0, "value": 2.0}\n'
    (tmp_path / METRICS_FILE).write_bytes(b"z" * (METRICS_READ_LIMIT + 10) + b"\n" + good)
    offset, found, bad = 0, [], 0
    for _ in range(4):
        records, offset, n = read_metrics(tmp_path, offset)
        found += records
        bad += n
    assert [r.value for r in found] == [2.0] and bad == 2


@pytest.mark.parametrize("kind", ["fifo", "devzero", "directory", "symlink"])
def test_metrics_that_are_not_a_regular_file_read_as_empty_without_blocking(
    tmp_path: Path, kind: str
) -> None:
    path = tmp_path / METRICS_FILE
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "devzero":
        path.symlink_to("/dev/zero")
    elif kind == "directory":
        path.mkdir()
    else:
        target = tmp_path / "elsewhere"
        target.write_text('{"type": "FINAL", "sequence": 0, "value": 1}\n')
        path.symlink_to(target)
    assert _without_blocking(lambda: read_metrics(tmp_path, 0), [path]) == ([], 0, 0)
    os.mkfifo(tmp_path / "exit")
    assert _without_blocking(lambda: read_exit_marker(tmp_path), [tmp_path / "exit"]) is None


def _without_blocking(call, fifos: list[Path] = ()):  # noqa: ANN001, ANN202
    """``call()``'s result; fails (instead of hanging the run) if it blocks, e.g. in the open()
    of a FIFO, and then unblocks it by opening ``fifos`` for writing."""
    result: list = []
    thread = threading.Thread(target=lambda: result.append(call()), daemon=True)
    thread.start()
    thread.join(5.0)
    if thread.is_alive():
        for fifo in fifos:
            try:
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
            except OSError:
                pass
        raise AssertionError("the read blocked")
    assert result, "the read raised"
    return result[0]


def test_only_the_tail_of_a_huge_stderr_is_read(tmp_path: Path) -> None:
    from nascli.experiment.channel import stderr_last_line

    stderr = tmp_path / "stderr"
    with open(stderr, "wb") as f:
        f.truncate(8 << 30)  # 8 GiB, sparse: reading it whole would not fit in memory
        f.seek(0, os.SEEK_END)
        f.write(b"\nboom: the real error\n\n")
    assert stderr_last_line(stderr) == "boom: the real error"
    os.unlink(stderr)
    stderr.symlink_to("/dev/zero")
    assert stderr_last_line(stderr) is None


# ------------------------------------------------------------------ 11, 12: config bounds


def _with_trial(text: str, **fields: str) -> str:
    doc = yaml.safe_load(text)
    doc["trial"].update(fields)
    return yaml.safe_dump(doc)


def _config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yml"
    path.write_text(text)
    return path


BOMB = """\
trialConcurrency: 1
trial: {command: "true"}
tuner:
  builtinTunerName: Random
  classArgs:
    a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
    b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
    c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
    d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
    e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
    f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
    g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
    h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
    i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"""


def test_a_yaml_alias_bomb_is_refused_before_it_expands(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(_config(tmp_path, BOMB))
    assert "expands to more than" in str(err.value) and len(str(err.value)) < 500


def test_messages_quote_a_bounded_part_of_a_value(tmp_path: Path) -> None:
    doc = yaml.safe_load(quick_config(tmp_path).read_text())
    doc["trialConcurrency"] = "x" * 100_000
    path = _config(tmp_path, yaml.safe_dump(doc))
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert "trialConcurrency" in str(err.value) and len(str(err.value)) < 500


@pytest.mark.parametrize(
    "edit, field",
    [
        (lambda t: t + "? [a, b]\n: 1\n", "key must be a plain value"),
        (lambda t: t + "deep: " + "[" * 20_000 + "]" * 20_000 + "\n", "nested deeper"),
        (lambda t: t.replace("experimentName: quick", 'experimentName: "x\\ud83d"'),
         "experimentName"),
        (lambda t: _with_trial(t, codeDir="\0" + str(TRIALS)), "trial.codeDir"),
        (lambda t: _with_trial(t, command="true\0"), "trial.command"),
    ],
)  # fmt: skip
def test_malformed_configs_name_the_file_and_field(tmp_path: Path, edit, field: str) -> None:  # noqa: ANN001
    text = quick_config(tmp_path).read_text()
    path = _config(tmp_path, edit(text))
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(path) in str(err.value) and field in str(err.value)
    assert err.value.exit_code == 2


def test_a_nul_in_the_trial_command_is_refused(tmp_path: Path) -> None:
    doc = yaml.safe_load(quick_config(tmp_path).read_text())
    doc["trial"]["command"] = "echo a\0b"
    with pytest.raises(ConfigError, match="trial.command: must not contain a NUL"):
        load_config(_config(tmp_path, yaml.safe_dump(doc)))


@pytest.mark.parametrize(
    "content, message",
    [(b"[" * 200_000 + b"]" * 200_000, "nested too deeply"), (b'{"a\xff": 1}', "not UTF-8")],
)
def test_unreadable_search_spaces_are_usage_errors(
    tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "space.json"
    path.write_bytes(content)
    with pytest.raises(SearchSpaceError, match=message):
        load_search_space(path)


def test_bad_inputs_exit_2_through_the_cli(tmp_path: Path) -> None:
    text = quick_config(tmp_path).read_text()
    space = tmp_path / "space.json"
    space.write_bytes(b"[" * 200_000 + b"]" * 200_000)
    path = _config(tmp_path, text.replace(str(TRIALS / "search_space.json"), str(space)))
    result = CliRunner().invoke(app, ["create", "--config", str(path)])
    assert result.exit_code == 2, result.output
    assert "internal error" not in result.output and "searchSpacePath" in result.output


# ------------------------------------------------------------------ 15: custom tuner/assessor paths


def _custom_loader(section: str):  # noqa: ANN202 - (load function, its error type)
    if section == "tuner":
        from tuners import load_custom_tuner
        from tuners.base import TunerArgumentError

        return load_custom_tuner, TunerArgumentError
    from nascli.assessor import AssessorArgumentError
    from nascli.assessors import load_custom_assessor

    return load_custom_assessor, AssessorArgumentError


@pytest.mark.parametrize("section", ["tuner", "assessor"])
@pytest.mark.parametrize("where", ["PARENT", "ABSOLUTE"])
def test_a_custom_class_must_load_from_inside_its_code_dir(
    tmp_path: Path, section: str, where: str
) -> None:
    load, error = _custom_loader(section)
    code_dir = tmp_path / section
    code_dir.mkdir()
    evil = tmp_path / f"evil_{section}.py"
    ran = tmp_path / "ran"
    evil.write_text(f"open({str(ran)!r}, 'w').write('x')\nclass C: pass\n")
    name = str(evil) if where == "ABSOLUTE" else f"../{evil.name}"
    doc = yaml.safe_load(quick_config(tmp_path).read_text())
    doc[section] = {"codeDir": str(code_dir), "classFileName": name, "className": "C"}
    with pytest.raises(ConfigError, match=f"{section}.classFileName: must be a file inside"):
        load_config(_config(tmp_path, yaml.safe_dump(doc)))
    with pytest.raises(error, match=f"inside {section}.codeDir"):
        load(code_dir, name, "C")
    assert not ran.exists()


# ------------------------------------------------------------------ 8: create all or nothing

_NO_ROW = "CREATE TABLE experiment (id TEXT, config TEXT, created REAL)"  # as a failed create left


def test_a_failed_create_leaves_nothing_and_broken_dirs_are_skipped(tmp_path: Path) -> None:
    from nascli.experiment.store import scan_experiments

    healthy = make_experiment(tmp_path / "a")
    config = healthy.experiment().config
    with pytest.raises(UnicodeEncodeError):
        create_experiment(config, "x", {}, "x\ud83d", None)
    assert sorted(p.name for p in nascli_home().iterdir()) == [healthy.id]
    # a directory broken some other way (no experiment row) is reported and skipped
    broken = nascli_home() / "brokenexp"
    broken.mkdir()
    sqlite3.connect(broken / "experiment.sqlite").execute(_NO_ROW)
    assert list_experiment_dirs() == [healthy.dir]
    assert [(d.name, "no experiment" in why) for d, why in scan_experiments()[1]] == [
        ("brokenexp", True)
    ]
    assert open_experiment().id == healthy.id
    with pytest.raises(UsageError, match="is broken"):
        open_experiment("brokenexp")
    result = CliRunner().invoke(app, ["experiment", "list", "--all"])
    assert result.exit_code == 0 and healthy.id in result.output and "brokenexp" in result.output


def test_stop_all_skips_a_broken_experiment_and_stops_the_healthy_one(tmp_path: Path) -> None:
    healthy = make_experiment(tmp_path)  # RUNNING in the store, no manager: stop records it
    broken = nascli_home() / "brokenexp"
    broken.mkdir()
    sqlite3.connect(broken / "experiment.sqlite").execute(_NO_ROW)
    result = CliRunner().invoke(app, ["stop", "--all"])
    assert result.exit_code == 0, result.output
    assert ExperimentStore(healthy.dir).experiment().status == "STOPPED"


# ------------------------------------------------------------------ 16: terminal escapes


def test_terminal_escapes_are_shown_escaped(tmp_path: Path) -> None:
    store = make_experiment(tmp_path, experimentName="evil\x1b[2Jname")
    with store.transaction():
        store.add_trial("0", 0, 0, {})
    with sqlite3.connect(store.dir / "experiment.sqlite") as db:  # a failed trial, as recorded
        db.execute("UPDATE trials SET status = 'FAILED', reason = ?",
                   ("exit code 1; stderr: \x1b]0;pwned\x07",))  # fmt: skip
    for args in (["status", store.id], ["trial", "ls", store.id], ["experiment", "list", "-a"]):
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
        assert "\x1b" not in result.output and "\x07" not in result.output
    assert "\\x1b[2J" in CliRunner().invoke(app, ["status", store.id]).output
    assert "\\x1b]0;pwned" in CliRunner().invoke(app, ["trial", "ls", store.id]).output


# ------------------------------------------------------------------ 17: permissions


def test_experiment_files_are_private_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o002)
    try:
        store = make_experiment(tmp_path)
    finally:
        os.umask(old)
    assert stat.S_IMODE(nascli_home().stat().st_mode) == 0o700
    assert stat.S_IMODE(store.dir.stat().st_mode) == 0o700
    for name in ("config.yml", "search_space.json", "experiment.sqlite"):
        assert stat.S_IMODE((store.dir / name).stat().st_mode) == 0o600, name


def test_nascli_umask_widens_the_modes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NASCLI_UMASK", "027")
    store = make_experiment(tmp_path)
    assert stat.S_IMODE(store.dir.stat().st_mode) == 0o750
    assert stat.S_IMODE(store.config_file.stat().st_mode) == 0o640


def test_log_refuses_a_fifo_in_place_of_a_trials_output(tmp_path: Path) -> None:
    store = make_experiment(tmp_path)
    with store.transaction():
        store.add_trial("0", 0, 0, {})
    paths = store.trial_paths("0")
    paths.dir.mkdir(parents=True)
    os.mkfifo(paths.stdout)
    result = _without_blocking(
        lambda: CliRunner().invoke(app, ["log", "stdout", store.id, "0"]), [paths.stdout]
    )
    assert result.exit_code == 2 and "not a regular file" in result.output
