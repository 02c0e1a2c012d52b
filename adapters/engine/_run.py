"""``shulian map``: read, map, validate, write; every row ends in the output or the rejects."""

from __future__ import annotations

import csv
import logging
import os
import re
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from contextlib import ExitStack
from operator import attrgetter, itemgetter
from pathlib import Path
from typing import Any

from orjson import dumps as _dumps

from adapters.engine._block import ID_PATTERN, BlockMapper, Outcome, record_encoder
from adapters.engine._output import AtomicText
from adapters.engine._pipeline import ValidatorPool
from adapters.engine._report import REJECT_COLUMNS, MapReport, Reject
from adapters.engine._validator import Validator, validate_batch
from adapters.mapping import CompiledMapping, Mapping, compile_mapping
from adapters.normalise import DivisionIndex, load_division_csvs, load_standard_divisions
from adapters.readers import Row, Source, iter_blocks, open_source, redact_dsn

__all__ = ["run_mapping", "division_source", "auto_workers", "ID_PATTERN"]

log = logging.getLogger(__name__)

_BLOCK = 1024
_WORKER_MIN_BYTES = 8 << 20
_VALID = attrgetter("valid")
_RECORD = itemgetter(2)
_VIOLATIONS = attrgetter("violations")
_PATH_TOKENS = re.compile(r"[#/:.\[\]$<>\s]+")


def division_source(
    csv_paths: Sequence[str | Path] = (), standard_dir: str | Path | None = None
) -> Callable[[], DivisionIndex]:
    """A lazy loader of the division list: CSV files if given, else the standard's imported list."""
    built: list[DivisionIndex] = []

    def load() -> DivisionIndex:
        if not built:
            entries = load_division_csvs(csv_paths) if csv_paths else load_standard_divisions(standard_dir)
            built.append(DivisionIndex(entries))
        return built[0]

    return load


def _property_of(path: str) -> str:
    tokens = [t for t in _PATH_TOKENS.split(path or "") if t]
    return tokens[-1] if tokens else ""


class _Progress:
    def __init__(self, source: Source, enabled: bool, label: str) -> None:
        self.source = source
        self._bar: Any = None
        if enabled:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            done, total = source.progress()
            self._bar = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                TextColumn("{task.percentage:>3.0f}%") if total else MofNCompleteColumn(),
                TextColumn("{task.fields[rows]} rows"),
                TimeRemainingColumn(),
                console=Console(stderr=True),
            )
            self._bar.start()
            self._task = self._bar.add_task(label, total=total, rows=0)

    def update(self, rows: int) -> None:
        if self._bar is not None:
            done, _ = self.source.progress()
            self._bar.update(self._task, completed=done, rows=rows)

    def close(self, rows: int) -> None:
        if self._bar is not None:
            done, total = self.source.progress()
            self._bar.update(self._task, completed=total or done, rows=rows)
            self._bar.stop()


class _Run:
    """Writes outcomes in row order: records (validated first when a validator is given) and rejects."""

    def __init__(self, compiled: CompiledMapping, report: MapReport, write_out: Callable[[bytes], Any],
                 reject_writer: Any, validator: Validator | None) -> None:  # fmt: skip
        self.compiled = compiled
        self.report = report
        self.write_out = write_out  # the output file, binary: UTF-8 JSON lines
        self.reject_writer = reject_writer
        self.validator = validator
        self.encode = record_encoder(["id", "type", *(f.property for f in compiled.mapping.fields)])
        # records checked column by column, without making them (node.validation's fast engine)
        self.unclear: Callable[[str, dict[str, Any]], list[int] | None] | None = getattr(
            validator, "unclear_rows", None
        )

    def encode_bytes(self, record: dict[str, str]) -> bytes:
        """A record's JSON line as UTF-8: orjson, whose output for a dict of strings is the
        stdlib's (``json.dumps(ensure_ascii=False, separators=(",", ":"))``, as ``encode``
        writes it); ``encode`` for anything orjson refuses."""
        try:
            return _dumps(record)
        except TypeError:
            return self.encode(record).encode("utf-8")

    def reject(self, entries: Iterable[Reject]) -> None:
        r = self.report
        r.rows_rejected += 1
        for e in entries:
            r.reject_entries += 1
            r.by_stage[e.stage] += 1
            r.by_constraint[e.constraint] += 1
            if e.column:
                r.by_column[e.column] += 1
            self.reject_writer.writerow(e.as_row())

    def write_text(self, text: str, count: int, rejects: list[list[Reject]]) -> None:
        """Write a block's ``count`` JSON lines (``text``) and its rejected rows' entries."""
        for entries in rejects:
            self.reject(entries)
        if count:
            self.write_out(text.encode("utf-8"))
            self.report.rows_out += count

    def validate(self, records: list[dict[str, str]]) -> list[Any]:
        assert self.validator is not None
        reports = validate_batch(self.validator, records, self.compiled.mapping.type) if records else []
        if len(reports) != len(records):
            raise RuntimeError(f"validator returned {len(reports)} reports for {len(records)} records")
        return reports

    def write_validated(self, outcomes: list[Outcome], reports: list[Any]) -> None:
        """Write a block's validated records, or their violations, in row order. ``reports`` are
        the validator's, one a record."""
        records = len(outcomes) - list(map(_RECORD, outcomes)).count(None)
        if len(reports) != records:
            raise RuntimeError(f"{len(reports)} validation reports for {records} records")
        encode = self.encode_bytes
        if records == len(outcomes) and all(map(_VALID, reports)):  # every row a valid record
            lines = list(map(encode, map(_RECORD, outcomes)))
            self.report.warnings += sum(map(len, map(_VIOLATIONS, reports)))
        else:
            lines = []
            next_report = iter(reports)
            for rownum, row, record, rejects in outcomes:
                if record is None:
                    self.reject(rejects or ())
                    continue
                rep = next(next_report)
                if rep.valid:
                    self.report.warnings += len(rep.violations)
                    lines.append(encode(record))
                    continue
                self.reject(self.violation_rejects(rownum, row, record, rep))
        if lines:
            lines.append(b"")
            self.write_out(b"\n".join(lines))
            self.report.rows_out += len(lines) - 1

    def write_checked(self, mapper: BlockMapper, numbers: Sequence[int], rows: Sequence[Any], fast: Any) -> bool:
        """Validate and write a block mapped column by column (:meth:`BlockMapper.columns`): the
        validator checks the complete rows' columns as they are and names the rows it cannot
        pass outright; only those (and the block's special rows) become records and get a
        report. False, with nothing written, when the validator cannot check these columns."""
        assert self.unclear is not None
        clean, ids, columns, extra = fast
        by_key = dict(zip(mapper.props, columns, strict=True))
        by_key["id"] = ids
        unclear = self.unclear(self.compiled.mapping.type, by_key)
        if unclear is None:
            return False
        text = mapper.clean_text(ids, columns)  # the complete rows' JSON lines, valid or not
        if not unclear and not extra:  # every row a complete record, each simply valid
            if ids:
                self.write_out(text.encode("utf-8"))
                self.report.rows_out += len(ids)
            return True
        lines = text.split("\n")
        # in row order: the line of a simply valid complete row, or an outcome to report on
        doubtful = set(unclear)
        entries: list[str | Outcome] = []
        records: list[dict[str, str]] = []
        j = 0  # the next complete row
        for i in range(len(numbers)):
            outcome = extra.get(i)
            if outcome is None:
                if j not in doubtful:
                    entries.append(lines[j])
                    j += 1
                    continue
                outcome = (numbers[i], rows[i], mapper.record_at(ids, columns, j), None)
                j += 1
            entries.append(outcome)
            if outcome[2] is not None:
                records.append(outcome[2])
        reports = iter(self.validate(records))
        out: list[str] = []
        for entry in entries:
            if isinstance(entry, str):
                out.append(entry)
                continue
            rownum, row, record, rejects = entry
            if record is None:
                self.reject(rejects or ())
                continue
            rep = next(reports)
            if rep.valid:
                self.report.warnings += len(rep.violations)
                out.append(self.encode(record))
            else:
                self.reject(self.violation_rejects(rownum, row, record, rep))
        if out:
            self.write_out(("\n".join(out) + "\n").encode("utf-8"))
            self.report.rows_out += len(out)
        return True

    def violation_rejects(self, rownum: int, row: Row, record: dict[str, str], rep: Any) -> list[Reject]:
        violations = list(rep.violations)
        serious = [v for v in violations if "violation" in str(getattr(v, "severity", "violation")).lower()]
        out: list[Reject] = []
        for v in serious or violations:
            prop = _property_of(str(v.path))
            cols, raw = self.source_of(prop, row)
            mapped = record.get(prop)
            reason = str(v.message_en)
            if mapped is not None and mapped != raw:
                reason += f" (mapped value {mapped!r})"
            out.append(Reject(rownum, "+".join(cols), raw, prop, "validation", str(v.constraint), reason,
                              str(v.message_zh)))  # fmt: skip
        if not out:  # invalid without a violation: the validator says why in `error`
            why = str(getattr(rep, "error", None) or "the record is invalid")
            out.append(Reject(rownum, "", "", "", "validation", "invalid", why, why))
        return out

    def source_of(self, prop: str, row: Row) -> tuple[tuple[str, ...], str]:
        """The source columns a property came from (the first alternative that has a value) and their text."""
        alternatives = self.compiled.sources_of.get(prop, ())
        for cols in alternatives:
            raw = self.compiled.raw(row, cols)
            if raw.strip(" |"):
                return cols, raw
        return (alternatives[0], "") if alternatives else ((), "")


def run_mapping(
    mapping: Mapping,
    input_name: str,
    output: str | Path,
    rejects: str | Path,
    *,
    validator: Validator | None = None,
    divisions: Callable[[], DivisionIndex] | None = None,
    progress: bool = False,
    standard: str | None = None,
    workers: int = 0,
    standard_dir: str | Path | None = None,
) -> MapReport:
    """Map one input. Records go to ``output`` (JSON Lines), rejected rows to ``rejects`` (CSV, UTF-8
    with BOM so spreadsheet programs show Chinese). Both files are replaced whole at the end.

    ``validator`` None writes records unvalidated (the report says so). With ``workers`` > 0
    validation runs in that many worker processes (each loading the fast validator of the
    standard at ``standard_dir``), pipelined with the mapping. Raises
    :class:`~node.errors.ConfigError` / :class:`~node.errors.InputError` for a broken
    mapping or input; rows that cannot be mapped are never errors, they are rejects.
    """
    started = time.perf_counter()
    shown_input = redact_dsn(input_name) if (mapping.reader.format == "sql") else input_name
    report = MapReport(mapping=mapping.name, input=shown_input, output=str(output), rejects=str(rejects),
                       type=mapping.type, validated=validator is not None, standard=standard)  # fmt: skip
    with ExitStack() as stack:
        source = open_source(input_name, mapping.reader)
        stack.callback(source.close)
        report.source = dict(source.details)
        compiled = compile_mapping(mapping, source.columns, divisions)
        out = stack.enter_context(AtomicText(output, encoding=None))
        rej = stack.enter_context(AtomicText(rejects, encoding="utf-8-sig", newline=""))
        reject_writer = csv.writer(rej)
        reject_writer.writerow(REJECT_COLUMNS)
        bar = _Progress(source, progress, Path(input_name).name)
        run = _Run(compiled, report, out.write, reject_writer, validator)
        pool = None
        if validator is not None and workers > 0:
            pool = stack.enter_context(ValidatorPool(workers, standard_dir, mapping.type))
        try:
            _loop(source, compiled, run, bar, pool)
        finally:
            bar.close(report.rows_in)
    report.elapsed_s = time.perf_counter() - started
    if not report.balanced:  # pragma: no cover - the loop accounts for every row
        raise AssertionError(f"rows do not add up: {report.to_dict()}")
    return report


def _loop(source: Source, compiled: CompiledMapping, run: _Run, bar: _Progress, pool: ValidatorPool | None) -> None:
    mapper = BlockMapper(compiled, len(source.columns) if source.columns is not None else None)
    report = run.report
    waiting: deque[list[Outcome]] = deque()
    for numbers, rows, has_bad in iter_blocks(source, _BLOCK):
        report.rows_in += len(rows)
        if run.validator is None:
            run.write_text(*mapper.text(numbers, rows, has_bad))
        elif pool is None:
            fast = mapper.columns(numbers, rows, has_bad)
            if fast is None or run.unclear is None or not run.write_checked(mapper, numbers, rows, fast):
                outcomes = mapper.outcomes(numbers, rows, True) if has_bad else mapper.outcomes_of(numbers, rows, fast)
                run.write_validated(outcomes, run.validate(_records(outcomes)))
        else:  # validated in the workers while the next blocks are mapped here
            outcomes = mapper.outcomes(numbers, rows, has_bad)
            pool.submit(_records(outcomes))
            waiting.append(outcomes)
            while pool.in_flight > 2 * pool.workers:
                run.write_validated(waiting.popleft(), pool.collect())
        bar.update(report.rows_in)
    while waiting:
        assert pool is not None
        run.write_validated(waiting.popleft(), pool.collect())


def _records(outcomes: list[Outcome]) -> list[dict[str, str]]:
    found = list(map(_RECORD, outcomes))
    if None in found:
        return [r for r in found if r is not None]
    return found


def auto_workers(input_name: str, validator: Validator | None = None) -> int:
    """Validation worker processes worth starting for an input. None for a validator that checks
    mapped columns in-process (``unclear_rows``, the standard's fast validator): that costs less
    a row than passing the records to a worker. Otherwise one when a core is idle (the machine
    has a second core and its load leaves one free) and the input is large enough to repay a
    worker's start (a few tenths of a second): a worker on a busy machine only adds the cost of
    passing records to it."""
    if validator is not None and getattr(validator, "unclear_rows", None) is not None:
        return 0
    try:
        size = Path(input_name).stat().st_size
    except OSError:
        return 0  # a DSN, or missing (the reader will say so)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        load = os.getloadavg()[0]
    except OSError:  # pragma: no cover - not on this platform
        load = 0.0
    return 1 if cores >= 2 and load <= cores - 1 and size >= _WORKER_MIN_BYTES else 0
