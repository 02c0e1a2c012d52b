"""Administrative division names (and codes) to GB/T 2260 six-digit codes.

The list itself is not hard-coded: it comes from the standard (the imported
division code list, ``node.standard.divisions.load_divisions``) or, for tools
and tests, from CSV files shaped like the National Bureau of Statistics
exports (``code,name,cityCode,provinceCode``; 2-, 4- and 6-digit codes).
"""

from __future__ import annotations

import csv
import logging
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from itertools import repeat
from operator import itemgetter
from pathlib import Path
from typing import Any, Protocol

from adapters.normalise._errors import NormaliseError
from adapters.normalise._text import FULLWIDTH_RE, halfwidth
from node.errors import ConfigError, InputError

__all__ = [
    "DivisionLike",
    "DivisionEntry",
    "DivisionIndex",
    "load_division_csvs",
    "load_standard_divisions",
]

log = logging.getLogger(__name__)

# Prefecture-level rows that are placeholders, not names ("北京市市辖区" is not said).
_PLACEHOLDERS = frozenset({"市辖区", "县", "省直辖县级行政区划", "自治区直辖县级行政区划"})
_MAX_CANDIDATES_SHOWN = 5
_SPACE_RE = re.compile("[\\s\u3000\u00a0]")


class DivisionLike(Protocol):
    """What the normaliser needs of one entry: its own name and its parent's code."""

    @property
    def name(self) -> str: ...

    @property
    def parent(self) -> str | None: ...


@dataclass(frozen=True, slots=True)
class DivisionEntry:
    name: str
    parent: str | None


def _pad(code: str) -> str:
    code = code.strip()
    return code.ljust(6, "0") if len(code) in (2, 4) else code


def load_division_csvs(paths: Iterable[str | Path]) -> dict[str, DivisionEntry]:
    """Read division CSVs (``code,name[,cityCode][,provinceCode]`` or ``code,name,parent``)."""
    entries: dict[str, DivisionEntry] = {}
    for path in paths:
        p = Path(path)
        try:
            with p.open(encoding="utf-8-sig", newline="") as fh:
                reader = csv.DictReader(fh)
                fields = set(reader.fieldnames or ())
                if not {"code", "name"} <= fields:
                    raise InputError(f"{p}: a division CSV needs the columns code,name (found {sorted(fields)})")
                for line in reader:
                    code = _pad(line["code"] or "")
                    if len(code) != 6 or not code.isdigit():
                        raise InputError(f"{p}: line {reader.line_num}: bad division code {line['code']!r}")
                    parent_raw = line.get("parent") or line.get("cityCode") or line.get("provinceCode") or ""
                    parent = _pad(parent_raw) if parent_raw.strip() else None
                    entries[code] = DivisionEntry(name=(line["name"] or "").strip(), parent=parent)
        except OSError as exc:
            raise InputError(f"cannot read division list {p}: {exc.strerror or exc}") from exc
        except UnicodeDecodeError as exc:
            raise InputError(f"division list {p} is not UTF-8: {exc}") from exc
    return entries


def load_standard_divisions(standard_dir: str | Path | None = None) -> Mapping[str, Any]:
    """The division list imported into the standard (``shulian standard import-divisions``)."""
    try:
        from node.standard.divisions import load_divisions
    except ImportError as exc:
        raise ConfigError(
            "the standard's division list is not available (node.standard.divisions); "
            "pass --divisions FILE.csv to name a division list"
        ) from exc
    found: Mapping[str, Any] = load_divisions(standard_dir=standard_dir)
    if not found:
        raise ConfigError("the standard has no division list: run `shulian standard import-divisions FILE.csv`")
    return found


def _entry_fields(entry: Any) -> tuple[str, str | None]:
    name = getattr(entry, "name", None)
    if name is None:
        name, parent = entry[0], entry[1]
    else:
        parent = getattr(entry, "parent", None)
        if parent is None:
            parent = getattr(entry, "parent_code", None)
    return str(name), (_pad(str(parent)) if parent else None)


def _province_short(name: str) -> str | None:
    for suffix in ("省", "市"):
        if name.endswith(suffix) and len(name) > len(suffix) + 1:
            return name[: -len(suffix)]
    if name.endswith("自治区"):
        return name[:3] if name.startswith("内蒙古") else name[:2]
    return None


class DivisionIndex:
    """Names and codes -> six-digit codes, with longest-prefix matching over addresses."""

    def __init__(self, divisions: Mapping[str, Any]) -> None:
        self._entries: dict[str, tuple[str, str | None]] = {
            _pad(str(code)): _entry_fields(entry) for code, entry in divisions.items()
        }
        self._chains: dict[str, list[str]] = {code: self._chain(code) for code in self._entries}
        by_name: dict[str, set[str]] = {}
        for code, chain in self._chains.items():
            for variant in self._variants(code, chain):
                by_name.setdefault(variant, set()).add(code)
        self._by_name: dict[str, str | tuple[str, ...]] = {}
        for name, codes in by_name.items():
            self._by_name[name] = self._pick(codes)
        # a character trie over the names: the longest name an address starts with, in one pass
        self._trie: dict[str, Any] = {}
        for name, hit in self._by_name.items():
            node = self._trie
            for ch in name:
                node = node.setdefault(ch, {})
            node[""] = hit
        self._levels = {code: len(chain) for code, chain in self._chains.items()}

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, code: object) -> bool:
        return code in self._entries

    def _chain(self, code: str) -> list[str]:
        chain: list[str] = []
        seen: set[str] = set()
        current: str | None = code
        while current is not None and current in self._entries and current not in seen:
            seen.add(current)
            chain.append(current)
            current = self._entries[current][1]
        chain.reverse()
        return chain

    def level(self, code: str) -> int:
        """1 province, 2 prefecture, 3 county (depth in the list)."""
        return self._levels[code]

    def full_name(self, code: str) -> str:
        return "".join(n for n in (self._entries[c][0] for c in self._chains[code]) if n not in _PLACEHOLDERS)

    def _variants(self, code: str, chain: list[str]) -> set[str]:
        names = [self._entries[c][0] for c in chain]
        if names[-1] in _PLACEHOLDERS:
            return set()
        province = names[0] if len(names) > 1 else None
        middle = [n for n in names[1:-1] if n not in _PLACEHOLDERS]
        own = names[-1]
        heads: list[str] = [""]
        if province is not None:
            heads.append(province)
            short = _province_short(province)
            if short:
                heads.append(short)
        variants: set[str] = set()
        for head in heads:
            variants.add(head + own)
            if middle:
                variants.add(head + "".join(middle) + own)
        if province is None:
            short = _province_short(own)
            if short:
                variants.add(short)
        return {v for v in variants if len(v) >= 2}

    def _pick(self, codes: set[str]) -> str | tuple[str, ...]:
        if len(codes) == 1:
            return next(iter(codes))
        # A name shared by a division and its own descendants names the ancestor.
        for code in codes:
            if all(code in self._chains[other] for other in codes):
                return code
        return tuple(sorted(codes))

    def resolver(self, level: str = "any") -> Callable[[str], str]:
        """A resolve function for the mapping engine's hot loop.

        Every name in the index ends with one of a few characters (省 市 区 县 旗 州 盟, the last
        characters of short names ...), so the longest name an address starts with ends at
        one of those characters: one C-level regex match finds the last such position, one
        dict lookup tests that prefix, and so on backwards (usually once or twice). Anything
        unusual (a code, a space inside the name, an ambiguous name, the wrong level, no
        match) goes through :meth:`resolve` for the exact answer or message.
        """
        by_name = self._by_name.get
        levels = self._levels
        resolve = self.resolve
        county = level == "county"
        ends = "".join(sorted({name[-1] for name in self._by_name}))
        last_end = re.compile("[^\n]*[" + re.escape(ends) + "]").match if ends else None
        longest = max((len(n) for n in self._by_name), default=0)

        has_space = _SPACE_RE.search

        def fast(value: str) -> str:
            if last_end is not None and has_space(value) is None:
                end = min(len(value), longest)
                while end > 0:
                    match = last_end(value, 0, end)
                    if match is None:
                        break
                    stop = match.end()
                    hit: Any = by_name(value[:stop])
                    if hit is not None:
                        if hit.__class__ is str and (not county or levels[hit] >= 3):
                            return hit
                        break
                    end = stop - 1
            return resolve(value, level=level)

        if last_end is None:
            return fast
        matched_text: Callable[[Any], str] = itemgetter(0)
        # the names a block settles at once: unambiguous, and of the level asked for
        settles = {name: hit for name, hit in self._by_name.items()
                   if isinstance(hit, str) and (not county or levels[hit] >= 3)}.get  # fmt: skip

        def block(values: list[str]) -> list[str | None]:
            """The same for many values, every step a C-level map; None where :meth:`resolve`
            must decide (no candidate, a longer name needing a second try, ambiguity, level)."""
            joined = "\x00".join(values)
            # no whitespace anywhere (str.split and the regex's \s agree on what whitespace is)
            if len(joined.split()) != 1 or joined[0].isspace() or joined[-1].isspace():
                return [None] * len(values)
            matches = list(map(last_end, values, repeat(0), repeat(longest)))
            if None in matches:
                return [None] * len(values)
            return list(map(settles, map(matched_text, matches)))

        fast.block = block  # type: ignore[attr-defined]
        return fast

    def resolve(self, value: str, *, level: str = "any") -> str:
        """A six-digit code for a division name, an address starting with one, or a code."""
        text = value.strip()
        if not text.isascii() and FULLWIDTH_RE.search(text) is not None:
            text = halfwidth(text)
        if " " in text or "\t" in text or "\u00a0" in text:
            text = text.replace(" ", "").replace("\t", "").replace("\u00a0", "")
        if text.isdigit():
            code = self._resolve_code(text, value)
        else:
            code = self._resolve_name(text, value)
        if level == "county" and self._levels[code] < 3:
            raise NormaliseError(
                "division",
                f"{value!r} names {self.full_name(code)} ({code}), not a county-level division",
                f"“{value}”只能确定到{self.full_name(code)}（{code}），未到县级",
            )
        return code

    def _resolve_code(self, text: str, value: str) -> str:
        candidates = [text] if len(text) == 6 else [_pad(text)] if len(text) in (2, 4) else []
        if len(text) in (9, 12):
            candidates.append(text[:6])
        for code in candidates:
            if code in self._entries:
                return code
        raise NormaliseError(
            "division",
            f"division code {value!r} is not in the division list",
            f"行政区划代码“{value}”不在区划代码表中",
        )

    def _resolve_name(self, text: str, value: str) -> str:
        node = self._trie
        hit: str | tuple[str, ...] | None = None
        length = 0
        for i, ch in enumerate(text, 1):
            node = node.get(ch)  # type: ignore[assignment]
            if node is None:
                break
            found = node.get("")
            if found is not None:
                hit, length = found, i
        if hit is not None:
            if isinstance(hit, str):
                return hit
            shown = ", ".join(f"{c} {self.full_name(c)}" for c in hit[:_MAX_CANDIDATES_SHOWN])
            more = f" and {len(hit) - _MAX_CANDIDATES_SHOWN} more" if len(hit) > _MAX_CANDIDATES_SHOWN else ""
            raise NormaliseError(
                "division",
                f"ambiguous division name {text[:length]!r} in {value!r}: {shown}{more}; write the province and city too",
                f"区划名称“{text[:length]}”有歧义（{shown}），请写明省、市",
            )
        raise NormaliseError(
            "division",
            f"no division in the list matches {value!r}",
            f"区划代码表中没有与“{value}”匹配的行政区划",
        )
