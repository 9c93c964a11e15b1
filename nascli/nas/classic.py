"""Classic (multi-trial) NAS, trial side: ``get_and_apply_next_architecture(model)``.

Called once in the trial script, right after the model is built. What it does depends on how the
script runs (read from the environment, see ``nascli.channel``):

* under ``nascli ss_gen`` (``NASCLI_GEN_SEARCH_SPACE`` set): writes the model's search space there
  and ends the process with exit code 0, so nothing after the model's construction runs;
* standalone (no ``NASCLI_PLATFORM``): applies the first candidate of every layer choice and the
  first ``n_chosen`` inputs of every input choice (all of them for ``n_chosen=None``), and logs
  one line saying so;
* in a trial: reads ``parameter.json`` from the trial directory, validates it against the model's
  search space and applies it.

The chosen architecture is applied with ``apply_fixed_architecture`` semantics (unchosen
candidates pruned) unless ``prune=False``, which keeps every candidate's weights, e.g. to load a
supernet checkpoint afterwards.
"""

from __future__ import annotations

import logging

import torch.nn as nn

from nascli import channel
from nascli import space as spaces
from nascli.nas.fixed import FixedArchitecture
from nascli.nas.mutator import model_search_space

__all__ = ["get_and_apply_next_architecture"]

_logger = logging.getLogger("nascli")


def get_and_apply_next_architecture(model: nn.Module, prune: bool = True) -> FixedArchitecture:
    """Apply the architecture this run should use to ``model`` and return its mutator.

    Raises:
        ParameterError: the trial's ``parameter.json`` is missing, malformed or does not fit the
            model's search space (the message names the file and every mismatch).
        SystemExit: with code 0, after writing the search space under ``ss_gen``.
    """
    context = channel.TrialContext.from_environ()
    space = model_search_space(model)
    if context.gen_search_space is not None:
        spaces.dump_search_space(space, context.gen_search_space)
        raise SystemExit(0)
    if context.standalone:
        decisions = spaces.first_candidate_architecture(space)
        _logger.warning(
            "standalone mode (no experiment): using the first candidate of every choice: %s",
            spaces.human_architecture(space, decisions),
        )
        source = "standalone mode"
    else:
        if context.trial_dir is None:
            raise channel.ParameterError(
                [f"{channel.ENV_PLATFORM} is set but {channel.ENV_TRIAL_DIR} is not"],
                "the trial environment",
            )
        _, parameters, path = channel.read_parameters(context.trial_dir)
        decisions = spaces.parse_parameters(space, parameters, str(path))  # the one parse
        source = str(path)
    mutator = FixedArchitecture(model, decisions, source=source, normalized=True)
    if prune:
        mutator.replace_layer_choice()
    return mutator
