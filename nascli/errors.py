"""Typed errors raised by nascli's library code.

Library modules raise these; only ``nascli.cli`` turns them into a one-line message and an exit
code. Each error also subclasses the builtin it resembles (``ValueError``, ``RuntimeError``) so
callers that already catch builtins keep working.

Messages follow one shape: where (file / key / module path), the rule, then the value given.
Errors that collect several problems (a config, an architecture) carry them in ``problems`` and
render one line per problem.

Every error nascli raises on purpose is defined here, in one hierarchy under ``NasCliError``
(modules that raised them before re-export them under their old names)::

    NasCliError
      UsageError (exit 2)            bad input: arguments, files
        SearchSpaceError, ArchitectureError, ParameterError, ConfigError  (problem lists)
        MutableError, MetricError, TunerArgumentError, ExperimentNotFoundError
      MutatorNotAppliedError, TrialCommandError, ManagerStartError   (also RuntimeError)
      ExperimentBusyError            another manager runs the experiment
      NoMoreTrialError               a tuner has nothing more to propose (control flow)
      GpuUnavailable                 no GPU set fits a trial right now (control flow)
      TunerFailedError               the tuner raised or proposed invalid parameters
      IllegalTransitionError         a status change the trial state machine does not allow
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

__all__ = [
    "NasCliError",
    "UsageError",
    "SearchSpaceError",
    "ArchitectureError",
    "ParameterError",
    "MutableError",
    "MutatorNotAppliedError",
    "MetricError",
    "TrialCommandError",
    "ConfigError",
    "TunerArgumentError",
    "ExperimentNotFoundError",
    "ExperimentBusyError",
    "ManagerStartError",
    "NoMoreTrialError",
    "GpuUnavailable",
    "TunerFailedError",
    "IllegalTransitionError",
]


class NasCliError(Exception):
    """Base of every error nascli raises on purpose. ``exit_code`` is what the CLI exits with."""

    exit_code = 1


class UsageError(NasCliError, ValueError):
    """The user's input (arguments, files) is wrong; exit code 2."""

    exit_code = 2


class _ProblemList(UsageError):
    """An error that reports several problems at once, one line each."""

    headline = "invalid input"

    def __init__(self, problems: Iterable[str], source: str | None = None):
        self.problems = list(problems)
        self.source = source
        where = f" in {source}" if source else ""
        if len(self.problems) == 1:
            message = f"{self.headline}{where}: {self.problems[0]}"
        else:
            lines = "\n".join(f"  - {p}" for p in self.problems)
            message = f"{self.headline}{where} ({len(self.problems)} problems):\n{lines}"
        super().__init__(message)


class SearchSpaceError(_ProblemList):
    """A search-space JSON document (or a model's search space) is malformed."""

    headline = "invalid search space"


class ArchitectureError(_ProblemList):
    """An architecture (exported JSON, dict) does not fit the model's search space."""

    headline = "invalid architecture"


class ParameterError(_ProblemList):
    """A tuner's parameters (``{key: {"_value", "_idx"}}``) do not fit the search space."""

    headline = "invalid parameters"


class MutableError(UsageError, RuntimeError):
    """A search-space model is built wrongly (conflicting keys, nested choices, bad arguments, a
    second mutator on one model). Also a ``RuntimeError``, the class NNI v1.9 raised for these."""


class MutatorNotAppliedError(NasCliError, RuntimeError):
    """A mutable ran before any mutator or fixed architecture was applied to its model."""


class MetricError(UsageError):
    """A reported metric is not a finite number or a dict with a numeric ``default``."""


class TrialCommandError(NasCliError, RuntimeError):
    """A trial command run by nascli (e.g. for ``ss_gen``) failed, hung or produced nothing."""


class ConfigError(_ProblemList):
    """An experiment config is invalid. ``problems`` holds one line per problem, each naming
    the file and the field."""

    headline = "invalid config"

    def __init__(self, path: str | Path, problems: list[str]):
        self.path = str(path)
        super().__init__([f"{self.path}: {p}" for p in problems])


class TunerArgumentError(UsageError):
    """A tuner's ``classArgs`` (or its custom class) are invalid."""


class ExperimentNotFoundError(UsageError):
    """No experiment matches the id given (or none exists yet)."""


class ExperimentBusyError(NasCliError):
    """Another manager holds the experiment (it is running)."""


class ManagerStartError(NasCliError, RuntimeError):
    """The manager process could not start (its log tail is in the message)."""


class NoMoreTrialError(NasCliError):
    """Raised by ``Tuner.generate_parameters`` when the tuner has nothing more to propose."""


class GpuUnavailable(NasCliError):
    """No GPU set fits the request right now; ``str()`` says which GPUs and why."""


class TunerFailedError(NasCliError):
    """The tuner raised, or proposed parameters that do not fit the search space; the search
    ends (the experiment ERROR) while the trials already running finish."""


class IllegalTransitionError(NasCliError, RuntimeError):
    """A status change that the trial (or experiment) state machine does not allow: a bug in
    the caller, or a store changed behind the manager's back."""
