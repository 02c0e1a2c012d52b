"""Map a block of rows: the fields column by column, then the records.

Rows a batch function could not settle (a value that does not normalise, a
missing value with a fallback, default or ``required``) are mapped again with the
per-row closures, which name the column, the value and the reason.

:meth:`BlockMapper.outcomes` gives every row of a block as one outcome, in row
order (records as dicts, for validation). :meth:`BlockMapper.lines` is the path
without validation: complete rows never become dicts; their values are escaped
column by column and formatted straight into JSON lines, and only the rejects and
the few special rows are handled one by one.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Sequence
from itertools import repeat
from operator import itemgetter
from typing import Any

from adapters.engine._report import Reject
from adapters.mapping import CompiledMapping, FieldError
from adapters.readers import BadRow, FlatRows, Row

__all__ = ["BlockMapper", "Outcome", "ID_PATTERN", "record_encoder"]

ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._~-]{0,127}")

# (row number, row, the record or None, the rejects or None): exactly one of the last two is set
Outcome = tuple[int, Any, "dict[str, str] | None", "list[Reject] | None"]
# (positions of the complete rows or None for all, their ids, their values column by column (one
# column a property), the special rows' outcomes by position)
_Fast = tuple["list[int] | None", list[str], "list[list[Any]]", "dict[int, Outcome]"]
_escape: Callable[[str], str] = json.encoder.encode_basestring  # C, as json.dumps(ensure_ascii=False)


def record_encoder(keys: Iterable[str]) -> Callable[[dict[str, str]], str]:
    """Compact JSON for a flat record of strings: keys escaped once, values by the C string encoder."""
    prefixes = {k: _escape(k) + ":" for k in keys}
    general = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), check_circular=False).encode

    def encode(record: dict[str, str]) -> str:
        try:
            return "{" + ",".join([prefixes[k] + _escape(v) for k, v in record.items()]) + "}"
        except (KeyError, TypeError):  # not a flat record of strings: the general encoder
            return general(record)

    return encode


def _outcome(n: int, row: Any, record: dict[str, str]) -> Outcome:
    return n, row, record, None


def _picker(positions: list[int]) -> Callable[[Sequence[Any]], list[Any]]:
    """A function taking the items at ``positions`` (in order) of a sequence, in C."""
    if not positions:
        return lambda seq: []
    if len(positions) == 1:
        k = positions[0]
        return lambda seq: [seq[k]]
    get = itemgetter(*positions)
    return lambda seq: list(get(seq))


def _plain(column: list[Any]) -> bool:
    """Whether a column's values are JSON strings as they are (inside quotes): printable (so no
    control character, the only characters the encoder escapes besides these two), no quote,
    no backslash."""
    try:
        text = "".join(column)
    except TypeError:  # not all strings: the encoder says what is wrong
        return False
    return text.isprintable() and '"' not in text and "\\" not in text


def field_rejects(rownum: int, errors: list[tuple[str, FieldError]], stage: str) -> list[Reject]:
    return [Reject(rownum, e.column, e.value, prop, stage, e.constraint, e.reason, e.reason_zh) for prop, e in errors]


class BlockMapper:
    def __init__(self, compiled: CompiledMapping, width: int | None = None) -> None:
        mapping = compiled.mapping
        self.positional = width is not None  # rows are sequences of ``width`` cells
        self.width = width or 0
        self.compiled = compiled
        self.props = tuple(p for p, _ in compiled.fields)
        assert self.props, "a mapping has at least one field"
        self.base: dict[str, str] = {"id": ""}
        if mapping.include_type:
            self.base["type"] = mapping.type
        self.keys = tuple(self.base) + self.props
        self.fixed = tuple(self.base.values())[1:]  # the type, when the record carries it
        self.encode = record_encoder(self.keys)
        # the constant text before each value of a JSON line: {"id": / ,"type":"Person","name": / ...
        head = "".join(f",{_escape(k)}:{_escape(v)}" for k, v in self.base.items() if k != "id")
        self.line_parts = ['{"id":', head + f",{_escape(self.props[0])}:"] + [f",{_escape(p)}:" for p in self.props[1:]]
        self.seen: dict[str, int] | None = {} if mapping.id.duplicates == "reject" else None
        self.id_cols = compiled.columns_of.get("id", ())
        self.id_label = "+".join(self.id_cols)
        # a hash after a checked prefix is always a valid id; templates and properties are checked
        self.check_ids = not mapping.id.hash
        one = mapping.id.property or (mapping.id.hash[0] if len(mapping.id.hash) == 1 else None)
        self.id_position = self.props.index(one) if one is not None and compiled.ids_of_column else None

    # -- the two ways out --------------------------------------------------------------------
    def outcomes(self, numbers: Sequence[int], rows: Sequence[Row | BadRow], has_bad: bool) -> list[Outcome]:
        """Every row as one outcome, in row order; records as dicts."""
        if has_bad:
            return self._with_bad_rows(numbers, rows)
        return self.outcomes_of(numbers, rows, self._fast(numbers, rows))

    def columns(self, numbers: Sequence[int], rows: Sequence[Row | BadRow], has_bad: bool) -> _Fast | None:
        """A block (without bad rows) mapped column by column: the positions of its complete rows
        (None: all), their ids, their values a column a property (in ``props`` order) and the
        other rows' outcomes by position. None when the block must go row by row (its rows then
        go through :meth:`outcomes_of` with None)."""
        return None if has_bad else self._fast(numbers, rows)

    def outcomes_of(self, numbers: Sequence[int], rows: Sequence[Any], fast: _Fast | None) -> list[Outcome]:
        """The outcomes of a block (without bad rows) from what :meth:`columns` made of it."""
        if fast is None:
            return self._row_by_row(numbers, list(rows))
        clean, ids, columns, extra = fast
        # the records made in C: dict(zip(keys, (id, type, value, ...))) a row (repeat() is endless)
        rows_values = zip(ids, *map(repeat, self.fixed), *columns, strict=False)
        records = list(map(dict, map(zip, repeat(self.keys), rows_values)))
        if clean is None:
            return list(map(_outcome, numbers, rows, records))
        out: list[Outcome] = []
        taken = iter(records)
        for i in range(len(rows)):
            found = extra.get(i)
            out.append(found if found is not None else (numbers[i], rows[i], next(taken), None))
        return out

    def record_at(self, ids: list[str], columns: list[list[Any]], j: int) -> dict[str, str]:
        """The record of the ``j``-th complete row of a block (see :meth:`columns`)."""
        return dict(zip(self.keys, (ids[j], *self.fixed, *(column[j] for column in columns)), strict=True))

    def text(self, numbers: Sequence[int], rows: Sequence[Row | BadRow], has_bad: bool) -> tuple[str, int, list[list[Reject]]]:
        """The records of a block as one text of JSON lines (each ending in a newline), how many
        lines, and the rejected rows' entries in row order."""
        fast = None if has_bad else self._fast(numbers, rows)
        if fast is not None and not fast[3]:  # every row a complete record
            _, ids, columns, _ = fast
            return self.clean_text(ids, columns), len(ids), []
        lines, rejects = self._lines_of(numbers, rows, has_bad, fast)
        return "".join([line + "\n" for line in lines]), len(lines), rejects

    def lines(self, numbers: Sequence[int], rows: Sequence[Row | BadRow], has_bad: bool) -> tuple[list[str], list[list[Reject]]]:
        """The records of a block as JSON lines and the rejected rows' entries, each in row order."""
        return self._lines_of(numbers, rows, has_bad, None if has_bad else self._fast(numbers, rows))

    def _lines_of(self, numbers: Sequence[int], rows: Sequence[Row | BadRow], has_bad: bool,
                  fast: _Fast | None) -> tuple[list[str], list[list[Reject]]]:  # fmt: skip
        if fast is None:
            out_lines: list[str] = []
            rejects: list[list[Reject]] = []
            outcomes = self._with_bad_rows(numbers, rows) if has_bad else self.outcomes_of(numbers, rows, None)
            for _, _, record, entries in outcomes:
                if record is not None:
                    out_lines.append(self.encode(record))
                else:
                    rejects.append(entries or [])
            return out_lines, rejects
        clean, ids, columns, extra = fast
        clean_lines = self.clean_lines(ids, columns)
        if not extra:
            return clean_lines, []
        merged: list[str] = []
        rejects = []
        start = 0
        for rank, i in enumerate(sorted(extra)):
            stop = i - rank  # clean rows before block position i
            merged.extend(clean_lines[start:stop])
            start = stop
            _, _, record, entries = extra[i]
            if record is not None:
                merged.append(self.encode(record))
            else:
                rejects.append(entries or [])
        merged.extend(clean_lines[start:])
        return merged, rejects

    def clean_lines(self, ids: list[str], columns: list[list[Any]]) -> list[str]:
        """One JSON line a complete row (see :meth:`clean_text`)."""
        return self.clean_text(ids, columns).split("\n")[:-1] if ids else []

    def clean_text(self, ids: list[str], columns: list[list[Any]]) -> str:
        """The JSON lines of the complete rows of a block, each ending in a newline, joined in C
        from columns: constant text, id, constant text, value ... A column of printable text
        without a quote or backslash (the usual one) goes in as it is, between quotes in the
        constant text; any other column is escaped value by value."""
        n = len(ids)
        if not n:
            return ""
        values = [ids, *columns]
        width = 2 * len(values) + 1
        flat: list[str] = [""] * (width * n)
        quoted = False  # whether the previous value is still to be closed by a quote
        for k, (text, column) in enumerate(zip(self.line_parts, values, strict=True)):
            plain = _plain(column)
            flat[2 * k :: width] = [('"' if quoted else "") + text + ('"' if plain else "")] * n
            flat[2 * k + 1 :: width] = column if plain else list(map(_escape, column))
            quoted = plain
        flat[width - 1 :: width] = [('"' if quoted else "") + "}\n"] * n
        return "".join(flat)

    # -- the common path ---------------------------------------------------------------------
    def _fast(self, numbers: Sequence[int], rows: Sequence[Any]) -> _Fast | None:
        """Map a block (no BadRow in it) column by column. Returns the positions of the complete
        rows (None: all of them), their ids and values, and the outcomes of the special rows by
        position; None when an id is invalid or repeated, so that the row-by-row path decides,
        in row order, which row is the duplicate."""
        block: Any = rows if isinstance(rows, list | FlatRows) else list(rows)
        # positional rows of one width (CSV, Excel, SQL) are transposed once, in C, for every field
        source_columns: Any = None
        if isinstance(block, FlatRows):
            source_columns = block.columns
        elif self.positional and block:
            source_columns = list(zip(*block))  # noqa: B905
            if len(source_columns) != self.width:
                source_columns = None  # ragged rows cannot be transposed (they were reported as BadRows)
        columns: list[list[Any]] = []
        slow: set[int] = set()
        partial: set[int] = set()  # rows where some property is omitted
        for batch in self.compiled.batches:
            column, positions = batch(block, source_columns)
            columns.append(column)
            slow.update(positions)
            if None in column:
                partial.update(i for i, v in enumerate(column) if v is None)
        special = slow | partial
        clean: list[int] | None = None
        if special:
            clean = [i for i in range(len(block)) if i not in special]
            pick = _picker(clean)
            values = [pick(column) for column in columns]
            clean_numbers: Sequence[int] = pick(numbers)
        else:
            values, clean_numbers = columns, numbers
        if self.id_position is not None and self.compiled.ids_of_column is not None:
            ids = self.compiled.ids_of_column(values[self.id_position])
        else:
            ids = list(map(self.compiled.id_of_values, zip(*values, strict=True), clean_numbers))
        if self.check_ids and any(ID_PATTERN.fullmatch(rid) is None for rid in ids):
            return None
        extra = {i: self._one(numbers[i], block[i], tuple(c[i] for c in columns), i in slow, register=False)
                 for i in sorted(special)}  # fmt: skip
        seen = self.seen
        if seen is not None:
            special_ids = [(o[2]["id"], o[0]) for o in extra.values() if o[2] is not None]
            new = dict(zip(ids, clean_numbers, strict=True))
            new.update(special_ids)
            if len(new) != len(ids) + len(special_ids) or not seen.keys().isdisjoint(new):
                return None  # a repeated id: row by row, to name the later row
            seen.update(new)
        return clean, ids, values, extra

    # -- the careful paths -------------------------------------------------------------------
    def _with_bad_rows(self, numbers: Sequence[int], rows: Sequence[Row | BadRow]) -> list[Outcome]:
        bad: list[Outcome] = []
        kept_numbers: list[int] = []
        kept: list[Row | BadRow] = []
        for n, row in zip(numbers, rows, strict=True):
            if isinstance(row, BadRow):
                reject = Reject(n, row.column, row.value, "", "read", "row", row.reason, row.reason_zh)
                bad.append((n, row, None, [reject]))
            else:
                kept_numbers.append(n)
                kept.append(row)
        outcomes = self.outcomes(kept_numbers, kept, False) if kept else []
        return sorted(outcomes + bad, key=lambda o: o[0])

    def _row_by_row(self, numbers: Sequence[int], block: list[Any]) -> list[Outcome]:
        """Every row on its own, in order: exact duplicate detection and messages."""
        return [self._one(n, row, (), True) for n, row in zip(numbers, block, strict=True)]

    def _one(self, n: int, row: Any, values: tuple[Any, ...], slow: bool, *, register: bool = True) -> Outcome:
        """A row through the per-row closures (``slow``) or from its batch values (some omitted)."""
        if slow:
            record, errors = self._map_row(row)
            if errors:
                return n, row, None, field_rejects(n, errors, "mapping")
            assert record is not None
        else:
            record = self.base.copy()
            record.update((p, v) for p, v in zip(self.props, values, strict=True) if v is not None)
        try:
            rid = self.compiled.make_id(record, n)
        except FieldError as exc:
            return n, row, None, field_rejects(n, [("id", exc)], "id")
        if self.check_ids and ID_PATTERN.fullmatch(rid) is None:
            return n, row, None, [Reject(n, self.id_label, rid, "id", "id", "id",
                                  f"the derived id {rid!r} is not a valid record id (A-Z a-z 0-9 . _ ~ -, at most 128)",
                                  f"生成的记录标识“{rid}”不合规（仅限字母、数字和 . _ ~ -，最长128位）")]  # fmt: skip
        if register and self.seen is not None:
            first = self.seen.setdefault(rid, n)
            if first != n:
                raw = self.compiled.raw(row, self.id_cols)
                return n, row, None, [Reject(n, self.id_label, raw, "id", "id", "duplicate-id",
                                      f"record id {rid} was already produced by row {first}",
                                      f"记录标识{rid}与第{first}行重复")]  # fmt: skip
        record["id"] = rid
        return n, row, record, None

    def _map_row(self, row: Any) -> tuple[dict[str, str] | None, list[tuple[str, FieldError]] | None]:
        """One row through the per-row closures: the record, or every field's error."""
        record = self.base.copy()
        errors: list[tuple[str, FieldError]] | None = None
        for prop, fn in self.compiled.fields:
            try:
                value = fn(row)
            except FieldError as exc:
                if errors is None:
                    errors = []
                errors.append((prop, exc))
                continue
            if value is not None:
                record[prop] = value
        return (None, errors) if errors else (record, None)
