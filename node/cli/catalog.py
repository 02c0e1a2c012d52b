"""``shulian catalog``: the node's catalog (DCAT 3 + 政务信息资源目录), exported or shown."""

from __future__ import annotations

import json
from pathlib import Path

import click

from node.cli._common import config_option, local_time, node_config, open_store, print_table, standard_option
from node.cli.init import cli_errors
from node.errors import EXIT_FINDINGS, InputError

__all__ = ["catalog"]

_base_url_option = click.option(
    "--base-url", default=None,
    help="Public URL of the node (its gRPC endpoint), used for the catalog's IRIs and endpoint "
         "(default: https://<node.listen>/ and IRIs under https://w3id.org/shulian/node/<code>/).")


@click.group("catalog")
def catalog() -> None:
    """The node's catalog: DCAT 3 plus the resource-catalog terms (政务信息资源目录), built from
    node.toml (datasets, department) and the store (record counts, last change), and checked
    against the standard's catalog profile.

    \b
    Example:
      shulian catalog show --config node.toml
      shulian catalog export --config node.toml --format json-ld -o catalog.jsonld

    Exit codes: 0 ok, 1 the catalog breaks the catalog profile (each dataset and rule named),
    2 bad input or configuration, 3 the store is unavailable.
    """


@catalog.command("export")
@config_option
@click.option("--format", "fmt", type=click.Choice(["turtle", "json-ld"]), default="turtle", show_default=True,
              help="Serialisation.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write here instead of standard output.")
@_base_url_option
@standard_option
@cli_errors
def export(config_path: Path | None, fmt: str, output: Path | None, base_url: str | None,
           standard_dir: str | None) -> None:
    """Export the catalog as Turtle or JSON-LD (only a catalog that passes the profile is written).

    \b
    Example:
      shulian catalog export --config node.toml --format turtle -o catalog.ttl
      shulian catalog export --config node.toml --format json-ld --base-url https://node.example:7443/
    """
    from node.catalog import build_catalog, serialize_catalog

    cfg = node_config(config_path)
    store = open_store(cfg, create=False)
    try:
        graph = build_catalog(cfg, store, base_url=base_url, standard_dir=standard_dir)
    finally:
        if store is not None:
            store.close()
    text = serialize_catalog(graph, fmt)
    if output is None:
        click.echo(text, nl=not text.endswith("\n"))
        return
    tmp = output.with_name(output.name + ".tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(output)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise InputError(f"{output}: cannot write the catalog: {exc.strerror}") from exc
    click.echo(f"wrote the catalog ({len(cfg.datasets)} dataset(s), {len(graph)} triples, {fmt}) to {output}",
               err=True)


@catalog.command("show")
@config_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON (datasets and the profile's verdict).")
@standard_option
@cli_errors
def show(config_path: Path | None, as_json: bool, standard_dir: str | None) -> None:
    """Show the catalog's datasets: id, title, record type, sharing type, records, last change;
    then whether the catalog passes the catalog profile (exit 1 when it does not).

    \b
    Example:
      shulian catalog show --config node.toml
      shulian catalog show --config node.toml --json
    """
    from node.catalog import CatalogProfileError, build_catalog
    from node.catalog.registry import dataset_rows

    cfg = node_config(config_path)
    store = open_store(cfg, create=False)
    problem: CatalogProfileError | None = None
    try:
        rows = [r for r in dataset_rows(cfg, store) if r["configured"]]
        try:
            build_catalog(cfg, store, standard_dir=standard_dir)
        except CatalogProfileError as exc:
            problem = exc
    finally:
        if store is not None:
            store.close()
    if as_json:
        click.echo(json.dumps({
            "department": {"name": cfg.department.name, "code": cfg.department.code},
            "datasets": rows,
            "conforms": problem is None,
            "violations": [v.to_dict() for v in problem.report.violations] if problem else [],
        }, ensure_ascii=False, indent=2))
    else:
        print_table(
            f"{cfg.department.name} 政务信息资源目录 ({cfg.department.code})",
            ["数据集 dataset", "名称 title", "记录类型 record type", "共享类型 sharing", "记录数 records",
             "最后更新 last modified"],
            [[r["id"], f"{r['title_zh']}\n{r['title_en']}", r["record_type"], r["sharing_type_zh"],
              str(r["records"]), local_time(r["modified"])] for r in rows])
        if problem is None:
            click.echo(f"{len(rows)} dataset(s); the catalog passes the catalog profile")
    if problem is not None:
        click.echo(f"error: {problem.message}", err=True)
        raise SystemExit(EXIT_FINDINGS)
