"""``shulian standard``: build derived artifacts, import division codes, show a record type."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from node.cli._common import echo_json, fail_cleanly, standard_option
from node.errors import EXIT_FINDINGS
from node.standard._paths import ontology_dir, schemas_dir
from node.standard.build import build_artifacts, stale_artifacts
from node.standard.model import load_standard


@click.group()
def standard() -> None:
    """The shared standard: build schemas/, import division codes, show a record type.

    \b
    Examples:
      shulian standard build --check
      shulian standard import-divisions ../shared/data/divisions/*.csv --standard ./my-standard
      shulian standard show Person
    """


@standard.command()
@click.option("--check", is_flag=True, help="Do not write; exit 1 if schemas/ is stale.")
@standard_option
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None, help="schemas/ folder to write.")
@fail_cleanly
def build(check: bool, standard_dir: str | None, out_dir: str | None) -> None:
    """Generate the JSON-LD context and JSON Schemas in schemas/ from the shapes.

    \b
    Example:
      shulian standard build          # after editing ontology/shapes/records.ttl
      shulian standard build --check  # in CI: fails when schemas/ is stale
    """
    std = load_standard(standard_dir)
    target = Path(out_dir) if out_dir else schemas_dir()
    if check:
        stale = stale_artifacts(std, target)
        if stale:
            click.echo(
                f"schemas/ is stale: {', '.join(stale)}; run `shulian standard build` (or `make standard`) and commit",
                err=True,
            )
            sys.exit(EXIT_FINDINGS)
        click.echo(f"schemas/ is up to date with the standard {std.version} ({len(std.types)} record types)")
        return
    written = build_artifacts(std, target)
    for p in written:
        click.echo(f"wrote {p}")
    if not written:
        click.echo("schemas/ already up to date")


@standard.command("import-divisions")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@standard_option
@fail_cleanly
def import_divisions_cmd(files: tuple[str, ...], standard_dir: str | None) -> None:
    """Turn `code,name,...` division lists into the division code list and its shape.

    \b
    Example:
      shulian standard import-divisions provinces.csv cities.csv areas.csv --standard ./std
    """
    from node.standard.divisions import import_divisions

    target = Path(standard_dir) if standard_dir else ontology_dir()
    count = import_divisions([Path(f) for f in files], target)
    click.echo(f"imported {count} division codes into {target}")


@standard.command()
@click.argument("type_name", metavar="TYPE")
@standard_option
@click.option("--json", "as_json", is_flag=True, help="Print the JSON Schema instead of a table.")
@fail_cleanly
def show(type_name: str, standard_dir: str | None, as_json: bool) -> None:
    """Show a record type: its fields, rules and messages.

    \b
    Example:
      shulian standard show Person
    """
    from rich.console import Console
    from rich.table import Table

    from node.standard.build import json_schema

    std = load_standard(standard_dir)
    rt = std.record_type(type_name)
    if as_json:
        echo_json(json_schema(rt))
        return
    table = Table(title=f"{rt.label.zh} {rt.label.en} (sl:{rt.name}, standard {std.version})")
    table.add_column("field")
    table.add_column("rule")
    table.add_column("severity")
    table.add_column("message")
    for r in rt.rules:
        param = ""
        if r.kind in ("MinCount", "MaxCount", "MinLength", "MaxLength", "Pattern"):
            param = f" {r.param}"
        elif r.kind == "Datatype":
            param = " " + str(r.param).rsplit("#", 1)[-1]
        elif r.kind == "In":
            vals = [str(x) for x in r.param]
            param = " " + (", ".join(vals) if len(vals) <= 10 else f"{len(vals)} codes")
        table.add_row(r.report_path, r.kind + param, r.severity, f"{r.message.zh}\n{r.message.en}")
    Console().print(table)
