"""Encoding records as JSON on the hot path (orjson, with the stdlib's strictness).

Every record a node stores or sends is encoded here. orjson is 5-10x the stdlib
encoder but differs from ``json.dumps(..., allow_nan=False)`` in two ways that
matter for records, both handled so the output is what the stdlib would write:

- it writes NaN and Infinity as ``null``: a non-finite float is a :class:`ValueError`
  here, as in the stdlib (silently turning a value into null would lose data);
- it refuses integers beyond 64 bits and non-string keys: such input takes the
  stdlib encoder.

For strings and integers the bytes are the same as the stdlib's with
``separators=(",", ":")`` and ``ensure_ascii=False``; floats take their shortest
round-trip form, with one spelling difference for small exponents (``1e-7``
where the stdlib writes ``1e-07``): the same value either way.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import orjson

__all__ = ["canonical_bytes", "compact_bytes"]

_SORTED = orjson.OPT_SORT_KEYS
_STD_SORTED = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode
_STD_COMPACT = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode
_dumps = orjson.dumps
_isfinite = math.isfinite


def _check_finite(value: Any) -> None:
    """Raise ValueError on a NaN or infinite float anywhere in ``value`` (dicts and lists)."""
    stack = [value]
    while stack:
        v = stack.pop()
        cls = v.__class__
        if cls is str or cls is int or cls is bool or v is None:
            continue
        if cls is float:
            if not _isfinite(v):
                raise ValueError(f"Out of range float values are not JSON compliant: {v!r}")
        elif isinstance(v, Mapping):
            stack.extend(v.values())
        elif isinstance(v, list | tuple):
            stack.extend(v)


def canonical_bytes(data: Any) -> bytes:
    """Canonical JSON: sorted keys, no spaces, UTF-8 kept; ValueError on NaN/Infinity, TypeError on
    what JSON cannot hold."""
    _check_finite(data)
    try:
        return _dumps(data, option=_SORTED)
    except TypeError:
        return _STD_SORTED(data).encode("utf-8")


def compact_bytes(data: Any) -> bytes:
    """Compact JSON in the object's own key order; the same strictness as :func:`canonical_bytes`."""
    _check_finite(data)
    try:
        return _dumps(data)
    except TypeError:
        return _STD_COMPACT(data).encode("utf-8")
