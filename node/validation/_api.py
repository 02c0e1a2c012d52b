"""The validator API shared by both engines."""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from node.errors import InputError, ShulianError
from node.standard.model import Rule, Standard, load_standard
from node.validation._report import RecordReport, Violation, valid_report

__all__ = ["Validator", "get_validator", "record_type_of"]

log = logging.getLogger(__name__)

ENGINES = ("fast", "shacl")
_UNSET: Any = object()


def _declares(record: dict[str, Any], record_type: str | None) -> bool:
    """The record declares no type ("type", else "@type") or ``record_type``: the compiled check of
    ``record_type`` decides it (anything else goes to :func:`record_type_of`)."""
    declared = record.get("type", _UNSET)
    if declared is _UNSET:
        declared = record.get("@type")
    return declared is None or declared == record_type


class _DropIllTypedNoise(logging.Filter):
    """rdflib logs a traceback for every ill-typed literal; for a validator those are expected."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Failed to convert Literal lexical form" not in record.getMessage()


_noise_filter_installed = False


def _quiet_rdflib() -> None:
    global _noise_filter_installed
    if not _noise_filter_installed:
        logging.getLogger("rdflib.term").addFilter(_DropIllTypedNoise())
        _noise_filter_installed = True


def record_type_of(record: Any, record_type: str | None, std: Standard) -> str:
    """The type a record is validated as: ``record_type`` or the record's ``type``/``@type`` key."""
    if not isinstance(record, dict):
        raise InputError(f"a record must be a JSON object, not {_json_type(record)}")
    declared = record.get("type", record.get("@type"))
    if declared is not None and not isinstance(declared, str):
        raise InputError(f"the record's type must be a string, not {_json_type(declared)}")
    if record_type is None:
        if declared is None:
            raise InputError("the record has no \"type\"; give one (e.g. --type Person)")
        record_type = declared
    elif declared is not None and declared != record_type:
        raise InputError(f"the record declares type {declared!r} but is validated as {record_type!r}")
    if record_type not in std.types:
        raise InputError(f"unknown record type {record_type!r}; the standard defines: {', '.join(std.types)}")
    return record_type


def _json_type(v: Any) -> str:
    if v is None:
        return "null"
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean", int: "a number",
            float: "a number"}.get(type(v), type(v).__name__)


def _violations(rules: list[Rule]) -> tuple[Violation, ...]:
    seen = {
        Violation(r.report_path, r.kind, r.severity, r.message.zh, r.message.en) for r in rules
    }
    return tuple(sorted(seen))


def _record_id(record: Any) -> str | None:
    if isinstance(record, dict):
        rid = record.get("id")
        if isinstance(rid, str):
            return rid
    return None


#: bump when a change to an engine could change a verdict (stored fingerprints then no longer match)
ENGINE_REVISION = 1


class Validator:
    """Validates records against one standard with one engine."""

    def __init__(self, std: Standard, engine: str) -> None:
        if engine not in ENGINES:
            raise InputError(f"unknown engine {engine!r}; choose one of: {', '.join(ENGINES)}")
        _quiet_rdflib()
        self.std = std
        self.engine = engine
        #: what a record validated by this validator was checked against: the standard's shape files and
        #: the engine (with its revision). A store keeps it with each record validated at the boundary, so a
        #: record is not validated again on its way out under the same standard.
        self.fingerprint = f"{engine}/{ENGINE_REVISION}/{std.digest[:32]}"
        self._compiled: dict[str, Any] = {}
        self._columns: dict[str, tuple[frozenset[str], Any]] = {}
        self._column_keys: dict[str, frozenset[str]] = {}
        self._shacl: Any = None
        if engine == "fast":
            from node.validation._fast import compile_type

            for name, rt in std.types.items():
                compiled = compile_type(std, rt)
                self._compiled[name] = compiled.check
                if compiled.check_columns is not None:
                    self._columns[name] = (frozenset(rt.keys) | {"id"}, compiled.check_columns)
                    self._column_keys[name] = self._columns[name][0] - {"type", "@type"}
        else:
            from node.validation._shacl import ShaclEngine

            self._shacl = ShaclEngine(std)

    @property
    def types(self) -> list[str]:
        return list(self.std.types)

    def validate(self, record: Any, record_type: str | None = None) -> RecordReport:
        if self.engine == "fast":
            return self._fast_one(record, record_type)
        return self._shacl_many([record], record_type)[0]

    def validate_many(self, records: Iterable[Any], record_type: str | None = None) -> list[RecordReport]:
        """One report per record; a record that cannot be validated gets a report with ``error``."""
        if self.engine != "fast":
            return self._shacl_many(list(records), record_type)
        one = self._fast_one
        check = self._compiled.get(record_type) if record_type is not None else None
        if check is None:
            return [one(r, record_type) for r in records]
        t: str = record_type  # type: ignore[assignment]  # a compiled type's name
        out: list[RecordReport] = []
        append = out.append
        for record in records:  # _fast_one's common case, inline
            if record.__class__ is dict and _declares(record, t):
                failed = check(record)
                if not failed:
                    rid = record.get("id")
                    append(valid_report(rid if rid.__class__ is str else None, t))
                else:
                    append(self._report(record, t, failed))
                continue
            append(one(record, record_type))
        return out

    def clean(self, record: Any, record_type: str | None) -> bool:
        """True when ``validate(record, record_type)`` is sure to be ``RecordReport(its id,
        record_type, True)`` with no violation, found without making the report. False: not
        known that way (call validate for the verdict)."""
        check = self._compiled.get(record_type) if self.engine == "fast" and record_type is not None else None
        if check is None or record.__class__ is not dict:
            return False
        return _declares(record, record_type) and not check(record)

    def unclear(self, records: Sequence[Any], record_type: str | None) -> dict[int, RecordReport] | None:
        """:meth:`validate_many` without a report for each clean record: the reports that may be
        anything but "valid, no violations", by position. Every position left out would get
        ``RecordReport(its id, record_type, True)``. None when the fast engine has no compiled
        check for ``record_type``: call validate_many instead.
        """
        check = self._compiled.get(record_type) if self.engine == "fast" and record_type is not None else None
        if check is None:
            return None
        t: str = record_type  # type: ignore[assignment]  # a compiled type's name
        out: dict[int, RecordReport] = {}
        for i, record in enumerate(records):  # validate_many's common case, inline
            if record.__class__ is dict and _declares(record, t):
                failed = check(record)
                if failed:
                    out[i] = self._report(record, t, failed)
                continue
            out[i] = self._fast_one(record, t)
        return out

    def column_keys(self, record_type: str) -> frozenset[str] | None:
        """The keys :meth:`unclear_rows` takes as columns for ``record_type`` ("id" and the type's keys but
        "type" and "@type"); None when it checks no columns of that type (see unclear_rows)."""
        return self._column_keys.get(record_type) if self.engine == "fast" else None

    def unclear_rows(self, record_type: str, columns: Mapping[str, Sequence[Any]]) -> list[int] | None:
        """Records given column by column, checked without making them: the positions of those
        whose report may be anything but "valid, no violations".

        ``columns`` holds an ``"id"`` column and a column per key (all the same length; None
        where a record lacks the key). Record ``i`` is ``{key: column[i]}`` without the Nones; for
        every position not returned, ``validate(record, record_type)`` is
        ``RecordReport(record id, record_type, True)``. The records at the positions returned
        are to be validated as usual. None when this validator cannot check columns (the
        reference engine, a key the type does not have, a "type" column, a rule that needs the
        whole record): validate the records instead.
        """
        found = self._columns.get(record_type) if self.engine == "fast" else None
        ids = columns.get("id")
        if found is None or ids is None:
            return None
        allowed, check_columns = found
        if not allowed.issuperset(columns) or any(len(column) != len(ids) for column in columns.values()):
            return None
        bad: list[int] = check_columns(ids, columns)
        return bad

    def _fast_one(self, record: Any, record_type: str | None) -> RecordReport:
        check = self._compiled.get(record_type) if record_type is not None else None
        if check is not None and record.__class__ is dict and record.get("type", record.get("@type")) in (
            None,
            record_type,
        ):
            t: str = record_type  # type: ignore[assignment]  # the common case, resolved without exceptions
        else:
            try:
                t = record_type_of(record, record_type, self.std)
            except ShulianError as exc:
                return RecordReport(_record_id(record), record_type, False, (), exc.message)
            check = self._compiled[t]
        failed = check(record)
        if not failed:
            rid = record.get("id")
            return valid_report(rid if rid.__class__ is str else None, t)
        return self._report(record, t, failed)

    @staticmethod
    def _report(record: dict[str, Any], t: str, failed: list[Rule]) -> RecordReport:
        vs = _violations(failed)
        valid = not any(v.severity == "Violation" for v in vs)
        return RecordReport(_record_id(record), t, valid, vs)

    def _shacl_many(self, records: list[Any], record_type: str | None) -> list[RecordReport]:
        reports: list[RecordReport | None] = [None] * len(records)
        pending: list[tuple[int, dict[str, Any], str]] = []
        for i, record in enumerate(records):
            try:
                t = record_type_of(record, record_type, self.std)
            except ShulianError as exc:
                reports[i] = RecordReport(_record_id(record), record_type, False, (), exc.message)
                continue
            pending.append((i, record, t))
        # records with the same id would merge into one RDF node: validate them in separate rounds
        while pending:
            round_items: list[tuple[int, dict[str, Any], str]] = []
            later: list[tuple[int, dict[str, Any], str]] = []
            seen: set[Any] = set()
            for item in pending:
                rid = item[1].get("id")
                key = rid if isinstance(rid, str) else object()
                (later if key in seen else round_items).append(item)
                seen.add(key)
            results = self._shacl.validate_batch([(rec, self.std.types[t]) for _i, rec, t in round_items])
            for (i, rec, t), vs in zip(round_items, results, strict=True):
                valid = not any(v.severity == "Violation" for v in vs)
                reports[i] = RecordReport(_record_id(rec), t, valid, tuple(vs))
            pending = later
        return [r for r in reports if r is not None]


@functools.lru_cache(maxsize=16)
def _cached(directory: Path | None, engine: str) -> Validator:
    return Validator(load_standard(directory), engine)


def get_validator(engine: str = "fast", standard_dir: str | Path | None = None) -> Validator:
    """A validator for ``engine`` over the standard in ``standard_dir`` (default: the shipped one).

    Compiled once and cached; safe to share between threads (validation keeps no state).
    """
    d = Path(standard_dir).resolve() if standard_dir is not None else None
    return _cached(d, engine)
