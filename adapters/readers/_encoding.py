"""Encoding detection for local text files: UTF-8 (with or without BOM), GB18030/GBK, UTF-16."""

from __future__ import annotations

import codecs

from node.errors import ConfigError

__all__ = ["detect_encoding", "resolve_encoding", "SAMPLE_BYTES"]

SAMPLE_BYTES = 1 << 16
# GBK and GB2312 are subsets of GB18030: decoding with the superset never loses
# a character a GBK file can hold, and reads the few files that are really GB18030.
_SUPERSETS = {"gbk": "gb18030", "gb2312": "gb18030", "cp936": "gb18030", "euc_cn": "gb18030"}


def resolve_encoding(name: str, head: bytes, *, key: str = "source.encoding") -> str:
    """The codec to use for an encoding named in a mapping (or ``auto``), given the file's first bytes."""
    if name.lower() in ("auto", ""):
        return detect_encoding(head)
    try:
        canonical = codecs.lookup(name).name
    except LookupError as exc:
        raise ConfigError(f"unknown encoding {name!r} (try gb18030, utf-8 or auto)", key=key) from exc
    canonical = _SUPERSETS.get(canonical, canonical)
    if canonical == "utf-8" and head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    return canonical


def _decodes(head: bytes, encoding: str) -> bool:
    decoder = codecs.getincrementaldecoder(encoding)("strict")
    try:
        decoder.decode(head, final=False)  # a sample may end inside a character
    except UnicodeDecodeError:
        return False
    return True


def detect_encoding(head: bytes) -> str:
    """Best codec for a sample: BOMs first, then strict UTF-8, then GB18030, then charset-normalizer."""
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    if _decodes(head, "utf-8"):
        return "utf-8"
    if _decodes(head, "gb18030"):
        return "gb18030"
    from charset_normalizer import from_bytes

    best = from_bytes(head).best()
    if best is None:
        return "gb18030"
    return _SUPERSETS.get(codecs.lookup(best.encoding).name, codecs.lookup(best.encoding).name)
