"""Import the responsibility list from the spreadsheet form departments keep.

One row per resource and information item (and consumer, for conditional items).
Columns (any order; extra columns are ignored and reported; Chinese or English
headers; a title row above the header is skipped):

==============  ============================================  ====================================
field           Chinese headers                               English headers
==============  ============================================  ====================================
code (req.)     信息资源代码, 资源代码                           resource code, dataset
name            信息资源名称, 资源名称                           resource name, title
item            信息项, 信息项名称, 数据项, 字段                  item, field
type (req.)     共享类型, 共享属性                              sharing type, type
condition       共享条件                                      conditions
method          共享方式                                      method
consumer        使用部门, 共享对象, 使用部门/共享对象, 需求部门     consumer
purpose         使用用途, 用途                                 purpose
until           有效期至, 有效期, 截止日期                       until, valid until
basis           依据, 共享依据, 法律依据                         basis, legal basis
masking         脱敏规则, 脱敏要求                              masking
==============  ============================================  ====================================

Cells: an item is a record key of the standard (``identityNumber``), ``名称(key)``, or
one of the names the core vocabulary gives it (身份证号, 姓名, sfzh ...); a method is a
concept of the sharing-method code list (系统对接, 共享平台 ...); a consumer cell holds one 18-character
unified social credit code per department (``市人社局(11110000000000001R)``), several
separated by 、 ; ，; purposes are separated the same way; ``until`` is a date
(2026-12-31, 2026/12/31, 2026年12月31日, 20261231, full-width digits) or 长期 for no
expiry; masking is a rule for the row's item (``keep:6:4``, ``保留前6位后4位``) or
``item=rule`` pairs.

How rows make a dataset: rows of type 3 (不予共享) in an otherwise shared resource
are items withheld from everyone; all rows 3 make a not-shared resource; rows of
type 2 make it conditional, and each (consumer, purposes, until, basis) becomes one
grant over the items of its rows; mixing 1 and 2 in one resource is refused
(split the resource, or list it as conditional and grant the items).

The file is GB18030 or UTF-8 (with or without BOM; UTF-16 with BOM too); every
problem is reported with its row and column, all at once.
"""

from __future__ import annotations

import csv
import io
import logging
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from node.errors import InputError

from ._cells import (
    REQUIRED,
    SEP_RE,
    column_letter,
    decode,
    delimiter,
    field_of,
    parse_consumers,
    parse_item,
    parse_until,
)
from ._ids import check_dataset_id
from ._standard import method_notation
from .masking import MaskRule, parse_mask_assignments
from .model import DatasetPolicy, Grant, ResponsibilityList, SharingType

__all__ = ["import_csv", "ImportResult", "CsvImportError", "CsvProblem", "parse_until"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CsvProblem:
    row: int | None
    column: str | None
    value: str | None
    message: str

    def __str__(self) -> str:
        where = []
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.column:
            where.append(f"column {self.column}")
        shown = f" (value {self.value!r})" if self.value else ""
        return f"{', '.join(where) or 'file'}: {self.message}{shown}"


class CsvImportError(InputError):
    """The spreadsheet cannot be imported; ``problems`` lists every bad cell."""

    def __init__(self, source: str, problems: list[CsvProblem]) -> None:
        shown = [f"  {p}" for p in problems[:50]]
        if len(problems) > 50:
            shown.append(f"  ... and {len(problems) - 50} more")
        super().__init__(f"{source}: {len(problems)} problem(s):\n" + "\n".join(shown))
        self.problems = tuple(problems)


@dataclass(frozen=True, slots=True)
class ImportResult:
    list: ResponsibilityList
    encoding: str
    rows: int
    ignored_columns: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()


@dataclass
class _Resource:
    first_row: int
    name: str | None = None
    name_row: int = 0
    types: dict[SharingType, int] = field(default_factory=dict)  # type -> first row
    item_types: dict[str, tuple[SharingType, int]] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    conditions: set[str] = field(default_factory=set)
    methods: set[str] = field(default_factory=set)
    basis: set[str] = field(default_factory=set)
    masking: dict[str, MaskRule] = field(default_factory=dict)
    # (consumer, purposes, until, basis) -> (items, masking, first row)
    grants: dict[
        tuple[str, tuple[str, ...], date | None, str | None], tuple[set[str], dict[str, MaskRule], int]
    ] = field(default_factory=dict)


class _Reader:
    def __init__(self, source: str) -> None:
        self.source = source
        self.problems: list[CsvProblem] = []
        self.warnings: list[str] = []
        self.resources: dict[str, _Resource] = {}
        self.columns: dict[str, tuple[int, str]] = {}  # field -> (index, shown name)

    def problem(self, row: int | None, fld: str | None, value: str | None, message: str) -> None:
        column = self.columns[fld][1] if fld in self.columns else fld
        self.problems.append(CsvProblem(row, column, value, message))

    def find_header(self, records: list[list[str]]) -> int:
        for index, record in enumerate(records[:10]):
            fields = {field_of(c) for c in record if c.strip()}
            if all(f in fields for f in REQUIRED):
                return index
        first = next((r for r in records if any(c.strip() for c in r)), [])
        raise InputError(
            f"{self.source}: no header row with the required columns 信息资源代码 (resource code) and "
            f"共享类型 (sharing type) in the first 10 rows; found {', '.join(c for c in first if c.strip()) or 'nothing'}"
        )

    def map_columns(self, header: list[str]) -> list[str]:
        ignored = []
        for index, text in enumerate(header):
            if not text.strip():
                continue
            fld = field_of(text)
            shown = f"{text.strip()} ({column_letter(index)})"
            if fld is None:
                ignored.append(text.strip())
            elif fld in self.columns:
                raise InputError(
                    f"{self.source}: columns {self.columns[fld][1]} and {shown} both mean {fld!r}; keep one"
                )
            else:
                self.columns[fld] = (index, shown)
        return ignored

    def cell(self, record: list[str], fld: str) -> str:
        if fld not in self.columns:
            return ""
        index = self.columns[fld][0]
        return record[index].strip() if index < len(record) else ""

    def read_row(self, row: int, record: list[str]) -> None:
        raw_code = self.cell(record, "code")
        raw_type = self.cell(record, "type")
        if not raw_code:
            self.problem(row, "code", None, "the resource code is empty")
            return
        try:
            code = check_dataset_id(raw_code)
        except ValueError as exc:
            self.problem(row, "code", raw_code, str(exc))
            return
        try:
            kind = SharingType.parse(raw_type) if raw_type else None
        except ValueError as exc:
            self.problem(row, "type", raw_type, str(exc))
            kind = None
        if kind is None:
            if not raw_type:
                self.problem(
                    row,
                    "type",
                    None,
                    "the sharing type is empty; write 1/无条件共享, 2/有条件共享 or 3/不予共享",
                )
            return
        res = self.resources.setdefault(code, _Resource(first_row=row))
        res.types.setdefault(kind, row)
        name = self.cell(record, "name")
        if name:
            if res.name and res.name != name:
                self.problem(
                    row, "name", name, f"resource {code} is named {res.name!r} in row {res.name_row}"
                )
            elif not res.name:
                res.name, res.name_row = name, row
        items = self._items(row, record, code, kind, res)
        for fld, bucket in (("condition", res.conditions), ("basis", res.basis)):
            text = self.cell(record, fld)
            if text:
                bucket.add(text)
        for piece in SEP_RE.split(self.cell(record, "method")):
            if piece.strip():
                try:
                    res.methods.add(method_notation(piece.strip()))
                except ValueError as exc:
                    self.problem(row, "method", piece.strip(), str(exc))
        masking = self._masking(row, record, items)
        consumers_text = self.cell(record, "consumer")
        if kind is SharingType.CONDITIONAL and consumers_text:
            self._grant_rows(row, record, res, items, masking, consumers_text)
        else:
            self._non_grant_row(row, record, code, kind, res, items, masking, consumers_text)

    def _items(self, row: int, record: list[str], code: str, kind: SharingType, res: _Resource) -> list[str]:
        items: list[str] = []
        text = self.cell(record, "item")
        for piece in SEP_RE.split(text) if text else []:
            if not piece.strip():
                continue
            try:
                key, label = parse_item(piece)
            except ValueError as exc:
                self.problem(row, "item", piece.strip(), str(exc))
                continue
            seen = res.item_types.get(key)
            if seen and seen[0] is not kind:
                self.problem(
                    row,
                    "item",
                    piece.strip(),
                    f"item {key} of {code} is {seen[0].label_zh} in row {seen[1]} and {kind.label_zh} here",
                )
                continue
            res.item_types.setdefault(key, (kind, row))
            if label:
                if res.labels.get(key, label) != label:
                    self.problem(
                        row, "item", piece.strip(), f"item {key} is named {res.labels[key]!r} elsewhere"
                    )
                res.labels.setdefault(key, label)
            items.append(key)
        return items

    def _masking(self, row: int, record: list[str], items: list[str]) -> dict[str, MaskRule]:
        text = self.cell(record, "masking")
        if not text:
            return {}
        try:
            if "=" in text:
                rules = parse_mask_assignments([text])
                stray = sorted(set(rules) - set(items) - {"id"})
                if stray:
                    raise ValueError(f"masking names item(s) {', '.join(stray)} not in this row's items")
                return rules
            if not items:
                raise ValueError("a masking rule needs the row's item (信息项)")
            rule = MaskRule.parse(text)
            return dict.fromkeys(items, rule)
        except ValueError as exc:
            self.problem(row, "masking", text, str(exc))
            return {}

    def _grant_rows(
        self,
        row: int,
        record: list[str],
        res: _Resource,
        items: list[str],
        masking: dict[str, MaskRule],
        consumers_text: str,
    ) -> None:
        try:
            consumers = parse_consumers(consumers_text)
        except ValueError as exc:
            self.problem(row, "consumer", consumers_text, str(exc))
            consumers = []
        purposes = tuple(p.strip() for p in SEP_RE.split(self.cell(record, "purpose")) if p.strip())
        if not purposes:
            self.problem(row, "purpose", None, "a grant needs the purpose of use (使用用途)")
        until_text = self.cell(record, "until")
        until: date | None = None
        if not until_text:
            self.problem(row, "until", None, "a grant needs an expiry date (有效期至), or 长期 for none")
        else:
            try:
                until = parse_until(until_text)
            except ValueError as exc:
                self.problem(row, "until", until_text, str(exc))
        if not items:
            self.problem(row, "item", None, "a grant needs the item(s) it covers (信息项)")
        basis = self.cell(record, "basis") or None
        for consumer in consumers:
            key = (consumer, tuple(sorted(purposes)), until, basis)
            granted, masks, _first = res.grants.setdefault(key, (set(), {}, row))
            granted.update(items)
            for item, rule in masking.items():
                if masks.get(item, rule) != rule:
                    self.problem(
                        row, "masking", str(rule), f"item {item} has another masking rule for {consumer}"
                    )
                masks[item] = rule

    def _non_grant_row(
        self,
        row: int,
        record: list[str],
        code: str,
        kind: SharingType,
        res: _Resource,
        items: list[str],
        masking: dict[str, MaskRule],
        consumers_text: str,
    ) -> None:
        if kind is SharingType.NOT_SHARED:
            if consumers_text:
                self.problem(row, "consumer", consumers_text, "a not-shared (不予共享) item has no consumer")
            if masking:
                self.problem(
                    row, "masking", self.cell(record, "masking"), "a not-shared (不予共享) item is not masked"
                )
            return
        if kind is SharingType.UNCONDITIONAL:
            if consumers_text or self.cell(record, "purpose") or self.cell(record, "until"):
                self.warnings.append(
                    f"row {row}: {code} is unconditional (无条件共享): consumer, purpose and until are ignored "
                    "(every federation member may receive it)"
                )
            for item, rule in masking.items():
                if res.masking.get(item, rule) != rule:
                    self.problem(row, "masking", str(rule), f"item {item} has another masking rule")
                res.masking[item] = rule
            return
        # conditional without a consumer: declares items only
        if masking:
            self.problem(
                row,
                "masking",
                self.cell(record, "masking"),
                "masking of a conditional item belongs to a grant: give the consumer (使用部门)",
            )
        if self.cell(record, "purpose") or self.cell(record, "until"):
            self.warnings.append(f"row {row}: purpose/until without a consumer are ignored")

    def build(self, provider_code: str | None, title: str | None) -> ResponsibilityList:
        datasets = []
        for code, res in self.resources.items():
            ds = self._dataset(code, res)
            if ds is not None:
                datasets.append(ds)
        try:
            return ResponsibilityList(tuple(datasets), provider_code=provider_code, title=title)
        except InputError as exc:
            self.problems.append(CsvProblem(None, None, None, exc.message))
            return ResponsibilityList()

    def _dataset(self, code: str, res: _Resource) -> DatasetPolicy | None:
        types = res.types
        if SharingType.UNCONDITIONAL in types and SharingType.CONDITIONAL in types:
            self.problem(
                max(types[SharingType.UNCONDITIONAL], types[SharingType.CONDITIONAL]),
                "type",
                None,
                f"resource {code} mixes 无条件共享 and 有条件共享 items; split the resource, "
                "or list it as 有条件共享 and grant the items",
            )
            return None
        if SharingType.CONDITIONAL in types:
            kind = SharingType.CONDITIONAL
        elif SharingType.UNCONDITIONAL in types:
            kind = SharingType.UNCONDITIONAL
        else:
            kind = SharingType.NOT_SHARED
        if kind is not SharingType.UNCONDITIONAL and not res.basis:
            self.problem(
                res.first_row,
                "basis",
                None,
                f"resource {code} is {kind.label_zh} and must cite its basis (依据)",
            )
            return None
        withheld = (
            []
            if kind is SharingType.NOT_SHARED
            else [k for k, (t, _) in res.item_types.items() if t is SharingType.NOT_SHARED]
        )
        if withheld and not res.basis:
            row = min(r for k, (t, r) in res.item_types.items() if t is SharingType.NOT_SHARED)
            self.problem(
                row,
                "basis",
                None,
                f"resource {code} withholds item(s) (不予共享) and must cite the basis (依据)",
            )
            return None
        grants = []
        for (consumer, purposes, until, basis), (items, masks, row) in res.grants.items():
            if not items or not purposes:
                continue  # already reported on its row
            try:
                grants.append(
                    Grant.create(
                        dataset_id=code,
                        consumer_code=consumer,
                        items=items,
                        purposes=purposes,
                        until=until,
                        masking=masks,
                        basis=basis,
                    )
                )
            except InputError as exc:
                self.problem(row, None, None, exc.message)
        try:
            return DatasetPolicy(
                dataset_id=code,
                sharing_type=kind,
                title=res.name,
                items=tuple(res.item_types),
                item_labels=tuple(res.labels.items()),
                withheld=tuple(withheld),
                masking=tuple(res.masking.items()),
                conditions=tuple(res.conditions),
                methods=tuple(res.methods),
                basis=tuple(res.basis),
                grants=tuple(grants),
            )
        except InputError as exc:
            self.problem(res.first_row, None, None, exc.message)
            return None


def import_csv(
    source: Path | bytes,
    *,
    provider_code: str | None = None,
    title: str | None = None,
    name: str | None = None,
) -> ImportResult:
    """Read a responsibility-list spreadsheet (CSV) into a :class:`ResponsibilityList`.

    Raises :class:`CsvImportError` listing every problem with its row and column.
    """
    if isinstance(source, Path):
        label = name or str(source)
        try:
            data = source.read_bytes()
        except OSError as exc:
            raise InputError(f"{label}: cannot read: {exc.strerror or exc}") from exc
    else:
        label = name or "<csv>"
        data = source
    text, encoding = decode(data, label)
    try:
        records = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter(text)))
    except csv.Error as exc:
        raise InputError(f"{label}: not a readable CSV file: {exc}") from exc
    reader = _Reader(label)
    header_index = reader.find_header(records)
    ignored = reader.map_columns(records[header_index])
    if title is None and header_index > 0:
        cells = [c.strip() for c in records[0] if c.strip()]
        title = cells[0] if len(cells) == 1 else None
    rows = 0
    for index in range(header_index + 1, len(records)):
        record = records[index]
        if not any(c.strip() for c in record):
            continue
        rows += 1
        reader.read_row(index + 1, record)
    if rows == 0:
        reader.problems.append(CsvProblem(None, None, None, "no data rows under the header"))
    lst = reader.build(provider_code, title)
    if reader.problems:
        raise CsvImportError(label, reader.problems)
    for w in reader.warnings:
        log.warning("%s: %s", label, w)
    return ImportResult(lst, encoding, rows, tuple(ignored), tuple(reader.warnings))
