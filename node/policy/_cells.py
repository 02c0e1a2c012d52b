"""Spreadsheet cells and headers: encodings, column names, dates, items, consumers.

Pure functions used by :mod:`node.policy._csv`; see there for the spreadsheet form.
"""

from __future__ import annotations

import codecs
import re
import unicodedata
from datetime import date

from node.errors import InputError

from ._ids import check_credit_code, check_item_key
from ._standard import check_record_key, find_item

__all__ = [
    "FIELDS",
    "REQUIRED",
    "SEP_RE",
    "decode",
    "field_of",
    "column_letter",
    "delimiter",
    "parse_item",
    "parse_until",
    "parse_consumers",
]

FIELDS: dict[str, tuple[str, ...]] = {
    "code": (
        "信息资源代码",
        "资源代码",
        "数据资源代码",
        "目录代码",
        "resourcecode",
        "code",
        "dataset",
        "datasetid",
        "datasetcode",
        "resourceid",
    ),
    "name": ("信息资源名称", "资源名称", "数据资源名称", "resourcename", "name", "title", "datasetname"),
    "item": (
        "信息项",
        "信息项名称",
        "数据项",
        "数据项名称",
        "字段",
        "字段名",
        "item",
        "items",
        "field",
        "itemkey",
    ),
    "type": ("共享类型", "共享属性", "sharingtype", "type"),
    "condition": ("共享条件", "condition", "conditions", "sharingcondition", "sharingconditions"),
    "method": ("共享方式", "method", "sharingmethod"),
    "consumer": (
        "使用部门",
        "共享对象",
        "使用部门/共享对象",
        "共享对象/使用部门",
        "需求部门",
        "使用单位",
        "consumer",
        "consumercode",
        "consumerdepartment",
        "department",
    ),
    "purpose": ("使用用途", "用途", "共享用途", "purpose", "purposes"),
    "until": ("有效期至", "有效期", "截止日期", "有效期限", "until", "validuntil", "expires", "expiry"),
    "basis": ("依据", "共享依据", "法律依据", "政策依据", "不予共享依据", "basis", "legalbasis"),
    "masking": ("脱敏规则", "脱敏要求", "脱敏", "masking", "mask", "maskingrule"),
}
ALIASES = {alias: name for name, aliases in FIELDS.items() for alias in aliases}
REQUIRED = ("code", "type")

_OPEN_ENDED = {"长期", "长期有效", "永久", "永久有效", "无期限", "不限"}
SEP_RE = re.compile(r"[;；、,，|\n]+")
_LABELLED_ITEM_RE = re.compile(r"^(?P<label>.+?)\s*\(\s*(?P<key>[A-Za-z_][A-Za-z0-9_]*)\s*\)$")
_DATE_RE = re.compile(
    r"^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?(?:[ T]0{1,2}:00(?::00)?)?$"
)
_COMPACT_DATE_RE = re.compile(r"^(\d{4})(\d{2})(\d{2})\Z")
_CODE_RE = re.compile(r"(?<![0-9A-Z])[0-9A-Z]{18}(?![0-9A-Z])")


def decode(data: bytes, source: str) -> tuple[str, str]:
    if data.startswith(codecs.BOM_UTF8):
        try:
            return data[3:].decode("utf-8"), "utf-8-sig"
        except UnicodeDecodeError as exc:
            raise InputError(f"{source}: starts with a UTF-8 BOM but is not UTF-8 ({exc})") from exc
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16"), "utf-16"
        except UnicodeDecodeError as exc:
            raise InputError(f"{source}: starts with a UTF-16 BOM but is not UTF-16 ({exc})") from exc
    for encoding in ("utf-8", "gb18030"):
        try:
            return data.decode(encoding), encoding
        except UnicodeDecodeError:
            continue
    from charset_normalizer import from_bytes

    best = from_bytes(data).best()
    if best is None:
        raise InputError(
            f"{source}: cannot tell the text encoding; save the spreadsheet as CSV in UTF-8 or GB18030"
        )
    return str(best), best.encoding


def norm_header(text: str) -> str:
    return re.sub(r"[\s_*:：\-]", "", unicodedata.normalize("NFKC", text)).lower()


def field_of(header: str) -> str | None:
    norm = norm_header(header)
    if norm in ALIASES:
        return ALIASES[norm]
    bare = re.sub(r"\(.*?\)", "", norm)  # "共享类型(1/2/3)" -> "共享类型"
    return ALIASES.get(bare)


def column_letter(index: int) -> str:
    letters = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        letters = chr(65 + rem) + letters
    return letters


def delimiter(text: str) -> str:
    first = next((line for line in text.splitlines() if line.strip()), "")
    counts = {d: first.count(d) for d in (",", "\t", ";")}
    return max(counts, key=lambda d: counts[d]) if any(counts.values()) else ","


def parse_item(text: str) -> tuple[str, str | None]:
    """A record key and the name the spreadsheet gives it (kept when it is not the key itself)."""
    norm = unicodedata.normalize("NFKC", text).strip()
    m = _LABELLED_ITEM_RE.match(norm)
    if m:
        return check_record_key(check_item_key(m["key"])), m["label"].strip()
    key = find_item(norm)
    if key is None:
        raise ValueError(
            f"item {text!r} is not a record property of the standard (nor one of its names); "
            "write the key, e.g. 身份证号(identityNumber)"
        )
    return key, (norm if norm != key and not norm.isascii() else None)


def parse_until(text: str) -> date | None:
    """A date in the forms spreadsheets use, or ``None`` for 长期 (no expiry); ``ValueError`` otherwise."""
    norm = unicodedata.normalize("NFKC", text).strip()
    if norm in _OPEN_ENDED:
        return None
    m = _DATE_RE.match(norm) or _COMPACT_DATE_RE.match(norm)
    if not m:
        raise ValueError("not a date; write 2026-12-31 (or 2026年12月31日), or 长期 for no expiry")
    try:
        return date(int(m[1]), int(m[2]), int(m[3]))
    except ValueError as exc:
        raise ValueError(f"not a real date ({exc})") from exc


def parse_consumers(text: str) -> list[str]:
    out = []
    for piece in SEP_RE.split(unicodedata.normalize("NFKC", text).upper()):
        if not piece.strip():
            continue
        codes = _CODE_RE.findall(piece)
        if len(codes) != 1:
            raise ValueError(
                f"{piece.strip()!r} must carry one 18-character unified social credit code, "
                "e.g. 市人社局(11110000000000001R)"
            )
        out.append(check_credit_code(codes[0], "consumer"))
    return out
