"""Record conformance: the record-example cases of the manifests, and records from files.

Both use the boundary validator (:func:`node.validation.get_validator`), the
reference engine (pySHACL) unless ``engine="fast"``.
"""

from __future__ import annotations

import functools
import hashlib
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from conformance._manifest import file_of
from conformance._model import Case, Expectation, Outcome, Result, Subject
from conformance._shacl_report import RecordShaclReport, type_shape
from conformance._vocab import SLT
from node.errors import InputError
from node.validation import RecordReport, decode_json, get_validator

__all__ = ["engine_subject", "run_record_examples", "check_record_files", "file_subject", "describe"]

_BATCH = 1000
_ENGINE_TITLES = {
    "shacl": "Shulian reference validator (pySHACL over the standard's shapes)",
    "fast": "Shulian fast validator (compiled from the standard's shapes)",
}


def engine_subject(engine: str, version: str) -> Subject:
    """The validator under test when the record manifests are run."""
    return Subject(f"https://w3id.org/shulian/conformance/engine/{engine}", _ENGINE_TITLES.get(engine, engine),
                   "software", version)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def file_subject(path: Path, kind: str) -> Subject:
    """A data or catalog file as the subject of a run (with its SHA-256, so a statement pins its content)."""
    p = path.resolve()
    return Subject(p.as_uri(), path.name, kind, sha256=_sha256(p))


def describe(rep: RecordReport, *, severities: tuple[str, ...] = ("Violation", "Warning", "Info")) -> list[str]:
    """One line per result: ``Violation sex [In]: 性别代码… / sex must be…``."""
    if rep.error:
        return [f"cannot validate: {rep.error}"]
    return [f"{v.severity} {v.path} [{v.constraint}]: {v.message_zh} / {v.message_en}"
            for v in rep.violations if v.severity in severities]


def _pairs(pairs: set[tuple[str, str]] | frozenset[tuple[str, str]]) -> str:
    return ", ".join(f"{p} {c}" for p, c in sorted(pairs)) or "nothing"


def _judge(exp: Expectation, rep: RecordReport) -> tuple[Outcome, str]:
    got = {v.key for v in rep.violations if v.severity == "Violation"}
    warnings = sum(1 for v in rep.violations if v.severity != "Violation")
    if exp.conforms:
        if rep.valid:
            return Outcome.PASSED, "valid, as expected" + (f" ({warnings} warning(s))" if warnings else "")
        return Outcome.FAILED, f"expected valid; rejected: {rep.error or _pairs(got)}"
    if rep.valid:
        return Outcome.FAILED, f"expected invalid ({_pairs(exp.violations)}); the record was accepted"
    missing = set(exp.violations) - got
    if missing:
        return Outcome.FAILED, f"expected {_pairs(missing)} to be reported; reported: {rep.error or _pairs(got)}"
    extra = got - set(exp.violations)
    if exp.exhaustive and extra:
        return Outcome.FAILED, f"reported more than expected: {_pairs(extra)}"
    return Outcome.PASSED, f"rejected, as expected: {_pairs(got)}"


@functools.lru_cache(maxsize=8)
def _division_codes(standard_dir: Path | None) -> frozenset[str]:
    from node.standard.divisions import load_divisions

    return frozenset(load_divisions(standard_dir))


def run_record_examples(cases: Sequence[Case], *, engine: str, standard_dir: Path | None) -> list[Result]:
    """Run ``slt:RecordExampleTest`` cases: validate each example and compare with ``mf:result``."""
    validator = get_validator(engine, standard_dir)
    subject = engine_subject(engine, validator.std.version)
    out: dict[int, Result] = {}
    pending: dict[str | None, list[tuple[int, Case, Any]]] = {}
    for i, c in enumerate(cases):
        path = file_of(c.action) if c.action else None
        if path is None or not path.is_file():
            out[i] = Result(c, Outcome.CANT_TELL, subject, f"the example file is missing: {c.action}")
            continue
        if c.expected is None:
            out[i] = Result(c, Outcome.CANT_TELL, subject, "the case has no mf:result")
            continue
        missing = [d for d in c.divisions if d not in _division_codes(standard_dir)]
        if missing:
            out[i] = Result(c, Outcome.UNTESTED, subject,
                            f"not run: the standard's division list lacks {', '.join(missing)}; import the national "
                            "list (shulian standard import-divisions) and pass --standard DIR")
            continue
        try:
            record = decode_json(path.read_bytes())
        except InputError as exc:
            out[i] = Result(c, Outcome.CANT_TELL, subject, f"{path.name}: {exc.message}")
            continue
        pending.setdefault(c.record_type, []).append((i, c, record))
    for record_type, items in pending.items():
        t0 = time.monotonic()
        reports = validator.validate_many([rec for _i, _c, rec in items], record_type)
        each = (time.monotonic() - t0) / max(len(items), 1)
        for (i, c, _rec), rep in zip(items, reports, strict=True):
            assert c.expected is not None
            outcome, message = _judge(c.expected, rep)
            out[i] = Result(c, outcome, subject, message, tuple(describe(rep)), each)
    return [out[i] for i in range(len(cases))]


def _items(paths: Sequence[str]) -> Iterator[tuple[str, int, Any, str | None]]:
    from node.cli.validate import read_records

    for p in paths:
        for item in read_records(p):
            yield p, item.line, item.record, item.error


def _record_case(file: str, file_iri: str, line: int, rid: str | None, shape: str) -> Case:
    who = f" ({rid})" if rid else ""
    return Case(
        id=f"{file}:{line}",
        iri=f"{file_iri}#record-{line}",
        name_zh=f"{file} 第 {line} 条记录{f'（{rid}）' if rid else ''}符合标准",
        name_en=f"record {line} of {file}{who} conforms to the standard",
        test_type=str(SLT.RecordConformance),
        clauses=(shape,),
        suite=file,
        action=file_iri,
    )


def check_record_files(
    files: Sequence[str],
    *,
    record_type: str | None,
    engine: str,
    standard_dir: Path | None,
) -> tuple[list[Result], RecordShaclReport]:
    """Validate every record of ``files`` (JSON Lines or JSON arrays): one result per record.

    Raises :class:`InputError` for a missing file, an unknown ``record_type``,
    a file that is not JSON Lines or a JSON array, or no records at all.
    """
    files = list(dict.fromkeys(files))
    for f in files:
        if not Path(f).is_file():
            raise InputError(f"{f}: no such file")
    validator = get_validator(engine, standard_dir)
    std = validator.std
    if record_type is not None and record_type not in validator.types:
        raise InputError(f"unknown --type {record_type!r}; the standard defines: {', '.join(validator.types)}")
    report = RecordShaclReport(std)
    subjects = {f: file_subject(Path(f), "data") for f in files}
    results: list[Result] = []
    batch: list[tuple[str, int, Any]] = []

    def flush() -> None:
        t0 = time.monotonic()
        reps = validator.validate_many([rec for _f, _l, rec in batch], record_type)
        each = (time.monotonic() - t0) / max(len(batch), 1)
        for (f, line, rec), rep in zip(batch, reps, strict=True):
            subj = subjects[f]
            report.add(subj.iri, line, rec, rep)
            case = _record_case(f, subj.iri, line, rep.id, type_shape(std, rep.type or ""))
            if rep.valid:
                warnings = len(rep.violations)
                msg = "conforms" + (f" ({warnings} warning(s))" if warnings else "")
                results.append(Result(case, Outcome.PASSED, subj, msg, tuple(describe(rep)), each))
            else:
                bad = rep.error or _pairs({v.key for v in rep.violations if v.severity == "Violation"})
                results.append(Result(case, Outcome.FAILED, subj, f"does not conform: {bad}", tuple(describe(rep)), each))
        batch.clear()

    for f, line, rec, error in _items(files):
        if error is not None:
            subj = subjects[f]
            report.not_validated += 1
            case = _record_case(f, subj.iri, line, None, type_shape(std, record_type or ""))
            results.append(Result(case, Outcome.FAILED, subj, f"unreadable: {error}"))
            continue
        batch.append((f, line, rec))
        if len(batch) >= _BATCH:
            flush()
    if batch:
        flush()
    if not results:
        raise InputError(f"no records in {', '.join(files)} (expected JSON Lines or a JSON array of records)")
    results.sort(key=lambda r: (files.index(r.case.suite), int(r.case.id.rsplit(":", 1)[1])))
    return results, report
