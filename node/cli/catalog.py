"""``shulian catalog``: the node's catalog (DCAT 3 + 政务信息资源目录), exported or shown.

Also the helpers the node-operation commands (``catalog``, ``datasets``, ``access``) share:
the ``--config`` option, loading the node's configuration and opening its store.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from node.cli._common import standard_option
from node.cli.init import cli_errors
from node.errors import EXIT_FINDINGS, InputError

if TYPE_CHECKING:
    from node.config import NodeConfig
    from node.store import Store

__all__ = ["catalog", "config_option", "node_config", "open_store", "operator_name", "local_time", "print_table"]

F = TypeVar("F", bound=Callable[..., Any])


def config_option(fn: F) -> F:
    return click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
                        help="The node's node.toml (default: $SHULIAN_CONFIG).")(fn)


def node_config(config_path: Path | None) -> NodeConfig:
    """The node's configuration (files it names need not exist for these commands)."""
    from node.config import config_path_from_env, load_config

    path = config_path or config_path_from_env()
    if path is None:
        raise InputError("give --config node.toml, or set SHULIAN_CONFIG")
    return load_config(path, check_files=False)


def open_store(cfg: NodeConfig, *, create: bool) -> Store | None:
    """The node's store; None when it does not exist yet and ``create`` is False.

    Safe while the daemon runs: SQLite in WAL mode, writers wait for the lock (busy timeout).
    """
    from node.store import Store

    if not create and not cfg.store.exists():
        return None
    return Store(cfg.store, durability=cfg.durability)


def operator_name(given: str | None = None) -> str:
    """``operator:<name>``: who runs this command (the evidence log's actor for operator actions)."""
    if given:
        return given if given.startswith("operator:") else f"operator:{given}"
    try:
        import pwd

        name = pwd.getpwuid(os.getuid()).pw_name
    except (ImportError, KeyError):
        name = "unknown"
    return f"operator:{name}"


def local_time(value: str | dt.datetime | None) -> str:
    """A time as China Standard Time for tables: ``2025-10-15 14:03``; "—" for None."""
    from node.catalog import CHINA_TZ

    if value is None:
        return "—"
    moment = dt.datetime.fromisoformat(value) if isinstance(value, str) else value
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(CHINA_TZ).strftime("%Y-%m-%d %H:%M")


def print_table(title: str, headers: list[str], rows: list[list[str]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for header in headers:
        table.add_column(header)
    for row in rows:
        table.add_row(*row)
    console = Console()
    if not console.is_terminal:  # piped: keep cells whole instead of wrapping at 80 columns
        console = Console(width=max(console.width, 200))
    console.print(table)


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
