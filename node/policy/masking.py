"""Masking rules (脱敏规则) for information items, and their compiled per-value functions.

Rules, written ``item=rule`` on the command line and in the spreadsheet's masking column:

``redact``
    full redaction: the value becomes ``"***"`` (fixed, so its length is not revealed).
``keep:F:L``
    keep the first ``F`` and the last ``L`` characters, every other character becomes
    ``*`` (``identityNumber=keep:6:4`` gives ``110105********002X``).
``keep-first:N`` / ``keep-last:N``
    shorthands for ``keep:N:0`` and ``keep:0:N``.
``hash``
    keyed hash: HMAC-SHA256 of the value, hex. The key is the node's masking key
    (configuration) derived per consumer, so one consumer can link its own records
    across deliveries but two consumers cannot join their copies on the hash, and
    nobody can reverse it by hashing every possible identity number.

Chinese forms are accepted too: ``保留前6位后4位``, ``保留前1位``, ``保留后4位``,
``全部遮盖``/``完全脱敏``, ``哈希``.

Edge cases, decided once:

- ``None`` stays ``None`` (there is nothing to hide, and a missing value stays visibly missing).
- Non-string values (numbers, booleans) are masked on their text (``str(value)``)
  and come out as strings.
- A value too short for a ``keep`` rule to hide at least one character is masked
  entirely (``"*" * len``): a rule never reveals a whole value.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

__all__ = ["MaskMethod", "MaskRule", "Masker", "REDACTED", "consumer_hash_key", "parse_mask_assignments"]

#: What a fully redacted value becomes.
REDACTED = "***"

Masker = Callable[[Any], Any]


class MaskMethod(StrEnum):
    REDACT = "redact"
    KEEP = "keep"
    HASH = "hash"

    @property
    def label_zh(self) -> str:
        return {"redact": "完全遮盖", "keep": "部分遮盖", "hash": "哈希"}[self.value]


_KEEP_RE = re.compile(r"^keep:(\d{1,3}):(\d{1,3})\Z")
_KEEP_FIRST_RE = re.compile(r"^keep-first:(\d{1,3})\Z")
_KEEP_LAST_RE = re.compile(r"^keep-last:(\d{1,3})\Z")
_ZH_BOTH_RE = re.compile(r"^保留前(\d{1,3})位?[，,、]?后(\d{1,3})位?\Z")
_ZH_FIRST_RE = re.compile(r"^保留前(\d{1,3})位?\Z")
_ZH_LAST_RE = re.compile(r"^保留后(\d{1,3})位?\Z")
_ZH_REDACT = {"全部遮盖", "完全遮盖", "完全脱敏", "全部脱敏", "屏蔽", "遮盖"}
_ZH_HASH = {"哈希", "散列", "哈希脱敏"}


@dataclass(frozen=True, slots=True)
class MaskRule:
    """One masking rule. Build with :meth:`parse` or the constructors below."""

    method: MaskMethod
    keep_first: int = 0
    keep_last: int = 0

    def __post_init__(self) -> None:
        if self.keep_first < 0 or self.keep_last < 0:
            raise ValueError("keep counts cannot be negative")
        if self.method is MaskMethod.KEEP:
            if self.keep_first + self.keep_last == 0:
                raise ValueError("keep:0:0 keeps nothing; write 'redact' for full redaction")
        elif self.keep_first or self.keep_last:
            raise ValueError(f"{self.method.value} takes no keep counts")

    @classmethod
    def redact(cls) -> MaskRule:
        return cls(MaskMethod.REDACT)

    @classmethod
    def keep(cls, first: int, last: int) -> MaskRule:
        return cls(MaskMethod.KEEP, first, last)

    @classmethod
    def hash(cls) -> MaskRule:
        return cls(MaskMethod.HASH)

    @classmethod
    def parse(cls, spec: str) -> MaskRule:
        """Parse ``redact``, ``hash``, ``keep:F:L``, ``keep-first:N``, ``keep-last:N`` (or Chinese forms)."""
        text = unicodedata.normalize("NFKC", spec).strip()
        low = text.lower().replace(" ", "")
        if low == "redact" or text in _ZH_REDACT:
            return cls.redact()
        if low == "hash" or text in _ZH_HASH:
            return cls.hash()
        compact = text.replace(" ", "")
        # (pattern, text it reads, which groups are first/last: "fl", "f" or "l")
        for regex, subject, groups in (
            (_KEEP_RE, low, "fl"),
            (_KEEP_FIRST_RE, low, "f"),
            (_KEEP_LAST_RE, low, "l"),
            (_ZH_BOTH_RE, compact, "fl"),
            (_ZH_FIRST_RE, compact, "f"),
            (_ZH_LAST_RE, compact, "l"),
        ):
            match = regex.match(subject)
            if match:
                if groups == "fl":
                    return cls.keep(int(match[1]), int(match[2]))
                if groups == "f":
                    return cls.keep(int(match[1]), 0)
                return cls.keep(0, int(match[1]))
        raise ValueError(
            f"masking rule {spec!r} not understood; write redact, hash, keep:F:L, keep-first:N or keep-last:N"
        )

    @property
    def spec(self) -> str:
        """The canonical text form (what :meth:`parse` reads back)."""
        if self.method is not MaskMethod.KEEP:
            return self.method.value
        if self.keep_last == 0:
            return f"keep-first:{self.keep_first}"
        if self.keep_first == 0:
            return f"keep-last:{self.keep_last}"
        return f"keep:{self.keep_first}:{self.keep_last}"

    def __str__(self) -> str:
        return self.spec

    @property
    def strictness(self) -> tuple[int, int]:
        """Higher hides more: used to pick one rule when two grants mask the same item."""
        if self.method is MaskMethod.REDACT:
            return (3, 0)
        if self.method is MaskMethod.HASH:
            return (2, 0)
        return (1, -(self.keep_first + self.keep_last))

    def compile(self, key: bytes | None = None) -> Masker:
        """The per-value function. ``key`` (per consumer, see :func:`consumer_hash_key`) is needed for hash."""
        if self.method is MaskMethod.REDACT:
            return _redact
        if self.method is MaskMethod.HASH:
            if not key:
                raise ValueError("hash masking needs the node's masking key")
            return _hasher(key)
        return _keeper(self.keep_first, self.keep_last)


def _text(value: Any) -> str:
    if type(value) is str:
        return value
    if isinstance(value, dict | list | tuple):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)


def _redact(value: Any) -> Any:
    return None if value is None else REDACTED


_STARS = tuple("*" * i for i in range(128))


def _keeper(first: int, last: int) -> Masker:
    visible = first + last
    stars = _STARS

    def keep(value: Any) -> Any:
        if value is None:
            return None
        s = value if type(value) is str else _text(value)
        n = len(s)
        if n <= visible:
            return stars[n] if n < 128 else "*" * n
        hidden = n - visible
        middle = stars[hidden] if hidden < 128 else "*" * hidden
        return s[:first] + middle + s[n - last :]

    return keep


def _hasher(key: bytes) -> Masker:
    new = hmac.new
    sha = hashlib.sha256

    def hash_value(value: Any) -> Any:
        if value is None:
            return None
        s = value if type(value) is str else _text(value)
        return new(key, s.encode("utf-8"), sha).hexdigest()

    return hash_value


def consumer_hash_key(node_key: bytes, consumer_code: str) -> bytes:
    """The hash-masking key for one consumer, derived from the node's masking key."""
    return hmac.new(node_key, b"shulian/mask/" + consumer_code.encode("ascii"), hashlib.sha256).digest()


def parse_mask_assignments(specs: list[str] | tuple[str, ...]) -> dict[str, MaskRule]:
    """Parse ``["identityNumber=keep:6:4", "name=keep-first:1"]`` into a mapping.

    Raises ``ValueError`` naming the bad assignment.
    """
    out: dict[str, MaskRule] = {}
    for raw in specs:
        for part in re.split(r"[;；]", raw):
            part = part.strip()
            if not part:
                continue
            key, sep, rule = part.partition("=")
            if not sep or not key.strip():
                raise ValueError(f"masking {part!r} must be written item=rule, e.g. identityNumber=keep:6:4")
            key = unicodedata.normalize("NFKC", key).strip()
            if key in out:
                raise ValueError(f"item {key!r} is given two masking rules")
            out[key] = MaskRule.parse(rule)
    return out
