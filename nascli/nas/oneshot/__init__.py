"""One-shot NAS: trainers that train a supernet holding every candidate, then export the best
architecture (``apply_fixed_architecture`` reads it)."""

from nascli.nas.oneshot.base import BaseOneShotTrainer
from nascli.nas.oneshot.callbacks import (
    ArchitectureCheckpoint,
    Callback,
    LRSchedulerCallback,
    ModelCheckpoint,
)
from nascli.nas.oneshot.darts import DartsMutator, DartsTrainer
from nascli.nas.oneshot.enas import EnasMutator, EnasTrainer
from nascli.nas.oneshot.experiment import OneShotExperiment
from nascli.nas.oneshot.gdas import GumbelDartsTrainer
from nascli.nas.oneshot.pdarts import PdartsTrainer
from nascli.nas.oneshot.proxyless import ProxylessNasTrainer, ProxylessTrainer
from nascli.nas.oneshot.random import RandomTrainer
from nascli.nas.oneshot.sampling import SinglePathTrainer
from nascli.nas.oneshot.spos import (
    SPOSEvolution,
    SPOSSupernetTrainer,
    SPOSSupernetTrainingMutator,
    SPOSTrainer,
)
from nascli.nas.oneshot.utils import replace_input_choice, replace_layer_choice

__all__ = [
    "BaseOneShotTrainer",
    "DartsTrainer",
    "EnasTrainer",
    "GumbelDartsTrainer",
    "ProxylessTrainer",
    "SPOSTrainer",
    "RandomTrainer",
    "SinglePathTrainer",
    "OneShotExperiment",
    "DartsMutator",
    "EnasMutator",
    "PdartsTrainer",
    "ProxylessNasTrainer",
    "SPOSSupernetTrainer",
    "SPOSSupernetTrainingMutator",
    "SPOSEvolution",
    "Callback",
    "LRSchedulerCallback",
    "ArchitectureCheckpoint",
    "ModelCheckpoint",
    "replace_layer_choice",
    "replace_input_choice",
]
