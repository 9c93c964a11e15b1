"""Tuners for NAS search spaces, and the registry of built-in tuner names.

``BUILTIN_TUNERS`` maps a config's ``builtinTunerName`` to its class; ``create_tuner(name,
class_args)`` builds one with clear errors for unknown names and arguments that do not fit.
Everything here is torch-free except ``PPOTuner`` (``tuners/ppo.py``), which is imported only
when it is asked for, so that ``nascli`` commands that do not use it never load torch.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Iterator, Mapping
from typing import Any

from nascli._text import did_you_mean
from tuners.base import NoMoreTrialError, Tuner, TunerArgumentError
from tuners.custom import load_custom_tuner
from tuners.evolution import EvolutionTuner
from tuners.grid import GridSearchTuner
from tuners.random import RandomTuner
from tuners.tpe import TpeTuner

__all__ = [
    "Tuner",
    "NoMoreTrialError",
    "TunerArgumentError",
    "RandomTuner",
    "GridSearchTuner",
    "EvolutionTuner",
    "TpeTuner",
    "PPOTuner",
    "BUILTIN_TUNERS",
    "create_tuner",
    "check_class_args",
    "load_custom_tuner",
]


class _Registry(Mapping[str, type[Tuner]]):
    """``builtinTunerName`` -> class; a class given as ``"module:Class"`` is imported on first
    access (PPOTuner needs torch)."""

    def __init__(self, entries: dict[str, type[Tuner] | str]):
        self._entries = entries

    def __getitem__(self, name: str) -> type[Tuner]:
        entry = self._entries[name]
        if isinstance(entry, str):
            module, _, cls = entry.partition(":")
            entry = self._entries[name] = getattr(importlib.import_module(module), cls)
        return entry

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)


BUILTIN_TUNERS: Mapping[str, type[Tuner]] = _Registry(
    {
        "Random": RandomTuner,
        "GridSearch": GridSearchTuner,
        "Evolution": EvolutionTuner,
        "TPE": TpeTuner,
        "PPOTuner": "tuners.ppo:PPOTuner",
    }
)


def __getattr__(name: str) -> Any:
    if name == "PPOTuner":
        return BUILTIN_TUNERS["PPOTuner"]
    raise AttributeError(f"module 'tuners' has no attribute {name!r}")


def check_class_args(cls: type, class_args: dict[str, Any], where: str) -> None:
    """Raise ``TunerArgumentError`` when ``class_args`` do not fit ``cls``'s constructor."""
    try:
        inspect.signature(cls).bind(**class_args)
    except TypeError as exc:
        params = [p for p in inspect.signature(cls).parameters if p not in ("self", "kwargs")]
        raise TunerArgumentError(
            f"{where}: classArgs {sorted(class_args)} do not fit {cls.__name__}: {exc} "
            f"(accepted: {params})"
        ) from None


def create_tuner(name: str, class_args: dict[str, Any] | None = None) -> Tuner:
    """Build the built-in tuner ``name`` with ``class_args``.

    Raises:
        TunerArgumentError: unknown name (with the known ones and a "did you mean"), or
            arguments the tuner does not take or refuses.
    """
    if name not in BUILTIN_TUNERS:
        raise TunerArgumentError(
            f"tuner.builtinTunerName: unknown tuner {name!r}{did_you_mean(name, BUILTIN_TUNERS)}; "
            f"built-in tuners: {sorted(BUILTIN_TUNERS)}"
        )
    cls = BUILTIN_TUNERS[name]
    args = dict(class_args or {})
    check_class_args(cls, args, f"tuner {name!r}")
    return cls(**args)
