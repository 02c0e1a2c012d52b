"""Propose a mapping from a source's header and sample values.

Each column is scored against each property of the target type: by its name
(the property's labels and synonyms in Chinese, English and pinyin
abbreviations, from the standard's vocabulary) and by its values (identity
numbers that pass the GB 11643 check, credit codes that pass GB 32100, dates,
division names, values of a code list). Columns are then placed greedily, best
score first, each property at most once.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adapters.mapping import RECORD_TYPES
from adapters.normalise import DivisionIndex
from adapters.readers import BadRow, ReaderOptions, open_source, redact_dsn
from adapters.suggest._profile import CodeMatch, ColumnProfile, match_code_list, profile_column
from adapters.suggest._vocab import PropertyInfo, Vocabulary
from node.errors import InputError

__all__ = ["ColumnSuggestion", "Suggestion", "suggest_mapping", "THRESHOLD"]

THRESHOLD = 0.5
_PAREN = re.compile(r"[（(\[【][^）)\]】]*[）)\]】]")
_SEPARATORS = re.compile(r"[\s_\-./\\:：,，、]+")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_TOKENS = re.compile(r"[a-z]+|[0-9]+|[^\x00-\x7f]+")
# Properties whose values are recognisable by check characters (the record JSON form is fixed).
_CHECKED_KINDS = {"identityNumber": "identity", "creditCode": "credit", "issuingDepartmentCode": "credit",
                  "holder": "holder"}  # fmt: skip
# How much value evidence alone says (0..1) for each kind.
_STRENGTH = {"identity": 0.95, "credit": 0.95, "holder": 0.9, "division": 0.8, "code": 0.85, "date": 0.7,
             "amount": 0.3}  # fmt: skip
# How far values that do not look right lower a name match (score *= floor + (1 - floor) * fraction).
_CONTRADICTION_FLOOR = {"identity": 0.5, "credit": 0.5, "holder": 0.5, "date": 0.7}
# The natural key of each record type, for the id.
_KEYS: dict[str, tuple[str, tuple[str, ...], str]] = {
    "Person": ("hash", ("identityNumber",), "person-"),
    "LegalEntity": ("template", ("creditCode",), "le-"),
    "SocialInsuranceEnrollment": ("hash", ("identityNumber", "insuranceType", "startDate"), "sie-"),
    "ElectronicLicense": ("hash", ("issuingDepartmentCode", "licenseNumber"), "lic-"),
}


@dataclass
class ColumnSuggestion:
    column: str
    property: str | None = None
    confidence: float = 0.0
    why: str = ""
    normalise: list[Any] = field(default_factory=list)
    crosswalk: CodeMatch | None = None
    fallback: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)
    samples: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "column": self.column,
            "property": self.property,
            "confidence": round(self.confidence, 2),
            "why": self.why,
            "normalise": self.normalise,
            "crosswalk": self.crosswalk.table if self.crosswalk else None,
            "notes": self.notes,
        }


@dataclass
class Suggestion:
    input: str
    record_type: str
    source: dict[str, Any]
    rows_sampled: int
    columns: list[ColumnSuggestion]
    derived: list[ColumnSuggestion]  # properties made from another column (birthDate from the id)
    unplaced_properties: list[PropertyInfo]
    id: dict[str, Any]
    id_note: str

    @property
    def placed(self) -> dict[str, str]:
        return {c.column: c.property for c in self.columns if c.property is not None}

    def to_dict(self) -> dict[str, Any]:
        return {
            "input": self.input,
            "type": self.record_type,
            "rows_sampled": self.rows_sampled,
            "columns": [c.to_dict() for c in self.columns],
            "derived": [c.to_dict() for c in self.derived],
            "unplaced_properties": [p.name for p in self.unplaced_properties],
            "id": self.id,
        }


def _norm(text: str) -> str:
    text = unicodedata.normalize("NFKC", text)
    text = _PAREN.sub("", text)
    return _SEPARATORS.sub("", text).casefold()


def _tokens(text: str) -> set[str]:
    text = _CAMEL.sub(" ", unicodedata.normalize("NFKC", _PAREN.sub(" ", text)))
    return set(_TOKENS.findall(text.lower()))


def _similarity(column: str, label: str) -> float:
    nc, nl = _norm(column), _norm(label)
    if not nc or not nl:
        return 0.0
    if nc == nl:
        return 1.0
    best = 0.0
    if not nc.isascii() and not nl.isascii():
        short, long_ = sorted((nc, nl), key=len)
        if len(short) >= 2 and short in long_:
            best = 0.6 + 0.35 * len(short) / len(long_)
    tc, tl = _tokens(column), _tokens(label)
    if tc and tl and (len(tc) > 1 or len(tl) > 1):
        jaccard = len(tc & tl) / len(tc | tl)
        if jaccard >= 0.5:
            best = max(best, 0.45 + 0.5 * jaccard)
    ratio = difflib.SequenceMatcher(None, nc, nl).ratio()
    if ratio >= 0.8 and min(len(nc), len(nl)) >= 4:
        best = max(best, 0.75 * ratio)
    return best


def _label_score(column: str, prop: PropertyInfo) -> tuple[float, str]:
    best, label = 0.0, ""
    for text in (prop.name, *(t for t, _ in prop.labels)):
        s = _similarity(column, text)
        if s > best:
            best, label = s, text
    return 0.95 * best, label


def _kind(prop: PropertyInfo) -> str | None:
    if prop.name in _CHECKED_KINDS:
        return _CHECKED_KINDS[prop.name]
    if prop.code_list == "division":
        return "division"
    if prop.code_list:
        return "code"
    if prop.range == "date":
        return "date"
    if prop.range == "decimal":
        return "amount"
    return None


class _Scorer:
    def __init__(self, props: list[PropertyInfo], vocab: Vocabulary) -> None:
        self.props = props
        self.vocab = vocab
        self.kind_count: dict[str, int] = {}
        for p in props:
            k = _kind(p)
            if k is not None and k != "code":
                self.kind_count[k] = self.kind_count.get(k, 0) + 1

    def evidence(self, prof: ColumnProfile, prop: PropertyInfo) -> tuple[float | None, str, CodeMatch | None]:
        kind = _kind(prop)
        if kind is None or not prof.values:
            return None, "", None
        if kind == "code":
            code_list = self.vocab.code_lists.get(prop.code_list or "")
            if code_list is None:
                return None, "", None
            match = match_code_list(prof.values, code_list)
            return match.score, f"{match.score:.0%} of values are in code list {prop.code_list}", match
        if kind == "holder":
            frac = max(prof.identity, prof.credit)
            return frac, f"{frac:.0%} of values are identity numbers or credit codes", None
        frac = {"identity": prof.identity, "credit": prof.credit, "date": prof.date, "division": prof.division,
                "amount": prof.amount}[kind]  # fmt: skip
        what = {"identity": "identity numbers (GB 11643 check)", "credit": "credit codes (GB 32100 check)",
                "date": "dates", "division": "division names or codes", "amount": "amounts"}[kind]  # fmt: skip
        return frac, f"{frac:.0%} of values are {what}", None

    def score(self, prof: ColumnProfile, prop: PropertyInfo) -> tuple[float, str, CodeMatch | None]:
        label_score, label = self._label(prof.name, prop)
        frac, why_values, match = self.evidence(prof, prop)
        why_label = f'name matches "{label}"' if label_score >= 0.3 else ""
        if frac is None:
            return label_score, why_label, None
        kind = _kind(prop) or ""
        strength = _STRENGTH.get(kind, 0.5) / max(1, self.kind_count.get(kind, 1))
        if frac >= 0.8:
            score = 1 - (1 - label_score) * (1 - strength * frac)
        else:
            # values that should carry a check character or be dates but do not are evidence
            # against; local codes, names and amounts only need a crosswalk or a unit
            floor = _CONTRADICTION_FLOOR.get(kind, 1.0)
            score = label_score * (floor + (1 - floor) * frac)
        why = "; ".join(w for w in (why_label, why_values) if w)
        return score, why, match

    def _label(self, column: str, prop: PropertyInfo) -> tuple[float, str]:
        return _label_score(column, prop)


def _read_sample(input_name: str, reader: ReaderOptions, sample: int) -> tuple[list[str], list[list[str | None]], dict[str, Any]]:
    source = open_source(input_name, reader)
    try:
        columns: list[str] = list(source.columns) if source.columns is not None else []
        rows: list[Any] = []
        for _, row in source.rows():
            if isinstance(row, BadRow):
                continue
            rows.append(row)
            if len(rows) >= sample:
                break
        details = dict(source.details)
    finally:
        source.close()
    if source.columns is None:  # keyed rows: the union of keys, in first-seen order
        seen: dict[str, None] = {}
        for row in rows:
            seen.update(dict.fromkeys(row))
        columns = list(seen)
        table = [[_text(row.get(c)) for c in columns] for row in rows]
    else:
        table = [list(row) for row in rows]
    return columns, table, details


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, dict | list):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else format(value, "f") if hasattr(value, "as_tuple") else str(value)


def suggest_mapping(
    input_name: str,
    record_type: str,
    *,
    vocabulary: Vocabulary,
    divisions: DivisionIndex | None = None,
    reader: ReaderOptions | None = None,
    sample: int = 500,
) -> Suggestion:
    """Read the header and up to ``sample`` rows of ``input_name`` and propose a mapping to ``record_type``."""
    if record_type not in RECORD_TYPES:
        raise InputError(f"unknown record type {record_type!r} (one of {', '.join(RECORD_TYPES)})")
    reader = reader or ReaderOptions()
    columns, table, details = _read_sample(input_name, reader, sample)
    if not columns:
        raise InputError(f"{input_name}: no columns found to map")
    props = vocabulary.for_type(record_type)
    if not props:
        raise InputError(f"the vocabulary in {vocabulary.source} has no properties for {record_type}")
    scorer = _Scorer(props, vocabulary)
    profiles = [profile_column(c, [r[i] if i < len(r) else None for r in table], divisions) for i, c in enumerate(columns)]
    candidates: list[tuple[float, int, str, str, CodeMatch | None]] = []
    for i, prof in enumerate(profiles):
        for prop in props:
            score, why, match = scorer.score(prof, prop)
            if score > 0:
                candidates.append((score, i, prop.name, why, match))
    candidates.sort(key=lambda c: (-c[0], c[1], c[2]))
    suggestions = [ColumnSuggestion(column=c, samples=profiles[i].distinct[:5]) for i, c in enumerate(columns)]
    used: set[str] = set()
    for score, i, prop_name, why, match in candidates:
        if score < THRESHOLD:
            break
        s = suggestions[i]
        if s.property is not None or prop_name in used:
            continue
        s.property, s.confidence, s.why = prop_name, score, why
        _configure(s, profiles[i], vocabulary.properties[prop_name], match)
        used.add(prop_name)
    placed_by = {s.property: s.column for s in suggestions if s.property}
    for i, s in enumerate(suggestions):
        if s.property is None:
            near = [c for c in candidates if c[1] == i]
            if not near:
                s.notes.append("not placed: no property of the type matches its name or its values")
                continue
            score, _, prop_name, why, _ = near[0]
            if score >= THRESHOLD:
                s.notes.append(f"not placed: its best match {prop_name} ({score:.2f}: {why}) went to column "
                               f"{placed_by.get(prop_name)!r}, which matches better")  # fmt: skip
            else:
                s.notes.append(f"not placed: nearest property {prop_name} scored {score:.2f} "
                               f"({why or 'weak name match'}), below {THRESHOLD}")  # fmt: skip
    by_prop = {s.property: s for s in suggestions if s.property is not None}
    derived = _derived(record_type, by_prop)
    for d in derived:
        used.add(d.property or "")
    unplaced = [p for p in props if p.name not in used]
    id_spec, id_note = _id(record_type, set(used), Path(input_name).stem)
    shown = redact_dsn(input_name) if details.get("format") == "sql" else input_name
    return Suggestion(shown, record_type, details, len(table), suggestions, derived, unplaced, id_spec, id_note)


def _configure(s: ColumnSuggestion, prof: ColumnProfile, prop: PropertyInfo, match: CodeMatch | None) -> None:
    kind = _kind(prop)
    if kind == "identity" or (kind == "holder" and prof.identity >= prof.credit):
        s.normalise = ["identity_number"]
        if prof.identity_old:
            s.notes.append(f"{prof.identity_old} old 15-digit number(s) in the sample are upgraded to 18 characters")
    elif kind == "credit" or kind == "holder":
        s.normalise = ["credit_code"]
    elif kind == "date":
        s.normalise = ["date"]
        if prof.date_forms:
            forms = ", ".join(f for f, _ in prof.date_forms.most_common(6))
            s.notes.append(f"date forms seen: {forms}")
    elif kind == "division":
        s.normalise = ["division"]
    elif kind == "amount":
        unit = "万元" if prof.wan else "元"
        s.normalise = [{"name": "amount", "unit": unit}]
        if prof.wan:
            s.notes.append("amounts read as 万元 (from the column name or the values); check the unit")
    elif kind == "code" and match is not None:
        if not match.all_notations:
            s.crosswalk = match
        if match.unmatched:
            s.notes.append(f"{len(match.unmatched)} value(s) not in code list {match.scheme}: "
                           f"{', '.join(match.unmatched[:8])}; add them to the crosswalk or they are rejected")  # fmt: skip
    else:
        s.normalise = ["halfwidth"]


def _derived(record_type: str, by_prop: dict[str, ColumnSuggestion]) -> list[ColumnSuggestion]:
    out: list[ColumnSuggestion] = []
    ident = by_prop.get("identityNumber")
    if record_type != "Person" or ident is None:
        return out
    birth = by_prop.get("birthDate")
    if birth is not None:
        birth.fallback = {"column": ident.column, "normalise": ["identity_number", "identity_birth_date"]}
        birth.notes.append(f"an empty {birth.column} falls back to the birth date inside {ident.column}")
    else:
        out.append(ColumnSuggestion(column=ident.column, property="birthDate", confidence=1.0,
                                    why="derived from the identity number",
                                    normalise=["identity_number", "identity_birth_date"]))  # fmt: skip
    if by_prop.get("sex") is None:
        out.append(ColumnSuggestion(column=ident.column, property="sex", confidence=1.0,
                                    why="derived from the identity number (odd sequence: male)",
                                    normalise=["identity_number", "identity_sex"]))  # fmt: skip
    return out


def _id(record_type: str, placed: set[str], stem: str) -> tuple[dict[str, Any], str]:
    how, props, prefix = _KEYS[record_type]
    if all(p in placed for p in props):
        if how == "template":
            return {"template": prefix + "".join(f"{{{p}}}" for p in props)}, f"the id is the record's {', '.join(props)}"
        return {"hash": list(props), "prefix": prefix}, f"the id is a hash of {', '.join(props)}"
    safe = re.sub(r"[^A-Za-z0-9._~-]+", "-", stem).strip("-.") or "row"
    if not safe[0].isalnum():
        safe = "row-" + safe
    return {"template": f"{safe}-{{row}}"}, (
        f"EDIT THIS: {', '.join(props)} not all found, so the id is the row number, which is not stable")
