"""JSON text by orjson where it writes the values the stdlib's encoder writes; None where it might not.

orjson encodes a request body or a log line several times faster than the stdlib's C encoder, but not
always to the same values: it writes NaN and infinities as ``null``, encodes enums, UUIDs, dataclasses
and datetimes natively where the stdlib raises (or a ``default=`` runs), and has its own depth limit.
So it is used only for plain JSON (``plain``); everything else, and every value it refuses (ints beyond
64 bits, keys that are not strings, lone surrogates), is left to the caller's stdlib encoder, whose
behaviour is then exactly what it was. The text differs from the stdlib's only in how some floats are
written (``9.6e-6`` for ``9.6e-06``, ``0.00001`` for ``1e-05``: the same values).

Loaded by the adapters and the log formatter when they are built, never by ``import router``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

import orjson

_dumps: Final = orjson.dumps
# The exact types orjson and the stdlib write alike (a float only when finite: see ``plain``).
_SCALARS: Final = frozenset({str, int, bool, type(None)})


def plain(value: dict[Any, Any] | list[Any] | tuple[Any, ...]) -> bool:
    """Whether ``value`` holds only strings, ints, bools, None, finite floats, and dicts, lists and
    tuples of them, by exact type below the top: subclasses (enums among them) and every other type
    say no. Keys are left to orjson, which refuses any that is not a string.

    Runs in Python on every value, so it costs a fraction of what orjson saves; a self-referring
    value ends in RecursionError, which ``dumps`` turns into "not plain"."""
    return _plain(value.values() if isinstance(value, dict) else value)


def _plain(items: Iterable[Any]) -> bool:
    for item in items:
        kind = type(item)
        if kind in _SCALARS:
            continue
        if kind is float:
            if item - item:  # NaN or an infinity (inf - inf is NaN); 0.0 for any finite float
                return False
        elif kind is dict:
            if not _plain(item.values()):
                return False
        elif kind is list or kind is tuple:
            if not _plain(item):
                return False
        else:
            return False
    return True


def dumps(value: dict[str, Any]) -> bytes | None:
    """``value`` as compact UTF-8 JSON (non-ASCII as is), or None when the stdlib must encode it."""
    try:
        if plain(value):
            return _dumps(value)
    except (TypeError, RecursionError):
        # orjson.JSONEncodeError is a TypeError: an int beyond 64 bits, a key that is not a string,
        # a lone surrogate, nesting deeper than orjson's limit. A cycle never reaches orjson.
        pass
    return None
