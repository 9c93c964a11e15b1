"""The CLI's error boundary and output: what a command's failures and a lost reader become."""

from __future__ import annotations

import pytest
import typer

from nascli.cli.boundary import Output, cli_command
from nascli.errors import UsageError


def test_a_usage_error_is_one_line_and_exit_code_2(capsys: pytest.CaptureFixture[str]) -> None:
    @cli_command
    def command() -> None:
        raise UsageError("config.yml: trialConcurrency: must be >= 1, got 0")

    with pytest.raises(typer.Exit) as exit_:
        command()
    assert exit_.value.exit_code == 2
    err = capsys.readouterr().err
    assert err.strip() == "error: config.yml: trialConcurrency: must be >= 1, got 0"


def test_a_reader_that_went_away_ends_a_command_quietly(
    capsys: pytest.CaptureFixture[str],
) -> None:
    @cli_command
    def command() -> None:
        raise BrokenPipeError(32, "Broken pipe")  # `nascli log ... --follow | head`

    with pytest.raises(typer.Exit) as exit_:
        command()
    assert exit_.value.exit_code == 1
    assert capsys.readouterr().err == ""  # no "internal error", no traceback


class _ClosedPipe:
    def write(self, _: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")

    def flush(self) -> None:
        raise BrokenPipeError(32, "Broken pipe")

    def isatty(self) -> bool:
        return False


def test_output_to_a_reader_that_went_away_is_dropped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdout", _ClosedPipe())
    out = Output()
    out.print("trial 0 SUCCEEDED 0.98")  # the experiment printing this must go on
    out.print("trial 1 SUCCEEDED 0.97")
