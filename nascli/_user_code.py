"""Importing a user's class (a custom tuner or assessor) from the one file a config names."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from nascli._files import path_inside
from nascli._text import did_you_mean


def import_user_class(
    code_dir: str | Path,
    class_file_name: str,
    class_name: str,
    base: type,
    base_name: str,
    section: str,
    error: type[Exception],
) -> type:
    """``class_name`` from ``code_dir/class_file_name`` (that file only; its directory is on
    ``sys.path`` while it is imported, for its own helpers), checked to subclass ``base``
    (``base_name``: how users import it).

    Raises:
        error: naming ``{section}.classFileName`` or ``{section}.className``: the file lies
            outside ``code_dir`` (absolute, or leading out with ``..`` or a link), is
            missing or fails to import (whatever it raises, even ``SystemExit``), the class is
            missing (with a "did you mean") or is not a subclass of ``base``.
    """
    path = path_inside(code_dir, class_file_name)
    if path is None:
        raise error(
            f"{section}.classFileName: {class_file_name!r} must be a file inside {section}.codeDir "
            f"{str(code_dir)!r} (a relative path, without '..' leading out of it)"
        )
    if not path.is_file():
        raise error(f"{section}.classFileName: {str(path)!r} does not exist")
    module_name = f"nascli_custom_{section}_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise error(f"{section}.classFileName: cannot import {str(path)!r}")
    module = importlib.util.module_from_spec(spec)
    directory = str(Path(code_dir).resolve())
    sys.path.insert(0, directory)
    try:
        spec.loader.exec_module(module)
    except (Exception, SystemExit) as exc:  # any failure of user code is reported
        raise error(
            f"{section}.classFileName: importing {str(path)!r} failed: {type(exc).__name__}: {exc}"
        ) from None
    finally:
        sys.path.remove(directory)
    cls = getattr(module, class_name, None)
    if cls is None:
        found = sorted(n for n, v in vars(module).items() if isinstance(v, type))
        raise error(
            f"{section}.className: {str(path)!r} has no class {class_name!r}"
            f"{did_you_mean(class_name, found)} (classes: {found})"
        )
    if not (isinstance(cls, type) and issubclass(cls, base)):
        raise error(
            f"{section}.className: {class_name!r} in {str(path)!r} is not a subclass of {base_name}"
        )
    return cls
