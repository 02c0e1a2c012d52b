"""Turning untrusted bytes into a record, safely.

Every boundary (CLI files, gRPC, Kafka) decodes records here: strict UTF-8,
standard JSON only (no NaN/Infinity), bounded nesting, bounded size, no lone
surrogates. Anything else is an :class:`InputError` with a clear message,
never a crash.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

from node.errors import InputError

__all__ = ["decode_json", "decode_record", "decode_flat", "MAX_RECORD_BYTES", "MAX_DEPTH"]

MAX_RECORD_BYTES = 16 * 1024 * 1024
MAX_DEPTH = 64
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def _reject_constant(name: str) -> Any:
    raise InputError(f"{name} is not valid JSON (use a string or a finite number)")


def _depth_ok(text: str) -> bool:
    # a cheap upper bound on nesting, counted outside strings
    depth = 0
    in_str = False
    esc = False
    for ch in text:
        if in_str:
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                in_str = False
        elif ch == '"':
            in_str = True
        elif ch in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                return False
        elif ch in "]}":
            depth -= 1
    return True


def _check_strings(obj: Any) -> None:
    stack = [obj]
    while stack:
        o = stack.pop()
        if isinstance(o, str):
            try:
                o.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise InputError("invalid Unicode: a lone surrogate escape (\\ud800-\\udfff) in a string") from exc
        elif isinstance(o, dict):
            stack.extend(o.keys())
            stack.extend(o.values())
        elif isinstance(o, list):
            stack.extend(o)


_DECODER = json.JSONDecoder(parse_constant=_reject_constant)
_loads = orjson.loads
# orjson turns an integer beyond 64 bits into a float; such input takes the exact stdlib path
# (found as a run of 19 digits: every digit mapped to "0", then one substring search, ~5x a regex)
_DIGITS_TO_ZERO = bytes.maketrans(b"123456789", b"000000000")
_LONG_RUN = b"0" * 19


def _depth_ok_bytes(data: bytes) -> bool:
    return _depth_ok(data.decode("utf-8", "replace"))


def decode_json(data: bytes | str) -> Any:
    """Decode one JSON document from untrusted input.

    This is on every boundary's hot path. Bytes go to orjson (a strict RFC 8259
    parser: invalid UTF-8, lone surrogates, NaN/Infinity and overflowing numbers
    are errors); the depth scan runs only when there can be that many brackets.
    Input with an integer of 19 or more digits takes the stdlib parser, which keeps
    big integers exact (orjson would turn them into floats).
    """
    if isinstance(data, str):
        if len(data) > MAX_RECORD_BYTES:
            raise InputError(f"record is {len(data)} characters; the limit is {MAX_RECORD_BYTES}")
        try:
            data = data.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise InputError("invalid Unicode: a lone surrogate in the text") from exc
    elif len(data) > MAX_RECORD_BYTES:
        raise InputError(f"record is {len(data)} bytes; the limit is {MAX_RECORD_BYTES}")
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    if len(data) > MAX_DEPTH and data.count(b"[") + data.count(b"{") > MAX_DEPTH and not _depth_ok_bytes(data):
        raise InputError(f"JSON nested deeper than {MAX_DEPTH} levels")
    if _LONG_RUN not in data.translate(_DIGITS_TO_ZERO):
        try:
            return _loads(data)
        except orjson.JSONDecodeError:
            pass  # the stdlib parser names the problem (and is the reference for what is accepted)
    return _decode_stdlib(data)


def _decode_stdlib(data: bytes) -> Any:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"not valid UTF-8 at byte {exc.start}") from exc
    try:
        obj = _DECODER.decode(text)
    except InputError:
        raise
    except RecursionError as exc:
        raise InputError(f"JSON nested deeper than {MAX_DEPTH} levels") from exc
    except ValueError as exc:  # JSONDecodeError and int-too-large
        raise InputError(f"not JSON: {exc}") from exc
    if "\\u" in text and _SURROGATE_ESCAPE.search(text):
        _check_strings(obj)
    if _has_infinity(obj):
        raise InputError("not JSON: a number too large for a double (use a string)")
    return obj


def _has_infinity(obj: Any) -> bool:
    stack = [obj]
    while stack:
        o = stack.pop()
        if isinstance(o, float):
            if o in (_INF, -_INF):
                return True
        elif isinstance(o, dict):
            stack.extend(o.values())
        elif isinstance(o, list):
            stack.extend(o)
    return False


_INF = float("inf")


def decode_record(data: bytes | str) -> dict[str, Any]:
    """Decode one record (a JSON object)."""
    obj = decode_json(data)
    if not isinstance(obj, dict):
        raise InputError(f"a record must be a JSON object, not {type(obj).__name__ if obj is not None else 'null'}")
    return obj


def decode_flat(payload: bytes) -> dict[str, Any] | None:
    """What :func:`node.validation.decode_record` returns for ``payload``, for the common record:
    a flat JSON object whose values are strings, integers, booleans or null. None for
    anything else (the caller then runs decode_record itself, and gets its result or error).

    Why the result is the same: decode_record parses with orjson too, except that input
    with a run of 19 or more digits takes the stdlib parser, because orjson turns an
    integer beyond 64 bits into a float; here there is no float, so no integer was turned
    into one, and every other value parses the same in both. A flat object has no nesting
    for the depth limit to refuse; orjson refuses what decode_record would (invalid UTF-8,
    a lone surrogate, NaN, a byte order mark: the caller then gets decode_record's message).
    """
    if len(payload) > MAX_RECORD_BYTES:
        return None
    try:
        obj = _loads(payload)
    except orjson.JSONDecodeError:
        return None
    if obj.__class__ is not dict:
        return None
    for v in obj.values():
        cls = v.__class__
        if cls is not str and cls is not int and cls is not bool and v is not None:
            return None
    return obj
