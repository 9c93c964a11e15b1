"""Trial-side reporting API, re-exported by ``nascli`` (no torch import).

In a trial started by the experiment manager, each report appends one line to the trial's
``metrics.jsonl`` (written at once) through the trial channel. In standalone mode
(``python trial.py``, no ``NASCLI_PLATFORM``) reports are printed, so the script stays debuggable.
"""

from __future__ import annotations

from typing import Any

from nascli import channel

__all__ = [
    "report_intermediate_result",
    "report_final_result",
    "get_experiment_id",
    "get_trial_id",
    "get_sequence_id",
    "get_next_parameter",
]


def _report(kind: str, label: str, metric: Any) -> None:
    context = channel.TrialContext.from_environ()
    if context.standalone or context.trial_dir is None:
        value = channel.check_metric(metric)
        # Standalone mode has no manager to receive the metric: the user reads it on stdout.
        print(f"[nascli] {label} result: {value}", flush=True)
        return
    channel.append_metric(context.trial_dir, kind, metric)


def report_intermediate_result(metric: Any) -> None:
    """Report a per-epoch (or per-step) metric: a finite number or a dict with numeric 'default'.

    Raises:
        MetricError: the metric is not a finite number / has no numeric 'default'.
    """
    _report(channel.INTERMEDIATE, "intermediate", metric)


def report_final_result(metric: Any) -> None:
    """Report the trial's final metric (what tuners optimise). Same format as intermediate ones.

    Raises:
        MetricError: the metric is not a finite number / has no numeric 'default'.
    """
    _report(channel.FINAL, "final", metric)


def get_experiment_id() -> str:
    """The experiment id, or ``"STANDALONE"`` outside an experiment."""
    return channel.TrialContext.from_environ().experiment_id or "STANDALONE"


def get_trial_id() -> str:
    """The trial id, or ``"STANDALONE"`` outside an experiment."""
    return channel.TrialContext.from_environ().trial_id or "STANDALONE"


def get_sequence_id() -> int:
    """The trial's sequence number in its experiment (0 outside an experiment)."""
    seq = channel.TrialContext.from_environ().sequence_id
    return 0 if seq is None else seq


def get_next_parameter() -> dict[str, Any] | None:
    """The parameters the tuner chose for this trial (``{key: {"_value", "_idx"}}``), for trial
    code that does not build a torch model (``get_and_apply_next_architecture`` is the usual
    way). None in standalone mode.

    Raises:
        ParameterError: the trial's parameter file is missing or malformed.
    """
    context = channel.TrialContext.from_environ()
    if context.standalone or context.trial_dir is None:
        return None
    return channel.read_parameters(context.trial_dir)[1]
