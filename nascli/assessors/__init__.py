"""Built-in assessors, their registry, and loading a user's assessor class.

``BUILTIN_ASSESSORS`` maps a config's ``builtinAssessorName`` to its class; ``create_assessor``
builds one and ``load_custom_assessor`` imports one from ``codeDir/classFileName``. Both raise
``AssessorArgumentError`` naming the config field, with every problem of the ``classArgs`` at
once. Everything here is torch-free (numpy only).
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from nascli._text import did_you_mean
from nascli._user_code import import_user_class
from nascli.assessor import Assessor, AssessorArgumentError
from nascli.assessors.asha import AshaAssessor
from nascli.assessors.curvefitting import CurvefittingAssessor
from nascli.assessors.medianstop import MedianstopAssessor

__all__ = [
    "BUILTIN_ASSESSORS",
    "create_assessor",
    "load_custom_assessor",
    "MedianstopAssessor",
    "CurvefittingAssessor",
    "AshaAssessor",
]

BUILTIN_ASSESSORS: dict[str, type[Assessor]] = {
    "Medianstop": MedianstopAssessor,
    "Curvefitting": CurvefittingAssessor,
    "ASHA": AshaAssessor,
}


def _build(cls: type, class_args: dict[str, Any], where: str) -> Assessor:
    """``cls(**class_args)``; every argument that does not fit, and what the constructor
    refuses, as one ``AssessorArgumentError``."""
    signature = inspect.signature(cls)
    accepted = [p for p in signature.parameters if p not in ("self", "args", "kwargs")]
    takes_any = any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values())
    problems = []
    if not takes_any:
        for key in class_args:
            if key not in accepted:
                problems.append(
                    f"classArgs.{key}: not an argument of {cls.__name__}"
                    f"{did_you_mean(key, accepted)} (accepted: {', '.join(accepted) or 'none'})"
                )
    if problems:
        raise AssessorArgumentError([f"{where}: {p}" for p in problems])
    try:
        signature.bind(**class_args)
    except TypeError as exc:
        raise AssessorArgumentError(
            f"{where}: classArgs do not fit {cls.__name__}: {exc}"
        ) from None
    try:
        return cls(**class_args)
    except AssessorArgumentError as exc:
        raise AssessorArgumentError([f"{where}: {p}" for p in exc.problems]) from None
    except Exception as exc:  # noqa: BLE001 - a user's constructor may raise anything
        raise AssessorArgumentError(
            f"{where}: {cls.__name__}(**classArgs) failed: {type(exc).__name__}: {exc}"
        ) from None


def create_assessor(name: str, class_args: dict[str, Any] | None = None) -> Assessor:
    """The built-in assessor ``name`` built with ``class_args``.

    Raises:
        AssessorArgumentError: unknown name (with a "did you mean"), or arguments it refuses.
    """
    if name not in BUILTIN_ASSESSORS:
        raise AssessorArgumentError(
            f"assessor.builtinAssessorName: unknown assessor {name!r}"
            f"{did_you_mean(name, BUILTIN_ASSESSORS)}; built-in assessors: "
            f"{', '.join(BUILTIN_ASSESSORS)}"
        )
    return _build(BUILTIN_ASSESSORS[name], dict(class_args or {}), f"assessor {name!r}")


def load_custom_assessor(
    code_dir: str | Path,
    class_file_name: str,
    class_name: str,
    class_args: dict[str, Any] | None = None,
) -> Assessor:
    """Import ``class_name`` from ``code_dir/class_file_name`` (that file only; its directory is
    on ``sys.path`` while it is imported, for its own helpers) and build it with ``class_args``.

    Raises:
        AssessorArgumentError: the file is missing or fails to import, the class is missing or is
            not a ``nascli.assessor.Assessor``, or ``class_args`` do not fit it.
    """
    cls = import_user_class(
        code_dir, class_file_name, class_name, Assessor, "nascli.assessor.Assessor", "assessor",
        AssessorArgumentError,
    )  # fmt: skip
    return _build(cls, dict(class_args or {}), f"assessor {class_name!r}")
