"""The streaming JSON writer prints what ``json.dumps(items, indent=2)`` prints, byte for byte,
while holding one item at a time."""

from __future__ import annotations

import enum
import io
import json

import pytest

from nascli.experiment.jsonstream import (
    dumped_indented,
    dumps_indented,
    stored_indented,
    write_json_array,
)


class Level(int, enum.Enum):
    HIGH = 3


class Name(str):
    pass


VALUES = [
    {},
    [],
    {"a": [], "b": {}},
    {"é\n\"quoted\"\\": "ü\u2028\x00", 7: True, 2.5: None, None: False, False: 1.0},
    [float("nan"), float("inf"), -float("inf"), 1e300, -0.0, 10**30, 0.1 + 0.2],
    [[[]], {"x": {"y": [1, {"z": "w"}]}}],
    Name("subclass"),
    Level.HIGH,
    (1, 2),
    [True, False, None, 0, 1],
    {"_value": ["stem", "cell1"], "_idx": [0, 2]},
]


@pytest.mark.parametrize("value", VALUES, ids=range(len(VALUES)))
def test_same_text_as_json_dumps(value) -> None:
    assert dumps_indented(value) == json.dumps(value, indent=2)


@pytest.mark.parametrize("items", [[], [1], VALUES])
def test_array_is_json_dumps_of_the_list(items) -> None:
    out = io.StringIO()
    assert write_json_array(iter(items), out) == len(items)
    assert out.getvalue() == json.dumps(list(items), indent=2)


def test_each_item_is_written_before_the_next_is_read() -> None:
    out = io.StringIO()

    def items():
        for i in range(3):
            yield {"i": i}
            assert f'"i": {i}' in out.getvalue()  # written before item i + 1 is asked for

    write_json_array(items(), out)


def test_what_json_cannot_encode_is_refused() -> None:
    with pytest.raises(TypeError, match="not JSON serializable"):
        dumps_indented({"a": object()})
    with pytest.raises(TypeError, match="keys must be"):
        dumps_indented({(1, 2): 1})


# What a store's JSON columns hold (json.dumps' text), and texts json.loads also takes.
STORED = [
    v for v in VALUES if not isinstance(v, (Name, Level, tuple)) and not (
        isinstance(v, dict) and any(not isinstance(k, str) for k in v)
    )
] + [0.5, "text", None, True, {"default": 0.25, "loss": [1, 2]}, {"a": "}{", "b": "]["},
     ["a, b", 1], [{"default": 1}, 2], {"k, \"j\"": 1.5, "x": 2}]  # fmt: skip


@pytest.mark.parametrize("value", STORED, ids=range(len(STORED)))
def test_stored_text_reads_back_as_json_dumps_indents_it(value) -> None:
    text = json.dumps(value)
    for pad in ("", "    "):
        assert stored_indented(text, pad) == dumps_indented(value, pad)
        assert dumped_indented(text, pad) == dumps_indented(value, pad)
    # The intermediate values as the store joins them: json.dumps' texts, joined by ","
    if isinstance(value, list):
        joined = "[" + ",".join(json.dumps(v) for v in value) + "]"
        assert dumped_indented(joined, "    ") == dumps_indented(value, "    ")


def test_stored_text_that_json_loads_takes_or_refuses() -> None:
    assert stored_indented(None) == "null"
    assert stored_indented('  [1, 2] \n') == dumps_indented([1, 2])
    for bad in ("[1, 2] x", "{", ""):
        with pytest.raises(json.JSONDecodeError):
            stored_indented(bad)
