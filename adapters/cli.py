"""``shulian map``: bring local data onto the standard, and propose mappings.

``shulian map --mapping M.toml INPUT -o OUT.jsonl`` runs a mapping (the group's
default command, also reachable as ``shulian map run``); ``shulian map suggest``
proposes a mapping file.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import click

from node.errors import EXIT_USAGE, ShulianError

__all__ = ["map_group"]

log = logging.getLogger(__name__)


class _DefaultRunGroup(click.Group):
    """A group whose default subcommand is ``run``: ``shulian map --mapping M.toml IN -o OUT`` works."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ctx.help_option_names:
            args = ["run", *args]
        return super().parse_args(ctx, args)


def _fail(exc: ShulianError | OSError) -> None:
    if isinstance(exc, ShulianError):
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code or EXIT_USAGE)
    click.echo(f"error: {exc.filename or ''}: {exc.strerror or exc}", err=True)
    sys.exit(EXIT_USAGE)


def _division_csvs(paths: Sequence[Path]) -> list[Path]:
    found: list[Path] = []
    for p in paths:
        found.extend(sorted(p.glob("*.csv")) if p.is_dir() else [p])
    return found


@click.group(cls=_DefaultRunGroup, context_settings={"help_option_names": ["-h", "--help"]})
def map_group() -> None:
    """Map local data (CSV, JSON Lines, Excel, SQL) onto the standard's records.

    \b
    Examples:
      shulian map --mapping county.toml households.csv -o people.jsonl --rejects rejects.csv
      shulian map suggest households.csv --type Person -o county.toml

    Exit codes: 0 every row mapped, 1 some rows rejected, 2 a mapping or input error.
    """


@map_group.command("run")
@click.option("--mapping", "-m", "mapping_path", required=True, type=click.Path(path_type=Path),
              help="The mapping file (TOML, or YAML).")
@click.argument("input_name", metavar="INPUT")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Where mapped records go (JSON Lines).")
@click.option("--rejects", type=click.Path(dir_okay=False, path_type=Path),
              help="Where rejected rows go (CSV: row, column, value, reason). Default: OUTPUT.rejects.csv.")
@click.option("--report", type=click.Path(dir_okay=False, path_type=Path), help="Write a JSON report of the run here.")
@click.option("--standard", "standard_dir", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Validate against the standard in DIR (default: the shipped one).")
@click.option("--divisions", "division_paths", multiple=True, type=click.Path(exists=True, path_type=Path),
              help="Division list CSV(s) or a folder of them for the `division` normaliser "
                   "(default: the standard's imported list).")
@click.option("--no-validate", is_flag=True, help="Write records without validating them (the report says so).")
@click.option("--workers", type=click.IntRange(0, 64), default=None,
              help="Validation worker processes, pipelined with the mapping (0: validate in-process, the "
                   "default: the standard's validator checks mapped columns faster than a worker can be fed).")
@click.option("--progress/--no-progress", default=None, help="Progress bar on stderr (default: when stderr is a terminal).")
def run_command(mapping_path: Path, input_name: str, output: Path, rejects: Path | None, report: Path | None,
                standard_dir: Path | None, division_paths: tuple[Path, ...], no_validate: bool,
                workers: int | None, progress: bool | None) -> None:  # fmt: skip
    """Map INPUT with a mapping file; write records, rejects and a report.

    INPUT is a file (.csv, .jsonl, .xlsx), or for a `sql` mapping the database
    (a SQLite file, or the DSN given to the mapping's `connect`). Every row ends
    in OUTPUT or in the rejects file; records are validated against the standard
    before they are written.

    \b
    Example:
      shulian map --mapping county.toml households.csv -o people.jsonl \\
          --rejects rejects.csv --report report.json
    """
    from adapters.engine import auto_workers, division_source, load_validator, run_mapping
    from adapters.mapping import load_mapping

    rejects = rejects or output.with_name(output.stem + ".rejects.csv")
    paths = {output.resolve(), rejects.resolve()} | ({report.resolve()} if report else set())
    if len(paths) != 2 + (1 if report else 0):
        raise click.UsageError("--output, --rejects and --report must be different files")
    try:
        mapping = load_mapping(mapping_path)
        validator = None if no_validate else load_validator(standard_dir)
        divisions = division_source(_division_csvs(division_paths), standard_dir)
        show = progress if progress is not None else sys.stderr.isatty()
        jobs = (auto_workers(input_name, validator) if workers is None else workers) if validator is not None else 0
        result = run_mapping(mapping, input_name, output, rejects, validator=validator, divisions=divisions,
                             progress=show, standard=str(standard_dir) if standard_dir else None,
                             workers=jobs, standard_dir=standard_dir)  # fmt: skip
        if report is not None:
            try:
                report.write_text(json.dumps(result.to_dict(), ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
            except OSError as exc:
                from node.errors import InputError

                raise InputError(f"cannot write the report {report}: {exc.strerror or exc}") from exc
    except (ShulianError, OSError) as exc:
        _fail(exc)
        return
    checked = "validated" if result.validated else "NOT validated (--no-validate)"
    click.echo(
        f"{result.rows_in} rows read from {result.input}: {result.rows_out} records written to {output} "
        f"({checked}), {result.rows_rejected} rows rejected to {rejects}",
        err=True,
    )
    sys.exit(result.exit_code)


@map_group.command("suggest")
@click.argument("input_name", metavar="INPUT")
@click.option("--type", "record_type", required=True, help="The target record type (Person, LegalEntity, ...).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the mapping file here (default: print it).")
@click.option("--standard", "standard_dir", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Read labels and code lists from the standard in DIR (default: the shipped one).")
@click.option("--divisions", "division_paths", multiple=True, type=click.Path(exists=True, path_type=Path),
              help="Division list CSV(s) or a folder, to recognise division names (default: the standard's list).")
@click.option("--sample", default=500, show_default=True, type=click.IntRange(1, 100_000),
              help="Rows read to judge the values.")
@click.option("--reader", type=click.Choice(["csv", "jsonl", "xlsx", "sql"]), help="Input format (default: from the suffix).")
@click.option("--encoding", default="auto", show_default=True, help="CSV/JSON Lines encoding.")
@click.option("--delimiter", default="auto", show_default=True, help="CSV delimiter.")
@click.option("--sheet", help="Excel sheet (default: the first).")
@click.option("--query", help="SQL query (for a database INPUT).")
@click.option("--json", "as_json", is_flag=True, help="Print the column placements as JSON.")
def suggest_command(input_name: str, record_type: str, output: Path | None, standard_dir: Path | None,
                    division_paths: tuple[Path, ...], sample: int, reader: str | None, encoding: str, delimiter: str,
                    sheet: str | None, query: str | None, as_json: bool) -> None:  # fmt: skip
    """Propose a mapping for INPUT to a record type, from its header and sample values.

    Columns are matched to the standard's properties by name (labels and synonyms
    in Chinese, English and pinyin abbreviations) and by value (identity numbers,
    credit codes, dates, division names, code-list values). The mapping file
    says the confidence of every placement and why any column was left out.

    \b
    Example:
      shulian map suggest households.csv --type Person -o county.toml
    """
    from adapters.engine import division_source
    from adapters.readers import ReaderOptions
    from adapters.suggest import load_vocabulary, render_toml, suggest_mapping

    try:
        vocabulary = load_vocabulary(standard_dir)
        divisions = _suggest_divisions(division_source(_division_csvs(division_paths), standard_dir))
        options = ReaderOptions(format=reader, encoding=encoding, delimiter=delimiter, sheet=sheet, query=query)
        found = suggest_mapping(input_name, record_type, vocabulary=vocabulary, divisions=divisions,
                                reader=options, sample=sample)  # fmt: skip
        text = render_toml(found)
        if output is not None:
            try:
                output.write_text(text, encoding="utf-8")
            except OSError as exc:
                from node.errors import InputError

                raise InputError(f"cannot write {output}: {exc.strerror or exc}") from exc
    except (ShulianError, OSError) as exc:
        _fail(exc)
        return
    if as_json:
        click.echo(json.dumps(found.to_dict(), ensure_ascii=False, indent=2))
    elif output is None:
        click.echo(text, nl=False)
    _print_table(found)


def _suggest_divisions(load: Callable[[], Any]) -> Any:
    try:
        return load()
    except ShulianError as exc:
        log.info("no division list for suggest: %s", exc)
        return None


def _print_table(found: Any) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{found.input} -> {found.record_type}")
    for col in ("column", "property", "confidence", "why / note"):
        table.add_column(col)
    for c in found.columns:
        table.add_row(c.column, c.property or "-", f"{c.confidence:.2f}" if c.property else "",
                      c.why if c.property else "; ".join(c.notes))  # fmt: skip
    Console(stderr=True).print(table)
