"""Search-space, parameter and architecture documents, and the one internal decision form
(torch-free; shared by the trial side, the tuners and the experiment manager).

Split by job: ``specs`` (the search space and ``Chosen``, the internal form), ``parameters``
(the tuners' wire format), ``architecture`` (the export format and the mutators' multi-hot
form), ``encodings`` (sampling and policy steps), ``files`` (JSON files). Everything is
re-exported here: ``from nascli import space as spaces`` is how the rest of nascli uses it.
"""

# Each module's ``__all__`` is the one list of what it exports; this package exports their union.
from nascli.space import architecture, encodings, files, parameters, specs
from nascli.space.architecture import *  # noqa: F403
from nascli.space.encodings import *  # noqa: F403
from nascli.space.files import *  # noqa: F403
from nascli.space.parameters import *  # noqa: F403
from nascli.space.specs import *  # noqa: F403

__all__ = [
    *specs.__all__, *parameters.__all__, *architecture.__all__, *encodings.__all__, *files.__all__
]
