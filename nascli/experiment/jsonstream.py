"""Writing JSON arrays item by item, byte for byte as ``json.dumps(items, indent=2)`` would.

Why not ``json.dump``: it needs the whole list in memory, and with ``indent`` CPython encodes in
pure Python through generators (its C encoder only does compact output). This recursive encoder
joins containers of plain scalars in one comprehension and hands strings to the C escaper: about
0.65x ``json.dumps(indent=2)``'s CPU time on trial rows.

``stored_indented`` re-encodes JSON *text* (a column as stored) the same way; a container of
scalars only (its text has one bracket) goes through the C encoder in one call, its item
separator breaking the lines at the right indentation. ``trialjson.py`` builds its rows from
these pieces.
"""

from __future__ import annotations

import json.encoder
from collections.abc import Callable, Iterable
from typing import Any, TextIO

__all__ = [
    "write_json_array",
    "dumps_indented",
    "stored_indented",
    "dumped_indented",
    "scalar_text",
    "SCALAR_TEXT",
]

_escape = json.encoder.encode_basestring_ascii  # the C escaper json.dumps uses (ensure_ascii)
_float = float.__repr__
_int = int.__repr__
_INFINITY = float("inf")


def _float_text(value: float) -> str:
    # json.dumps' spelling (allow_nan=True, its default) of the numbers without a JSON form.
    if value != value:
        return "NaN"
    if value == _INFINITY:
        return "Infinity"
    if value == -_INFINITY:
        return "-Infinity"
    return _float(value)


def _key(key: Any) -> str:
    if isinstance(key, str):
        return _escape(key)
    if key is True:
        return '"true"'
    if key is False:
        return '"false"'
    if key is None:
        return '"null"'
    if isinstance(key, float):
        return '"' + _float_text(key) + '"'
    if isinstance(key, int):
        return '"' + _int(key) + '"'
    raise TypeError(f"keys must be str, int, float, bool or None, not {type(key).__name__}")


_SCALAR: dict[type, Any] = {
    str: _escape,
    int: _int,
    float: _float_text,
    bool: lambda v: "true" if v else "false",
    type(None): lambda v: "null",
}


#: ``json.dumps`` of a value by its exact type, for the scalar types (``scalar_text``).
SCALAR_TEXT = _SCALAR


def _encode(value: Any, pad: str, out: list[str]) -> None:
    """Append ``value``'s indented JSON; ``pad`` is the indentation of the line it is on."""
    scalar = _SCALAR.get(type(value))
    if scalar is not None:
        out.append(scalar(value))
        return
    if isinstance(value, dict):
        if not value:
            out.append("{}")
            return
        inner = pad + "  "
        try:  # the common case first: string keys, plain scalar values, in one join
            out.append(
                "{\n" + inner
                + (",\n" + inner).join([_escape(k) + ": " + _SCALAR[type(v)](v)
                                          for k, v in value.items()])
                + "\n" + pad + "}"
            )  # fmt: skip
            return
        except (KeyError, TypeError):
            pass
        sep = "{\n" + inner
        for key, item in value.items():
            out.append(sep)
            out.append(_escape(key) if type(key) is str else _key(key))
            out.append(": ")
            _encode(item, inner, out)
            sep = ",\n" + inner
        out.append("\n" + pad + "}")
    elif isinstance(value, (list, tuple)):
        if not value:
            out.append("[]")
            return
        inner = pad + "  "
        try:
            out.append(
                "[\n" + inner
                + (",\n" + inner).join([_SCALAR[type(v)](v) for v in value])
                + "\n" + pad + "]"
            )  # fmt: skip
            return
        except KeyError:
            pass
        sep = "[\n" + inner
        for item in value:
            out.append(sep)
            _encode(item, inner, out)
            sep = ",\n" + inner
        out.append("\n" + pad + "]")
    elif isinstance(value, str):  # subclasses of the scalar types, as json.dumps takes them
        out.append(_escape(value))
    elif isinstance(value, int):
        out.append(_int(value))
    elif isinstance(value, float):
        out.append(_float_text(value))
    else:
        raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def scalar_text(value: str | int | float | bool | None) -> str:
    """``json.dumps(value)`` of a string, number, bool or None (a subclass: as its base)."""
    scalar = _SCALAR.get(type(value))
    return scalar(value) if scalar is not None else dumps_indented(value)


_decode = json.JSONDecoder().raw_decode
_c_encoder = getattr(json.encoder, "c_make_encoder", None)
_flat_encoders: dict[str, Callable[[Any], str]] = {}


def _flat_encoder(inner: str) -> Callable[[Any], str]:
    """Compact JSON of a container of scalars with ``",\n" + inner`` between its items."""
    encode = _flat_encoders.get(inner)
    if encode is None:
        separator = ",\n" + inner
        if _c_encoder is not None:  # CPython's C encoder, made once (json.dumps makes one per call)
            c_encode = _c_encoder(None, None, _escape, None, ": ", separator, False, False, True)
            encode = lambda value: "".join(c_encode(value, 0))  # noqa: E731
        else:
            encode = json.JSONEncoder(separators=(separator, ": "), check_circular=False).encode
        _flat_encoders[inner] = encode
    return encode


def stored_indented(text: str | None, pad: str = "") -> str:
    """``dumps_indented(json.loads(text), pad)`` of a JSON text (``"null"`` for None).

    Raises:
        json.JSONDecodeError: ``text`` is not JSON.
    """
    if text is None:
        return "null"
    try:
        value, end = _decode(text)
    except json.JSONDecodeError:  # leading white space, or not JSON (json.loads says which)
        value, end = json.loads(text), len(text)
    if end != len(text):
        value = json.loads(text)  # trailing white space is JSON; anything else raises
    kind = type(value)
    if kind is list:
        if not value:
            return "[]"
        flat = "{" not in text and text.count("[") == 1  # a bracket in a string: not this path
    elif kind is dict:
        if not value:
            return "{}"
        flat = "[" not in text and text.count("{") == 1
    else:
        return _SCALAR[kind](value)
    if not flat:
        return dumps_indented(value, pad)
    inner = pad + "  "
    body = _flat_encoder(inner)(value)
    return body[0] + "\n" + inner + body[1:-1] + "\n" + pad + body[-1]


def dumped_indented(text: str | None, pad: str = "") -> str:
    """``stored_indented`` of a text ``json.dumps`` wrote (default settings): an array of
    numbers, booleans and nulls only is re-broken as it is, each item's text being what
    ``dumps_indented`` writes for it (``json.dumps`` writes a number as its repr, the same
    both ways); anything else as ``stored_indented``."""
    if (
        text is not None
        and text[:1] == "["
        and '"' not in text
        and "{" not in text
        and text.count("[") == 1
        and text != "[]"
    ):
        inner = pad + "  "
        return "[\n" + inner + text[1:-1].replace(", ", ",").replace(",", ",\n" + inner) + (
            "\n" + pad + "]"
        )
    return stored_indented(text, pad)


def dumps_indented(value: Any, pad: str = "") -> str:
    """``json.dumps(value, indent=2)``, each line after the first preceded by ``pad``."""
    out: list[str] = []
    _encode(value, pad, out)
    return "".join(out)


def write_json_array(items: Iterable[Any], out: TextIO) -> int:
    """Write ``items`` as ``json.dumps(list(items), indent=2)`` would, one item at a time.
    Returns how many were written."""
    count = 0
    for item in items:
        out.write(",\n  " if count else "[\n  ")
        out.write(dumps_indented(item, "  "))
        count += 1
    out.write("\n]" if count else "[]")
    return count
