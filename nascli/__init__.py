"""nascli: neural architecture search for PyTorch with an nnictl-style experiment manager.

This top-level package holds the trial-side reporting API only and never imports torch, so
``nascli --help`` and the experiment manager stay light. The search-space API is in
``nascli.nas``; one-shot trainers in ``nascli.nas.oneshot``.
"""

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
