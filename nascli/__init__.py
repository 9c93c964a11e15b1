"""nascli: neural architecture search for PyTorch with an nnictl-style experiment manager.

This top-level package exports the trial-side reporting API (``nascli.reporting``) and never
imports torch, so ``nascli --help`` and the experiment manager stay light. The search-space API
is in ``nascli.nas``; one-shot trainers in ``nascli.nas.oneshot``.

The reporting functions are loaded on first use (a module ``__getattr__``, PEP 562):
``import nascli`` and everything under it (the CLI, the store) do not import the trial channel's
reporting side unless a trial calls it. ``from nascli import report_final_result`` and
``nascli.report_final_result(...)`` work as they always did.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nascli.reporting import (
        get_experiment_id,
        get_next_parameter,
        get_sequence_id,
        get_trial_id,
        report_final_result,
        report_intermediate_result,
    )

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "report_intermediate_result",
    "report_final_result",
    "get_experiment_id",
    "get_trial_id",
    "get_sequence_id",
    "get_next_parameter",
]

_REPORTING = frozenset(__all__) - {"__version__"}


def __getattr__(name: str) -> Any:
    if name in _REPORTING:
        from nascli import reporting

        value = getattr(reporting, name)
        globals()[name] = value  # later lookups skip this function
        return value
    raise AttributeError(f"module 'nascli' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | _REPORTING)
