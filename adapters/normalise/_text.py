"""Text normalisers: trimming and full-width -> half-width."""

from __future__ import annotations

import re

__all__ = ["FULLWIDTH_RE", "halfwidth", "trim", "collapse_spaces"]

# U+FF01..U+FF5E are the full-width forms of U+0021..U+007E; U+3000 is the
# ideographic (full-width) space.
_HALFWIDTH_TABLE: dict[int, int] = {cp: cp - 0xFEE0 for cp in range(0xFF01, 0xFF5F)}
_HALFWIDTH_TABLE[0x3000] = 0x20
FULLWIDTH_RE = re.compile("[\uff01-\uff5e\u3000]")
_SPACES_RE = re.compile(r"\s+")
# str.strip() already removes U+3000 and NBSP; zero-width characters are not
# whitespace to Python but are common garbage in copied spreadsheet cells.
_ZERO_WIDTH = "\u200b\u200c\u200d\u2060\ufeff"


def halfwidth(value: str) -> str:
    """Full-width ASCII forms (ＡＢＣ１２３，) and the ideographic space to half-width."""
    if value.isascii() or FULLWIDTH_RE.search(value) is None:
        return value
    return value.translate(_HALFWIDTH_TABLE)


def trim(value: str) -> str:
    """Strip leading and trailing whitespace (including U+3000, NBSP and zero-width marks)."""
    text = value.strip()
    if text and (text[0] in _ZERO_WIDTH or text[-1] in _ZERO_WIDTH):
        text = text.strip(_ZERO_WIDTH + " \t\r\n\u3000\u00a0")
    return text


def collapse_spaces(value: str) -> str:
    """Trim and collapse every run of whitespace to one space."""
    return _SPACES_RE.sub(" ", trim(value))


# For the mapping engine's block path: a block of values in which this pattern occurs
# nowhere is left unchanged by the normaliser (values are already stripped by then),
# so the normaliser can be skipped for the whole block.
halfwidth.unchanged_unless = FULLWIDTH_RE  # type: ignore[attr-defined]
trim.unchanged_unless = re.compile("[" + _ZERO_WIDTH + "]")  # type: ignore[attr-defined]
