"""providers/_json.py: orjson's text only for values it writes as the stdlib does; None for the rest."""

from __future__ import annotations

import dataclasses
import enum
import json
import math
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from providers._json import dumps, plain

_STDLIB = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
# Text as a request or a log line carries it: any code point but a lone surrogate (no UTF-8 form).
_TEXT = st.text(st.characters(exclude_categories=["Cs"]))
_INT64 = st.integers(min_value=-(2**63), max_value=2**64 - 1)


def _json(scalars: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_TEXT, inner, max_size=4),
        max_leaves=20,
    )


_NO_FLOATS = _json(st.none() | st.booleans() | _INT64 | _TEXT)
_FINITE = st.floats(allow_nan=False, allow_infinity=False)
_WITH_FLOATS = _json(st.none() | st.booleans() | _INT64 | _TEXT | _FINITE)


@given(st.dictionaries(_TEXT, _NO_FLOATS, max_size=6))
def test_without_floats_the_text_is_the_stdlibs_byte_for_byte(value: dict[str, Any]) -> None:
    assert dumps(value) == _STDLIB.encode(value).encode()


@given(st.dictionaries(_TEXT, _WITH_FLOATS, max_size=6))
def test_with_floats_the_values_are_the_stdlibs(value: dict[str, Any]) -> None:
    encoded = dumps(value)
    assert encoded is not None
    assert json.loads(encoded) == json.loads(_STDLIB.encode(value))


def test_floats_are_written_shorter_but_read_back_the_same() -> None:
    # The one difference in text: the exponent without its padding zero, small numbers in full.
    assert dumps({"cost_usd": 9.6e-06, "rate": 1e-05}) == b'{"cost_usd":9.6e-6,"rate":0.00001}'
    assert _STDLIB.encode({"cost_usd": 9.6e-06, "rate": 1e-05}) == '{"cost_usd":9.6e-06,"rate":1e-05}'


def test_non_ascii_text_is_written_as_utf8_as_the_stdlib_writes_it_without_ensure_ascii() -> None:
    value = {"content": "é中😀 \u2028 \x00\x1f\x7f \"'\\ </script>"}
    assert dumps(value) == _STDLIB.encode(value).encode()


class Colour(enum.Enum):
    RED = 1


class Level(enum.IntEnum):
    HIGH = 3


class Name(str):
    pass


@dataclasses.dataclass
class Point:
    x: int


def _cycle() -> list[Any]:
    looped: list[Any] = [1]
    looped.append(looped)
    return looped


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(math.nan, id="nan"),
        pytest.param(math.inf, id="inf"),
        pytest.param(-math.inf, id="-inf"),
        pytest.param([{"deep": [1.0, math.nan]}], id="nan-nested"),
        pytest.param(2**64, id="int-beyond-64-bits"),
        pytest.param(-(2**63) - 1, id="negative-int-beyond-64-bits"),
        pytest.param({1: "a"}, id="int-key"),
        pytest.param(Colour.RED, id="enum"),
        pytest.param(Level.HIGH, id="int-enum"),
        pytest.param(Name("x"), id="str-subclass"),
        pytest.param(uuid.UUID(int=7), id="uuid"),
        pytest.param(datetime(2026, 1, 2, tzinfo=UTC), id="datetime"),
        pytest.param(Point(1), id="dataclass"),
        pytest.param(b"bytes", id="bytes"),
        pytest.param({1, 2}, id="set"),
        pytest.param("half a pair: \ud83d", id="lone-surrogate"),
        pytest.param(_cycle(), id="cycle"),
    ],
)
def test_a_value_orjson_would_write_differently_or_refuse_is_left_to_the_stdlib(value: object) -> None:
    assert dumps({"field": value}) is None
    assert dumps({"outer": {"field": [value]}}) is None


def test_plain_looks_at_a_dict_subclasss_values_at_the_top() -> None:
    class Event(dict[str, Any]):
        pass

    assert plain(Event(cost=1.5)) is True
    assert plain(Event(cost=math.nan)) is False
    assert dumps(Event(cost=1.5)) == b'{"cost":1.5}'
    assert dumps({"nested": Event(cost=1.5)}) is None  # below the top, exact types only


def test_import_router_does_not_import_orjson() -> None:
    # Loaded with the adapters and the log formatter, not by the import (its import is ~0.5 ms).
    import subprocess
    import sys

    code = "import sys, router; print('orjson' in sys.modules, 'providers._json' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
