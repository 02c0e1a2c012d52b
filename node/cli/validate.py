"""``shulian validate``: records (JSON Lines or a JSON array) or a catalog against the standard."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from node.cli._common import echo_json, fail_cleanly, standard_option
from node.errors import EXIT_FINDINGS, EXIT_OK, EXIT_USAGE, InputError
from node.validation import RecordReport, decode_json, get_validator

__all__ = ["validate", "read_records", "Item"]

_BATCH = 1000


@dataclass
class Item:
    file: str
    line: int
    record: Any = None
    error: str | None = None


def read_records(path: str) -> Iterator[Item]:
    """Records of a JSON Lines file or a JSON array, each with its line (or element) number.

    A line that is not JSON yields an Item with ``error``; reading goes on.
    """
    p = Path(path)
    try:
        fh = p.open("rb")
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror}") from exc
    with fh:
        head = fh.read(4096)
        fh.seek(0)
        first = head.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
        if first == b"[":
            data = fh.read()
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise InputError(f"{path}: not valid UTF-8 at byte {exc.start}") from exc
            try:
                arr = decode_json(text) if len(data) < 16 * 1024 * 1024 else json.loads(text)
            except (InputError, ValueError, RecursionError) as exc:
                raise InputError(f"{path}: not a JSON array of records: {exc}") from exc
            if not isinstance(arr, list):
                raise InputError(f"{path}: expected a JSON array")
            for i, rec in enumerate(arr, start=1):
                yield Item(path, i, rec)
            return
        for n, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            try:
                yield Item(path, n, decode_json(raw.rstrip(b"\r\n")))
            except InputError as exc:
                yield Item(path, n, error=exc.message)


def _print_text(item: Item, rep: RecordReport | None) -> None:
    where = f"{item.file}:{item.line}"
    if rep is None:
        click.echo(f"{where}: unreadable: {item.error}")
        return
    rid = rep.id if rep.id is not None else "(no id)"
    if rep.error:
        click.echo(f"{where} {rid}: cannot validate: {rep.error}")
        return
    if rep.valid and not rep.violations:
        return
    status = "valid (with warnings)" if rep.valid else "INVALID"
    click.echo(f"{where} {rid}: {status}")
    for v in rep.violations:
        click.echo(f"    {v.path}  [{v.constraint}, {v.severity}]  {v.message_zh} / {v.message_en}")


def _json_line(item: Item, rep: RecordReport | None) -> dict[str, Any]:
    if rep is None:
        return {"file": item.file, "line": item.line, "id": None, "valid": False, "violations": [],
                "error": f"not JSON: {item.error}"}
    out: dict[str, Any] = {"file": item.file, "line": item.line, "id": rep.id, "type": rep.type,
                           "valid": rep.valid, "violations": [v.to_json() for v in rep.violations]}
    if rep.error:
        out["error"] = rep.error
    return out


@click.command()
@click.argument("files", nargs=-1, type=click.Path(dir_okay=False))
@click.option("--type", "record_type", default=None, help="Record type (else each record's \"type\" key).")
@click.option("--engine", type=click.Choice(["fast", "shacl"]), default="fast", show_default=True,
              help="fast: the compiled validator; shacl: the reference (pySHACL).")
@click.option("--report", "report_format", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--catalog", "catalog_file", type=click.Path(dir_okay=False), default=None,
              help="Check dataset metadata (Turtle or JSON-LD) against the catalog profile instead.")
@standard_option
@fail_cleanly
def validate(files: tuple[str, ...], record_type: str | None, engine: str, report_format: str,
             catalog_file: str | None, standard_dir: str | None) -> None:
    """Validate records against the standard.

    FILE is JSON Lines or a JSON array. Exit 0 when all records are valid, 1
    when any is invalid, 2 on a usage or input error (a line that is not JSON
    is reported with its line number and the rest is still validated).

    \b
    Examples:
      shulian validate people.jsonl --type Person
      shulian validate people.jsonl --type Person --engine shacl --report json
      shulian validate --catalog catalog.ttl
    """
    if catalog_file:
        sys.exit(_validate_catalog(catalog_file, report_format, standard_dir))
    if not files:
        raise InputError("give at least one FILE (JSON Lines or a JSON array), or --catalog FILE.ttl")
    for f in files:
        if not Path(f).is_file():
            raise InputError(f"{f}: no such file")
    validator = get_validator(engine, standard_dir)
    if record_type is not None and record_type not in validator.types:
        raise InputError(f"unknown --type {record_type!r}; the standard defines: {', '.join(validator.types)}")
    counts = {"records": 0, "valid": 0, "invalid": 0, "unreadable": 0}

    def flush(batch: list[Item]) -> None:
        reports = validator.validate_many([it.record for it in batch], record_type)
        for it, rep in zip(batch, reports, strict=True):
            counts["records"] += 1
            counts["valid" if rep.valid else "invalid"] += 1
            if report_format == "json":
                echo_json(_json_line(it, rep))
            else:
                _print_text(it, rep)

    batch: list[Item] = []
    size = 1 if engine == "fast" else _BATCH
    for f in files:
        for item in read_records(f):
            if item.error is not None:
                counts["unreadable"] += 1
                if report_format == "json":
                    echo_json(_json_line(item, None))
                else:
                    _print_text(item, None)
                continue
            batch.append(item)
            if len(batch) >= size:
                flush(batch)
                batch = []
    if batch:
        flush(batch)
    summary = (f"{counts['records']} records: {counts['valid']} valid, {counts['invalid']} invalid"
               + (f", {counts['unreadable']} unreadable lines" if counts["unreadable"] else ""))
    click.echo(summary, err=report_format == "json")
    if counts["unreadable"]:
        sys.exit(EXIT_USAGE)
    sys.exit(EXIT_FINDINGS if counts["invalid"] else EXIT_OK)


def _validate_catalog(path: str, report_format: str, standard_dir: str | None = None) -> int:
    from node.catalog.profile import validate_catalog

    report = validate_catalog(path, standard_dir=standard_dir)
    if report_format == "json":
        echo_json(report.to_dict())
    else:
        verdict = "conforms to" if report.conforms else "does NOT conform to"
        click.echo(f"{path}: {verdict} the catalog profile ({len(report.violations)} violations, "
                   f"{len(report.warnings)} warnings)")
        for r in report.results:
            click.echo(f"    {r.severity}: {r.focus} {r.path or ''}: {r.message_zh} / {r.message_en}")
    return EXIT_OK if report.conforms else EXIT_FINDINGS
