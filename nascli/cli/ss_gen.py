"""``nascli ss_gen``: dump a trial's search space to JSON by running the trial command once."""

from __future__ import annotations

from pathlib import Path

import typer

from nascli import space as spaces
from nascli.cli.boundary import cli_command, stdout_console
from nascli.experiment.search_space_gen import DEFAULT_TIMEOUT, generate_search_space

#: what ``nnictl ss_gen`` wrote without ``--file``
DEFAULT_FILE = "nni_auto_gen_search_space.json"


@cli_command
def ss_gen(
    trial_command: str = typer.Option(
        ...,
        "--trial_command",
        "--trial-command",
        "-t",
        help="The trial command, e.g. 'python3 trial.py'.",
    ),
    trial_dir: Path = typer.Option(
        Path("."), "--trial_dir", "--trial-dir", "-d", help="Directory the command runs in."
    ),
    file: Path = typer.Option(
        Path(DEFAULT_FILE),
        "--file",
        "-f",
        help="Where to write the search space (relative to the current directory; NNI's "
        "default name, so scripts that look for it work).",
    ),
    timeout: float = typer.Option(
        DEFAULT_TIMEOUT, "--timeout", min=0.1, help="Seconds before the command is killed."
    ),
) -> None:
    """Run the trial command once and write its search space (JSON) to --file."""
    space = generate_search_space(trial_command, trial_dir, timeout=timeout)
    spaces.dump_search_space(space, file)
    stdout_console.print(
        f"wrote the search space ({len(space)} choices, {spaces.space_size(space)} architectures) "
        f"to {file}"
    )
