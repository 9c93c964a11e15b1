"""Experiment management (torch-free): config, store, manager, training services, trial states.

The trial channel moved to ``nascli.channel`` (the trial side imports it too); the old module
path ``nascli.experiment.channel`` still resolves to it for code written against it.
"""

import sys as _sys

from nascli import channel as _channel

_sys.modules.setdefault(__name__ + ".channel", _channel)
