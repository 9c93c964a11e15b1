"""Loading a user's tuner class from a config's ``tuner: {codeDir, classFileName, className,
classArgs}``: every problem is reported before an experiment starts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nascli._user_code import import_user_class
from tuners.base import Tuner, TunerArgumentError

__all__ = ["load_custom_tuner"]


def load_custom_tuner(
    code_dir: str | Path,
    class_file_name: str,
    class_name: str,
    class_args: dict[str, Any] | None = None,
) -> Tuner:
    """Import ``class_name`` from ``code_dir/class_file_name`` and build it with ``class_args``.

    Raises:
        TunerArgumentError: the file is missing or fails to import, the class is missing or is
            not a ``tuners.Tuner``, or ``class_args`` do not fit its constructor.
    """
    from tuners import check_class_args

    cls = import_user_class(
        code_dir, class_file_name, class_name, Tuner, "tuners.Tuner", "tuner", TunerArgumentError
    )
    args = dict(class_args or {})
    check_class_args(cls, args, f"tuner {class_name!r}")
    return cls(**args)
