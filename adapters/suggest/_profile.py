"""What a column's sample values look like: identity numbers, credit codes, dates, divisions, codes."""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field

from adapters.normalise import (
    DivisionIndex,
    NormaliseError,
    halfwidth,
    is_valid_credit_code,
    is_valid_identity_number,
    normalise_amount,
    normalise_credit_code,
    normalise_identity_number,
    parse_date,
)
from adapters.suggest._vocab import CodeList

__all__ = ["ColumnProfile", "CodeMatch", "profile_column", "match_code_list", "date_form"]

_PARTS = re.compile(r"[()（）/、,，;；\s]+")
_WAN_HINT = re.compile(r"万元|万|(?<![a-z])wan(?![a-z])|10k|ten_?thousand", re.IGNORECASE)


@dataclass(frozen=True)
class CodeMatch:
    scheme: str
    score: float  # 0..1, label matches count fully, notation-only matches less
    table: dict[str, str]  # local value -> notation (every matched distinct value)
    unmatched: tuple[str, ...]
    all_notations: bool  # the values already are the standard's codes


@dataclass
class ColumnProfile:
    name: str
    values: list[str]  # non-empty sample values, stripped
    empty: int = 0
    identity: float = 0.0
    identity_old: int = 0  # 15-digit numbers seen
    credit: float = 0.0
    date: float = 0.0
    date_forms: Counter[str] = field(default_factory=Counter)
    division: float = 0.0
    amount: float = 0.0
    wan: bool = False  # amounts look like 万元

    @property
    def distinct(self) -> list[str]:
        return list(dict.fromkeys(self.values))


def date_form(value: str) -> str:
    """A shape of a date string, for comments: 2020-01-02 -> 9999-99-99; 2020年1月2日 -> 9999年9月9日."""
    return re.sub(r"[0-9]", "9", halfwidth(value).strip())


def _fraction(values: list[str], ok: int) -> float:
    return ok / len(values) if values else 0.0


def _identity_ok(value: str) -> tuple[bool, bool]:
    try:
        normalised = normalise_identity_number(value)
    except NormaliseError:
        return False, False
    return is_valid_identity_number(normalised), len(halfwidth(value).strip()) == 15


def profile_column(name: str, raw: list[str | None], divisions: DivisionIndex | None) -> ColumnProfile:
    values = [v.strip() for v in raw if v is not None and v.strip()]
    prof = ColumnProfile(name=name, values=values, empty=len(raw) - len(values))
    if not values:
        return prof
    ident = credit = dates = divs = amounts = 0
    for v in values:
        ok, old = _identity_ok(v)
        if ok:
            ident += 1
            prof.identity_old += old
            continue
        try:
            if is_valid_credit_code(normalise_credit_code(v)):
                credit += 1
                continue
        except NormaliseError:
            pass
        try:
            parse_date(v)
        except NormaliseError:
            pass
        else:
            dates += 1
            prof.date_forms[date_form(v)] += 1
            continue
        if divisions is not None:
            try:
                divisions.resolve(v)
            except NormaliseError:
                pass
            else:
                divs += 1
                continue
        try:
            normalise_amount(v, rounding="half_up")
        except NormaliseError:
            pass
        else:
            amounts += 1
            if v.endswith(("万", "万元")):
                prof.wan = True
    prof.identity = _fraction(values, ident)
    prof.credit = _fraction(values, credit)
    prof.date = _fraction(values, dates)
    prof.division = _fraction(values, divs)
    prof.amount = _fraction(values, amounts)
    prof.wan = prof.wan or bool(_WAN_HINT.search(name))
    return prof


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text).strip().casefold()


def match_code_list(values: list[str], code_list: CodeList) -> CodeMatch:
    """Match sample values to a code list's notations and labels (then unique label prefixes: 汉 -> 汉族)."""
    by_notation = {n: n for n in code_list.concepts}
    by_label: dict[str, set[str]] = {}
    for notation, labels in code_list.concepts.items():
        for label in labels:
            by_label.setdefault(_fold(label), set()).add(notation)
    counts = Counter(values)
    table: dict[str, str] = {}
    unmatched: list[str] = []
    weight = 0.0
    for value, n in counts.items():
        folded = _fold(value)
        found: str | None = None
        strength = 0.0
        labelled = by_label.get(folded)
        if labelled is None:  # "在营（开业）": every part names the same concept
            parts = [p for p in _PARTS.split(folded) if p]
            if len(parts) > 1:
                codes = [by_label.get(p) for p in parts]
                if all(c is not None and len(c) == 1 for c in codes) and len({next(iter(c)) for c in codes if c}) == 1:
                    labelled = codes[0]
        if labelled is not None and len(labelled) == 1:
            found, strength = next(iter(labelled)), 1.0
        elif value in by_notation:
            found, strength = value, 0.6
        elif len(folded) >= 1 and not folded.isascii():
            prefixed = {c for label, codes in by_label.items() if label.startswith(folded) for c in codes}
            if len(prefixed) == 1:
                found, strength = prefixed.pop(), 0.8
        if found is None:
            unmatched.append(value)
            continue
        table[value] = found
        weight += strength * n
    total = sum(counts.values())
    return CodeMatch(
        scheme=code_list.scheme,
        score=weight / total if total else 0.0,
        table=table,
        unmatched=tuple(unmatched),
        all_notations=not unmatched and all(k == v for k, v in table.items()),
    )
