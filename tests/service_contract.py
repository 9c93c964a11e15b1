"""The contract every training service passes (``nascli/experiment/services/base.py``).

A service's tests subclass ``TrainingServiceContract`` and say how to build the service
(``make_service``) and how to start ``tests/contract_trial.py`` on it (``command``); a service
whose trials can leave children says how to find them (``leftovers``). The Ray service will
subclass it the same way. Every test ends what it started, whatever happens.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from nascli import channel
from nascli.experiment.containment import Containment
from nascli.experiment.inbox import Inbox
from nascli.experiment.processes import process_alive
from nascli.experiment.services.base import (
    LaunchesAhead,
    TrainingService,
    TrialExited,
    TrialSpec,
)


def child_left_behind(trial_dir: Path) -> list[int]:
    """The ``sleep`` trial's child (``child.pid``) if it still runs on this machine."""
    pid_file = trial_dir / "child.pid"
    if not pid_file.exists():
        return []
    pid = int(pid_file.read_text())
    return [pid] if process_alive(pid) else []


class TrainingServiceContract:
    """Subclass as ``TestXxxService(TrainingServiceContract)`` and implement the hooks."""

    # ------------------------------------------------------------------ hooks

    def make_service(self, inbox: Inbox, shared: object) -> TrainingService:
        """A service reporting to ``inbox``; services built with the same ``shared`` object see
        the same trials (the same machine or cluster), so one can adopt another's."""
        raise NotImplementedError

    def shared(self) -> object:
        """What two services of one test share (see ``make_service``)."""
        return None

    def command(self) -> str:
        """The command that runs ``tests/contract_trial.py`` on this service."""
        raise NotImplementedError

    def leftovers(self, trial_dir: Path) -> list[int]:
        """Processes of the trial still alive (its children, by ``child.pid``)."""
        return []

    # ------------------------------------------------------------------ fixtures

    @pytest.fixture
    def inbox(self):
        inbox = Inbox()
        yield inbox
        inbox.close()

    @pytest.fixture
    def service(self, inbox: Inbox):
        self._shared = self.shared()
        service = self.make_service(inbox, self._shared)
        self._service_platform = service.platform
        yield service
        service.shutdown(0.5)  # whatever the test did, no trial outlives it

    def spec(self, tmp_path: Path, trial_id: str, behaviour: str, **env: str) -> TrialSpec:
        trial_dir = tmp_path / "trials" / trial_id
        trial_dir.mkdir(parents=True)
        channel.write_parameters(trial_dir, 7, {"a": {"_value": "x", "_idx": 0}})
        context = channel.TrialContext(
            platform=self._platform, experiment_id="exp", trial_id=trial_id, sequence_id=0,
            trial_dir=trial_dir, output_dir=trial_dir, gen_search_space=None,
        )  # fmt: skip
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("NASCLI_")}
        full_env.update(context.environment(), CONTRACT_BEHAVIOUR=behaviour, **env)
        return TrialSpec(
            trial_id, self.command(), code_dir=Path(__file__).resolve().parent,
            trial_dir=trial_dir, stdout=trial_dir / "stdout", stderr=trial_dir / "stderr",
            env=full_env,
        )  # fmt: skip

    @property
    def _platform(self) -> str:
        return getattr(self, "_service_platform", "contract")

    def wait_exit(self, inbox: Inbox, trial_id: str, timeout: float = 30.0) -> TrialExited:
        return self.wait_exits(inbox, {trial_id}, timeout)[trial_id]

    def wait_exits(
        self, inbox: Inbox, trial_ids: set[str], timeout: float = 30.0
    ) -> dict[str, TrialExited]:
        exits: dict[str, TrialExited] = {}
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and set(exits) != trial_ids:
            for item in inbox.wait(0.1):
                if isinstance(item, TrialExited):
                    assert item.trial_id not in exits, f"trial {item.trial_id} exited twice"
                    exits[item.trial_id] = item
        missing = trial_ids - set(exits)
        assert not missing, f"no exit of trial(s) {sorted(missing)} within {timeout} s"
        return exits

    def wait_started(self, trial_dir: Path, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not (trial_dir / "started").exists():
            assert time.monotonic() < deadline, "the trial did not start"
            time.sleep(0.02)

    # ------------------------------------------------------------------ the contract

    def test_a_trial_runs_with_its_env_and_files_and_its_outputs_land_in_its_dir(
        self, service: TrainingService, inbox: Inbox, tmp_path: Path
    ) -> None:
        spec = self.spec(tmp_path, "0", "report", CONTRACT_VALUE="42")
        before = time.time()
        proc = service.launch(spec)
        assert proc.trial_id == "0" and isinstance(proc.host, str) and proc.host
        assert spec.stdout.exists() and spec.stderr.exists()  # exist once launch returns
        exited = self.wait_exit(inbox, "0")
        assert exited.exit_code == 0 and exited.end_time >= before
        out = spec.stdout.read_text()
        assert f"hello from 0 on {service.platform}" in out and "value=42" in out
        assert "a warning" in spec.stderr.read_text()
        records, _, bad = channel.read_metrics(spec.trial_dir)
        assert bad == 0
        assert [(r.type, r.value) for r in records] == [
            ("PERIODICAL", 0.25), ("FINAL", {"default": 0.5, "pid": 7}),
        ]  # fmt: skip
        assert channel.read_exit_marker(spec.trial_dir)[0] == 0
        assert "0" not in service.running()

    def test_an_exit_code_is_reported_once(
        self, service: TrainingService, inbox: Inbox, tmp_path: Path
    ) -> None:
        service.launch(self.spec(tmp_path, "1", "exit3"))
        assert self.wait_exit(inbox, "1").exit_code == 3
        time.sleep(0.2)
        assert [i for i in inbox.wait(0.1) if isinstance(i, TrialExited)] == []

    def test_running_lists_live_trials_and_cancel_ends_the_whole_group(
        self, service: TrainingService, inbox: Inbox, tmp_path: Path
    ) -> None:
        spec = self.spec(tmp_path, "2", "sleep")
        service.launch(spec)
        self.wait_started(spec.trial_dir)
        assert set(service.running()) == {"2"}
        asked = time.monotonic()
        service.cancel("2")
        exited = self.wait_exit(inbox, "2")
        assert exited.exit_code != 0 and time.monotonic() - asked < 15
        assert self.leftovers(spec.trial_dir) == []
        assert service.running() == {}
        service.cancel("2")  # an ended trial: ignored

    def test_shutdown_ends_every_trial(
        self, service: TrainingService, inbox: Inbox, tmp_path: Path
    ) -> None:
        specs = [self.spec(tmp_path, str(i), "sleep") for i in (3, 4)]
        for spec in specs:
            service.launch(spec)
        for spec in specs:
            self.wait_started(spec.trial_dir)
        service.shutdown(1.0)
        assert set(self.wait_exits(inbox, {"3", "4"})) == {"3", "4"}
        for spec in specs:
            assert self.leftovers(spec.trial_dir) == []

    def test_a_new_service_re_attaches_to_a_running_trial(
        self, service: TrainingService, inbox: Inbox, tmp_path: Path
    ) -> None:
        spec = self.spec(tmp_path, "5", "sleep")
        proc = service.launch(spec)
        self.wait_started(spec.trial_dir)
        inbox.close()  # the first manager is gone
        second_inbox = Inbox()
        second = self.make_service(second_inbox, self._shared)
        try:
            assert not second.adopt("5", proc.pid + 977, "not-a-token", spec.trial_dir)
            assert second.adopt("5", proc.pid, proc.token, spec.trial_dir)
            assert set(second.running()) == {"5"}
            second.cancel("5")
            exited = self.wait_exit(second_inbox, "5")
            assert exited.exit_code != 0
            assert self.leftovers(spec.trial_dir) == []
        finally:
            second.shutdown(0.5)
            second_inbox.close()

    def test_the_environment_is_the_specs(
        self, service: TrainingService, inbox: Inbox, tmp_path: Path
    ) -> None:
        spec = self.spec(tmp_path, "6", "report", CONTRACT_VALUE="x y")
        service.launch(spec)
        assert self.wait_exit(inbox, "6").exit_code == 0
        assert "value=x y" in spec.stdout.read_text()
        written = json.loads((spec.trial_dir / channel.PARAMETER_FILE).read_text())
        assert written["parameter_id"] == 7  # the input file stayed where the trial read it

    # ------------------------------------------------------------------ launching ahead

    def prepared(self, service: TrainingService) -> LaunchesAhead:
        if not isinstance(service, LaunchesAhead):
            pytest.skip(f"{type(service).__name__} does not launch ahead")
        return service

    def test_a_prepared_trial_runs_nothing_until_its_launch_then_runs_as_launched(
        self, service: TrainingService, inbox: Inbox, tmp_path: Path
    ) -> None:
        ahead = self.prepared(service)
        spec = self.spec(tmp_path, "7", "report", CONTRACT_VALUE="ahead")
        ahead.prepare(spec)
        time.sleep(0.3)
        assert {p.name for p in spec.trial_dir.iterdir()} <= {
            channel.EXIT_FILE, channel.PARAMETER_FILE, "stderr", "stdout",
        }  # fmt: skip
        assert channel.read_launch_marker(spec.trial_dir) is None
        assert channel.read_exit_marker(spec.trial_dir) is None
        assert spec.stdout.read_text() == "" and "7" not in service.running()
        service.launch(spec)
        assert self.wait_exit(inbox, "7").exit_code == 0
        assert "value=ahead" in spec.stdout.read_text()
        assert [r.type for r in channel.read_metrics(spec.trial_dir)[0]] == ["PERIODICAL", "FINAL"]
        assert channel.read_exit_marker(spec.trial_dir)[0] == 0

    def test_a_discarded_or_changed_preparation_leaves_nothing_running(
        self, service: TrainingService, inbox: Inbox, tmp_path: Path
    ) -> None:
        ahead = self.prepared(service)
        discarded = self.spec(tmp_path, "8", "report")
        ahead.prepare(discarded)
        ahead.discard("8")
        ahead.discard("8")  # twice, or for an unknown trial: ignored
        assert self.tagged(discarded.trial_dir) == set()
        assert channel.read_launch_marker(discarded.trial_dir) is None
        changed = self.spec(tmp_path, "9", "report", CONTRACT_VALUE="old")
        ahead.prepare(changed)
        fresh = TrialSpec(**{**changed.__dict__, "env": {**changed.env, "CONTRACT_VALUE": "new"}})
        service.launch(fresh)  # the spec changed since: the preparation is not used
        assert self.wait_exit(inbox, "9").exit_code == 0
        assert "value=new" in fresh.stdout.read_text()
        for spec in (self.spec(tmp_path, "10", "report"), self.spec(tmp_path, "11", "report")):
            ahead.prepare(spec)
        service.shutdown(0.5)  # ends what was prepared too
        assert self.tagged(tmp_path / "trials" / "10") == set()
        assert self.tagged(tmp_path / "trials" / "11") == set()
        assert [i for i in inbox.wait(0.2) if isinstance(i, TrialExited)] == []

    def tagged(self, trial_dir: Path) -> set[int]:
        """Live processes on this machine carrying the trial's identity (its launcher too)."""
        return Containment(trial_dir.parent.parent).members(trial_dir)
