"""Search-space, parameter and architecture documents, and the one internal decision form
(torch-free; shared by the trial side, the tuners and the experiment manager).

Split by job: ``specs`` (the search space and ``Chosen``, the internal form), ``parameters``
(the tuners' wire format), ``architecture`` (the export format and the mutators' multi-hot
form), ``encodings`` (sampling and policy steps), ``files`` (JSON files). Everything is
re-exported here: ``from nascli import space as spaces`` is how the rest of nascli uses it.
"""

from nascli.space.architecture import (
    export_architecture,
    first_candidate_architecture,
    human_architecture,
    human_readable,
    normalize_architecture,
)
from nascli.space.encodings import (
    actions_from_choices,
    choices_from_actions,
    decision_steps,
    random_choice,
)
from nascli.space.files import (
    dump_search_space,
    load_architecture,
    load_search_space,
    write_json_atomic,
)
from nascli.space.parameters import decode_parameters, parameters_from_indices, parse_parameters
from nascli.space.specs import (
    INPUT_CHOICE,
    LAYER_CHOICE,
    Choice,
    ChoiceSpec,
    Chosen,
    Decision,
    InputChoiceSpec,
    LayerChoiceSpec,
    SearchSpace,
    as_chosen,
    parse_search_space,
    search_space_to_json,
    space_size,
    to_multi_hot,
)

__all__ = [
    "LAYER_CHOICE",
    "INPUT_CHOICE",
    "LayerChoiceSpec",
    "InputChoiceSpec",
    "ChoiceSpec",
    "SearchSpace",
    "Choice",
    "Chosen",
    "Decision",
    "parse_search_space",
    "load_search_space",
    "search_space_to_json",
    "dump_search_space",
    "write_json_atomic",
    "normalize_architecture",
    "load_architecture",
    "decode_parameters",
    "parse_parameters",
    "parameters_from_indices",
    "to_multi_hot",
    "as_chosen",
    "export_architecture",
    "first_candidate_architecture",
    "human_readable",
    "human_architecture",
    "space_size",
    "random_choice",
    "decision_steps",
    "choices_from_actions",
    "actions_from_choices",
]
