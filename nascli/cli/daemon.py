"""The detached manager process: ``nascli.cli.daemon EXP_DIR [START_TOKEN]`` (started by
``control.daemon_command``, without the caller's directory on ``sys.path``).

Started by ``nascli create`` / ``resume`` in its own session with stdout/stderr appended to the
experiment's ``manager.log`` (where the manager logs too; anything else it prints, e.g. a crash,
lands there as well). It runs the experiment to its end, and exits 0 when
the experiment ended (DONE, STOPPED, ERROR are all recorded in the store), 1 when the manager
itself failed (also recorded, with the traceback in the log).
"""

from __future__ import annotations

import logging
import sys

from nascli.errors import NasCliError
from nascli.experiment.manager import Manager
from nascli.experiment.store import ExperimentStore


def main(argv: list[str]) -> int:
    if len(argv) not in (1, 2):
        print("usage: python -m nascli.cli.daemon EXP_DIR [START_TOKEN]", file=sys.stderr)
        return 2
    try:
        store = ExperimentStore(argv[0])
        status = Manager(store, start_token=argv[1] if len(argv) > 1 else None).run()
    except NasCliError as exc:
        logging.getLogger("nascli.manager").error("%s", exc)
        return exc.exit_code
    except Exception:  # noqa: BLE001 - the traceback goes to manager.log
        logging.getLogger("nascli.manager").exception("manager crashed")
        return 1
    return 0 if status in ("DONE", "STOPPED", "ERROR") else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
