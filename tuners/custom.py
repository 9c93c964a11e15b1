"""Loading a user's tuner class from a config's ``tuner: {codeDir, classFileName, className,
classArgs}``: every problem is reported before an experiment starts."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

from nascli._files import path_inside
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

    inside = path_inside(code_dir, class_file_name)
    if inside is None:
        raise TunerArgumentError(
            f"tuner.classFileName: {class_file_name!r} must be a file inside tuner.codeDir "
            f"{str(code_dir)!r} (a relative path, without '..' leading out of it)"
        )
    path = inside
    if not path.is_file():
        raise TunerArgumentError(f"tuner.classFileName: {str(path)!r} does not exist")
    module_name = f"nascli_custom_tuner_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise TunerArgumentError(f"tuner.classFileName: cannot import {str(path)!r}")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(Path(code_dir).resolve()))
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # noqa: BLE001 - any import failure of user code is reported
        raise TunerArgumentError(
            f"tuner.classFileName: importing {str(path)!r} failed: {type(exc).__name__}: {exc}"
        ) from None
    finally:
        sys.path.remove(str(Path(code_dir).resolve()))
    cls = getattr(module, class_name, None)
    if cls is None:
        found = sorted(n for n, v in vars(module).items() if isinstance(v, type))
        raise TunerArgumentError(
            f"tuner.className: {str(path)!r} has no class {class_name!r} (classes: {found})"
        )
    if not (isinstance(cls, type) and issubclass(cls, Tuner)):
        raise TunerArgumentError(
            f"tuner.className: {class_name!r} in {str(path)!r} is not a subclass of tuners.Tuner"
        )
    args = dict(class_args or {})
    check_class_args(cls, args, f"tuner {class_name!r}")
    return cls(**args)
