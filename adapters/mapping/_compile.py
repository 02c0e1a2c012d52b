"""Compile a :class:`Mapping` once, against the input's columns, into per-field closures.

The hot loop of ``shulian map`` calls one closure per property per row; every
lookup (column position, normaliser options, crosswalk table, regex) is bound
when the closure is built, never per row. Normalisers whose results depend only
on the value (dates, divisions, amounts, crosswalks) are memoised per field,
since a column of a million rows holds a few thousand distinct dates.
"""

from __future__ import annotations

import difflib
import hashlib
import importlib
import string
from collections.abc import Callable, Sequence
from collections.abc import Mapping as MappingABC
from dataclasses import dataclass
from decimal import Decimal
from operator import itemgetter
from typing import Any, Protocol

from adapters.mapping._batch import (
    CACHE_LIMIT,
    BatchFn,
    cell_batch,
    constant_batch,
    missing_filler,
    row_batch,
)
from adapters.mapping._errors import FieldError
from adapters.mapping._model import FieldSpec, Mapping
from adapters.normalise import NORMALISERS, NormaliseError, OptionError, build_normaliser
from adapters.normalise._registry import DivisionSource, Normaliser
from adapters.readers import Row
from node.errors import ConfigError

__all__ = ["FieldError", "CompiledMapping", "compile_mapping"]

_CACHE_LIMIT = CACHE_LIMIT


class _Digest(Protocol):
    def hexdigest(self) -> str: ...


def _builtin_sha256() -> Callable[[bytes], _Digest]:
    """CPython's own SHA-256 (``_sha256``, ``_sha2`` from 3.12): the same digests as
    ``hashlib.sha256`` without the OpenSSL call's overhead, a third of the time on an id's few
    bytes; ``hashlib.sha256`` where the interpreter has no such module."""
    for name in ("_sha2", "_sha256"):
        try:
            found: Callable[[bytes], _Digest] = importlib.import_module(name).sha256
        except (ImportError, AttributeError):
            continue
        return found
    return hashlib.sha256


_sha256 = _builtin_sha256()
FieldFn = Callable[[Any], "str | None"]


@dataclass(frozen=True)
class CompiledMapping:
    mapping: Mapping
    fields: tuple[tuple[str, FieldFn], ...]
    batches: tuple[BatchFn, ...]  # the same fields, a block of rows at a time (same order)
    columns_of: MappingABC[str, tuple[str, ...]]  # property (and "id") -> every source column it may use
    sources_of: MappingABC[str, tuple[tuple[str, ...], ...]]  # property -> columns of each alternative, in order
    make_id: Callable[[dict[str, str], int], str]
    id_of_values: Callable[[Sequence[str], int], str]  # the same id from a complete row of values
    ids_of_column: Callable[[list[str]], list[str]] | None  # ids from one column, when the id is one property
    raw: Callable[[Row, tuple[str, ...]], str]  # the source text of some columns, for rejects

    def columns_label(self, prop: str) -> str:
        return "+".join(self.columns_of.get(prop, ()))


def _json_text(value: Any, column: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, float):  # not produced by our JSON reader; kept for API callers
        return repr(value)
    kind = "an object" if isinstance(value, dict) else "an array" if isinstance(value, list) else type(value).__name__
    raise FieldError(column, str(value)[:200], "structure", f"key {column!r} holds {kind}, not a value",
                     f"键“{column}”的值是结构（{kind}），不是单个值")  # fmt: skip


def _plain_cell(idx: int, nulls: frozenset[str], missing: FieldFn) -> FieldFn:
    def plain_cell(row: Any) -> str | None:
        value = row[idx]
        if value is not None:
            value = value.strip()
            if value not in nulls:
                return value  # type: ignore[no-any-return]
        return missing(row)

    return plain_cell


def _normalised_cell(idx: int, nulls: frozenset[str], missing: FieldFn, chain: Normaliser, label: str) -> FieldFn:
    def normalised_cell(row: Any) -> str | None:
        value = row[idx]
        if value is not None:
            value = value.strip()
            if value not in nulls:
                try:
                    result = chain(value)
                except NormaliseError as exc:
                    raise FieldError(label, value, exc.constraint, exc.reason, exc.reason_zh) from None
                if result:
                    return result
        return missing(row)

    return normalised_cell


def _cached_cell(idx: int, nulls: frozenset[str], missing: FieldFn, chain: Normaliser, label: str,
                 cache: dict[str, str]) -> FieldFn:  # fmt: skip
    # Successful results only; once full the memo stops growing (high-cardinality
    # columns then cost one dict lookup a value, never a clear-and-refill cycle).
    get = cache.get

    def cached_cell(row: Any) -> str | None:
        value = row[idx]
        if value is not None:
            value = value.strip()
            if value not in nulls:
                result = get(value)
                if result is not None:
                    return result
                try:
                    result = chain(value)
                except NormaliseError as exc:
                    raise FieldError(label, value, exc.constraint, exc.reason, exc.reason_zh) from None
                if result:
                    if len(cache) < _CACHE_LIMIT:
                        cache[value] = result
                    return result
        return missing(row)

    return cached_cell


class _Compiler:
    def __init__(self, mapping: Mapping, columns: tuple[str, ...] | None, divisions: DivisionSource) -> None:
        self.mapping = mapping
        self.columns = columns
        self.divisions = divisions
        self.nulls = mapping.null_values
        self.index: dict[str, int] = {}
        self.duplicated: set[str] = set()
        if columns is not None:
            for i, name in enumerate(columns):
                if name in self.index:
                    self.duplicated.add(name)
                else:
                    self.index[name] = i

    def error(self, key: str, message: str) -> ConfigError:
        return ConfigError(message, file=self.mapping.name, key=key)

    # -- getting raw text ------------------------------------------------------------
    def index_of(self, column: str, key: str) -> int:
        assert self.columns is not None
        if column in self.duplicated:
            raise self.error(key, f"column {column!r} appears more than once in the input's header")
        if column not in self.index:
            near = difflib.get_close_matches(column, self.columns, n=1)
            hint = f"; did you mean {near[0]!r}?" if near else ""
            shown = ", ".join(self.columns[:30]) + (" ..." if len(self.columns) > 30 else "")
            raise self.error(key, f"column {column!r} is not in the input (columns: {shown}){hint}")
        return self.index[column]

    def getter(self, column: str, key: str) -> Callable[[Any], str | None]:
        if self.columns is None:
            get_key = column

            def get_json(row: Any) -> str | None:
                value: Any = row.get(get_key)
                if value is None or value.__class__ is str:
                    return value
                return _json_text(value, get_key)

            return get_json
        return itemgetter(self.index_of(column, key))

    def raw_fn(self, spec: FieldSpec) -> Callable[[Any], str | None]:
        """Row -> stripped source text, or None when missing (empty or a null value)."""
        nulls = self.nulls
        column_key = f"{spec.key}.column" if len(spec.columns) == 1 else f"{spec.key}.columns"
        if len(spec.columns) == 1 and spec.split is None:
            get = self.getter(spec.columns[0], column_key)

            def one(row: Any) -> str | None:
                raw = get(row)
                if raw is None:
                    return None
                raw = raw.strip()
                return None if raw in nulls else raw

            return one
        if spec.split is not None:
            get = self.getter(spec.columns[0], column_key)
            sep, index = spec.split, spec.index

            def part(row: Any) -> str | None:
                raw = get(row)
                if raw is None:
                    return None
                pieces = raw.split(sep)
                try:
                    piece = pieces[index].strip()
                except IndexError:
                    return None
                return None if piece in nulls else piece

            return part
        gets = [self.getter(c, f"{column_key}[{i}]") for i, c in enumerate(spec.columns)]
        join = spec.join

        def concat(row: Any) -> str | None:
            parts = []
            for g in gets:
                raw = g(row)
                if raw is not None:
                    raw = raw.strip()
                    if raw not in nulls:
                        parts.append(raw)
            return join.join(parts) if parts else None

        return concat

    # -- normalising -------------------------------------------------------------------
    def chain(self, spec: FieldSpec) -> tuple[Normaliser | None, bool, dict[str, str] | None]:
        """The normaliser chain of a field, whether its results are worth memoising, and (for a
        crosswalk alone) the crosswalk's table to seed the memo with."""
        steps: list[Normaliser] = []
        cacheable = False
        seed: dict[str, str] | None = None
        for ref in spec.normalise:
            try:
                steps.append(build_normaliser(ref.name, ref.options, self.divisions))
            except OptionError as exc:
                raise self.error(f"{ref.key}.{exc.key}", str(exc)) from exc
            cacheable = cacheable or NORMALISERS[ref.name].cacheable
        if spec.crosswalk is not None:
            crosswalk = self.mapping.crosswalks[spec.crosswalk]
            steps.append(crosswalk.compile())
            if not spec.normalise:
                seed = dict(crosswalk.table)
        if not steps:
            return None, False, None
        if len(steps) == 1:
            return steps[0], cacheable, seed
        if len(steps) == 2:
            first, second = steps

            def two(value: str) -> str:
                return second(first(value))

            two.steps = (first, second)  # type: ignore[attr-defined]  # for the batch path
            return two, cacheable, None
        seq = tuple(steps)

        def many(value: str) -> str:
            for step in seq:
                value = step(value)
            return value

        many.steps = seq  # type: ignore[attr-defined]
        return many, cacheable, None

    def field(self, spec: FieldSpec) -> FieldFn:
        """The per-row closure of a field (fallbacks are evaluated row by row)."""
        return self.field_pair(spec)[0]

    def field_pair(self, spec: FieldSpec) -> tuple[FieldFn, BatchFn]:
        """The closures for one property: per row, and per block of rows (see ``_batch``).

        The hot case (one column of a positional row) reads the cell, strips it, checks for a
        null and runs the normaliser chain inline, with a per-field memo (shared by both
        closures) for chains whose results depend only on the value.
        """
        chain, cacheable, seed = self.chain(spec)
        missing = self.missing_fn(spec)
        if spec.value is not None:
            constant = spec.value
            if chain is not None:
                try:
                    constant = chain(constant)
                except NormaliseError as exc:
                    raise self.error(f"{spec.key}.value", exc.reason) from exc

            def const(row: Any) -> str | None:
                return constant

            return const, constant_batch(constant)
        label = "+".join(spec.columns)
        nulls = self.nulls
        if self.columns is not None and len(spec.columns) == 1 and spec.split is None:
            idx = self.index_of(spec.columns[0], f"{spec.key}.column")
            getter = itemgetter(idx)
            fallback = self.field_pair(spec.fallback)[1] if spec.fallback is not None else None
            fill = missing_filler(fallback, spec.default, spec.required)
            if chain is None:
                return _plain_cell(idx, nulls, missing), cell_batch(idx, getter, nulls, None, None, fill)
            if cacheable or seed is not None:
                cache: dict[str, str] = dict(seed or {})
                return (_cached_cell(idx, nulls, missing, chain, label, cache),
                        cell_batch(idx, getter, nulls, chain, cache, fill))  # fmt: skip
            return (_normalised_cell(idx, nulls, missing, chain, label),
                    cell_batch(idx, getter, nulls, chain, None, fill))  # fmt: skip
        row_fn = self._row_field(spec, chain, missing, label)
        return row_fn, row_batch(row_fn)

    def _row_field(self, spec: FieldSpec, chain: Normaliser | None, missing: FieldFn, label: str) -> FieldFn:
        raw_fn = self.raw_fn(spec)
        if chain is None:

            def plain(row: Any) -> str | None:
                value = raw_fn(row)
                return missing(row) if value is None else value

            return plain
        normalise = chain

        def normalised(row: Any) -> str | None:
            value = raw_fn(row)
            if value is None:
                return missing(row)
            try:
                result = normalise(value)
            except NormaliseError as exc:
                raise FieldError(label, value, exc.constraint, exc.reason, exc.reason_zh) from None
            return result if result else missing(row)

        return normalised

    def missing_fn(self, spec: FieldSpec) -> FieldFn:
        fallback = self.field(spec.fallback) if spec.fallback is not None else None
        default, required = spec.default, spec.required
        label = "+".join(spec.columns) if spec.columns else spec.property
        if fallback is None and not required:
            return lambda row: default
        prop = spec.property

        def missing(row: Any) -> str | None:
            if fallback is not None:
                value = fallback(row)
                if value is not None:
                    return value
            if default is not None:
                return default
            if required:
                raise FieldError(label, "", "missing", f"{prop} is required and the value is missing",
                                 f"必填项{prop}缺少值")  # fmt: skip
            return None

        return missing

    # -- the id --------------------------------------------------------------------------
    def id_fn(self, columns_of: MappingABC[str, tuple[str, ...]]) -> tuple[Callable[[dict[str, str], int], str], tuple[str, ...]]:
        spec = self.mapping.id
        prefix = spec.prefix

        def need(record: dict[str, str], prop: str) -> str:
            value = record.get(prop)
            if value is None:
                raise FieldError("+".join(columns_of.get(prop, ())), "", "id",
                                 f"the id is made from {prop}, which has no value",
                                 f"记录标识由{prop}生成，但该项无值")  # fmt: skip
            return value

        if spec.property is not None:
            prop = spec.property

            def by_property(record: dict[str, str], row: int) -> str:
                return prefix + need(record, prop)

            return by_property, columns_of.get(prop, ())
        if spec.hash:
            props, length, salt = spec.hash, spec.length, spec.salt
            sha = _sha256
            if len(props) == 1:
                only = props[0]

                def by_hash1(record: dict[str, str], row: int) -> str:
                    value = record.get(only)
                    if value is None:
                        value = need(record, only)
                    return prefix + sha((salt + value).encode()).hexdigest()[:length]

                return by_hash1, columns_of.get(only, ())

            def by_hash(record: dict[str, str], row: int) -> str:
                material = salt + "\x1f".join([need(record, p) for p in props])
                return prefix + sha(material.encode()).hexdigest()[:length]

            return by_hash, tuple(c for p in props for c in columns_of.get(p, ()))
        assert spec.template is not None
        parts: list[tuple[str, str | None]] = [(lit, name) for lit, name, _, _ in string.Formatter().parse(spec.template)]
        used = tuple(c for _, name in parts if name and name != "row" for c in columns_of.get(name, ()))

        def by_template(record: dict[str, str], row: int) -> str:
            out = [prefix]
            for literal, name in parts:
                out.append(literal)
                if name is not None:
                    out.append(str(row) if name == "row" else need(record, name))
            return "".join(out)

        return by_template, used


def _id_of_values(mapping: Mapping) -> Callable[[Sequence[str], int], str]:
    """The id from a row's values in field order, every property present (the engine's fast path;
    a row with a property missing goes through ``make_id``, which names what is missing)."""
    spec = mapping.id
    prefix = spec.prefix
    position = {f.property: i for i, f in enumerate(mapping.fields)}
    if spec.property is not None:
        k = position[spec.property]
        return lambda values, row: prefix + values[k]
    if spec.hash:
        sha, length, salt = _sha256, spec.length, spec.salt
        ks = [position[p] for p in spec.hash]
        if len(ks) == 1:
            k = ks[0]
            return lambda values, row: prefix + sha((salt + values[k]).encode()).hexdigest()[:length]
        return lambda values, row: prefix + sha((salt + "\x1f".join([values[k] for k in ks])).encode()).hexdigest()[:length]
    assert spec.template is not None
    parts = [(lit, None if name is None else -1 if name == "row" else position[name])
             for lit, name, _, _ in string.Formatter().parse(spec.template)]  # fmt: skip

    def by_template(values: Sequence[str], row: int) -> str:
        out = [prefix]
        for literal, k in parts:
            out.append(literal)
            if k is not None:
                out.append(str(row) if k < 0 else values[k])
        return "".join(out)

    return by_template


def _ids_of_column(mapping: Mapping) -> Callable[[list[str]], list[str]] | None:
    """Ids for a whole column at once when the id is a hash of, or is, a single property."""
    spec = mapping.id
    prefix = spec.prefix
    if spec.property is not None:
        return lambda values: [prefix + v for v in values]
    if len(spec.hash) == 1:
        sha, length, salt = _sha256, spec.length, spec.salt
        return lambda values: [prefix + sha((salt + v).encode()).hexdigest()[:length] for v in values]
    return None


def compile_mapping(
    mapping: Mapping, columns: Sequence[str] | None, divisions: DivisionSource | None = None
) -> CompiledMapping:
    """Bind the mapping to the input's columns (None for keyed rows such as JSON Lines)."""

    def no_divisions() -> Any:
        raise ConfigError("the mapping uses the `division` normaliser but no division list was given",
                          file=mapping.name)  # fmt: skip

    compiler = _Compiler(mapping, tuple(columns) if columns is not None else None, divisions or no_divisions)
    pairs = [compiler.field_pair(f) for f in mapping.fields]
    fields = tuple((f.property, pair[0]) for f, pair in zip(mapping.fields, pairs, strict=True))
    batches = tuple(pair[1] for pair in pairs)
    columns_of: dict[str, tuple[str, ...]] = {}
    sources_of: dict[str, tuple[tuple[str, ...], ...]] = {}
    for f in mapping.fields:
        alternatives: list[tuple[str, ...]] = []
        spec: FieldSpec | None = f
        while spec is not None:
            if spec.columns:
                alternatives.append(spec.columns)
            spec = spec.fallback
        sources_of[f.property] = tuple(alternatives)
        columns_of[f.property] = tuple(dict.fromkeys(c for alt in alternatives for c in alt))
    make_id, id_columns = compiler.id_fn(columns_of)
    columns_of["id"] = tuple(dict.fromkeys(id_columns))
    sources_of["id"] = (columns_of["id"],)
    if columns is None:

        def raw(row: Row, cols: tuple[str, ...]) -> str:
            assert isinstance(row, MappingABC)
            return " | ".join("" if row.get(c) is None else str(row.get(c)) for c in cols)

    else:
        index = compiler.index

        def raw(row: Row, cols: tuple[str, ...]) -> str:
            assert isinstance(row, Sequence)
            values = [row[index[c]] for c in cols if c in index]
            return " | ".join("" if v is None else v for v in values)

    return CompiledMapping(mapping=mapping, fields=fields, batches=batches, columns_of=columns_of, sources_of=sources_of,
                           make_id=make_id, id_of_values=_id_of_values(mapping),
                           ids_of_column=_ids_of_column(mapping), raw=raw)  # fmt: skip
