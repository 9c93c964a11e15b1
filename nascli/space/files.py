"""Reading and writing the decision formats' files: search-space and architecture JSON."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from nascli.errors import ArchitectureError, SearchSpaceError
from nascli.space.specs import ChoiceSpec, SearchSpace, parse_search_space, search_space_to_json

__all__ = [
    "load_search_space",
    "dump_search_space",
    "write_json_atomic",
    "load_architecture",
]


def load_search_space(path: str | os.PathLike[str]) -> SearchSpace:
    """Read and validate a search-space JSON file."""
    return parse_search_space(_read_json(path, SearchSpaceError), str(path))


def dump_search_space(space: Mapping[str, ChoiceSpec], path: str | os.PathLike[str]) -> None:
    """Write a search space as JSON atomically (a reader never sees half a file)."""
    write_json_atomic(path, search_space_to_json(space))


def write_json_atomic(path: str | os.PathLike[str], doc: Any) -> None:
    """Write ``doc`` as indented, key-sorted JSON to ``path`` via a rename in the same folder."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(doc, f, indent=2, sort_keys=True)
            f.write("\n")
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_architecture(path: str | os.PathLike[str]) -> Any:
    """Read an architecture JSON file (validation happens against a search space later)."""
    return _read_json(path, ArchitectureError)


def _read_json(path: str | os.PathLike[str], error: type[SearchSpaceError]) -> Any:
    try:
        text = Path(path).read_bytes().decode("utf-8")
    except OSError as exc:
        raise error([f"cannot read the file: {exc.strerror or exc}"], str(path)) from None
    except UnicodeDecodeError as exc:
        raise error(
            [f"not UTF-8 text (byte {exc.start} is {exc.object[exc.start:exc.start + 1]!r}); "
             "JSON files must be UTF-8"], str(path),
        ) from None  # fmt: skip
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise error(
            [f"not valid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"], str(path)
        ) from None
    except RecursionError:
        raise error(["nested too deeply to be a search space"], str(path)) from None
    except ValueError as exc:  # e.g. an integer with more digits than Python converts
        raise error([f"not usable JSON: {exc}"], str(path)) from None


