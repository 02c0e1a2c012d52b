"""``shulian list``: the responsibility list (共享责任清单) — show, import, export, grant, revoke, check.

Every command works on a Turtle list file (``--list FILE``); the node's store will
be a second backend later.
"""

from __future__ import annotations

import functools
import json
import logging
import sys
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

import click

from node.errors import EXIT_FINDINGS, InputError, ShulianError

__all__ = ["list_group", "list_rows"]

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])


def _handle_errors(func: F) -> F:
    """Print ShulianErrors as one clear message and exit with their code (never a traceback)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ShulianError as exc:
            click.echo(f"error: {exc.message}", err=True)
            sys.exit(exc.exit_code)

    return wrapper  # type: ignore[return-value]


def _list_option(func: F) -> F:
    return click.option(
        "--list",
        "list_file",
        required=True,
        type=click.Path(dir_okay=False, path_type=Path),
        help="The responsibility list (Turtle file).",
    )(func)


def _load(path: Path) -> Any:
    from node.policy import load_validated

    return load_validated(path)


def list_rows(lst: Any) -> list[dict[str, Any]]:
    """The list flattened as the spreadsheet reads: one row per dataset, item and grant."""
    from node.policy import SharingType
    from node.policy._standard import method_label

    rows: list[dict[str, Any]] = []

    def row(ds: Any, item: str | None, kind: Any, **extra: Any) -> None:
        rows.append(
            {
                "dataset": ds.dataset_id,
                "title": ds.title,
                "item": item,
                "item_name": ds.label(item) if item else None,
                "sharing_type": kind.value,
                "sharing_type_zh": kind.label_zh,
                "consumer": extra.get("consumer"),
                "purposes": extra.get("purposes", []),
                "until": extra.get("until"),
                "masking": extra.get("masking"),
                "basis": extra.get("basis"),
                "grant": extra.get("grant"),
                "conditions": list(ds.conditions),
                "methods": [method_label(m) for m in ds.methods],
            }
        )

    for ds in lst.datasets:
        basis = ds.basis_text
        withheld = set(ds.withheld)
        shared_items = [i for i in ds.items if i not in withheld]
        if ds.sharing_type is SharingType.NOT_SHARED:
            for item in ds.items or [None]:
                row(ds, item, ds.sharing_type, basis=basis)
            continue
        if ds.sharing_type is SharingType.UNCONDITIONAL:
            masks = ds.masking_map
            for item in shared_items or ([None] if not withheld else []):
                rule = masks.get(item) if item else None
                row(ds, item, ds.sharing_type, masking=rule.spec if rule else None, basis=basis)
        else:
            granted = {i for g in ds.grants for i in g.items}
            for g in ds.grants:
                masks = g.masking_map
                for item in g.items:
                    rule = masks.get(item)
                    row(
                        ds,
                        item,
                        ds.sharing_type,
                        consumer=g.consumer_code,
                        purposes=list(g.purposes),
                        until=g.until.isoformat() if g.until else "长期",
                        masking=rule.spec if rule else None,
                        basis=g.basis or basis,
                        grant=g.grant_id,
                    )
            for item in [i for i in shared_items if i not in granted] or ([None] if not ds.grants else []):
                row(ds, item, ds.sharing_type, basis=basis)
        for item in ds.withheld:
            row(ds, item, SharingType.NOT_SHARED, basis=basis)
    return rows


@click.group("list")
def list_group() -> None:
    """The responsibility list (共享责任清单): who may receive which dataset, which items,
    for what purpose, until when, masked how.

    \b
    Example:
      shulian list import 责任清单.csv -o list.ttl
      shulian list show --list list.ttl
    """


@list_group.command("show")
@_list_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON rows instead of a table.")
@_handle_errors
def show(list_file: Path, as_json: bool) -> None:
    """Show the list: dataset, item, sharing type, consumer, purposes, until, masking, basis.

    \b
    Example:
      shulian list show --list list.ttl
      shulian list show --list list.ttl --json
    """
    lst = _load(list_file)
    rows = list_rows(lst)
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=lst.title or f"共享责任清单 {list_file.name}", show_lines=False)
    for header in (
        "资源 dataset",
        "信息项 item",
        "共享类型 type",
        "使用部门 consumer",
        "用途 purposes",
        "有效期至 until",
        "脱敏 masking",
        "依据 basis",
    ):
        table.add_column(header)
    for r in rows:
        dataset = r["dataset"] + (f"\n{r['title']}" if r["title"] else "")
        item = (r["item"] or "—") + (f" ({r['item_name']})" if r["item_name"] else "")
        table.add_row(
            dataset,
            item,
            f"{r['sharing_type']} {r['sharing_type_zh']}",
            r["consumer"] or ("全体成员" if r["sharing_type"] == "1" else "—"),
            "；".join(r["purposes"]) or "—",
            r["until"] or "—",
            r["masking"] or "—",
            r["basis"] or "—",
        )
    console = Console()
    if not console.is_terminal:  # piped or redirected: keep every cell whole rather than wrap at 80
        console = Console(width=max(console.width, 240))
    console.print(table)


@list_group.command("import")
@click.argument("csv_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the list (Turtle).",
)
@click.option("--provider", help="The provider department's unified social credit code.")
@click.option("--title", help="A title for the list (default: the spreadsheet's title row, if any).")
@_handle_errors
def import_(csv_file: Path, output: Path, provider: str | None, title: str | None) -> None:
    """Import the spreadsheet form (CSV, GB18030 or UTF-8, Chinese or English headers),
    check it against the SHACL shapes and write it as Turtle.

    Nothing is written when a row is bad (exit 2, every problem listed with its row and
    column) or when the shapes reject the result (exit 1).

    \b
    Example:
      shulian list import 责任清单.csv -o list.ttl --provider 91110000600037341L
    """
    from node.policy import dump_list, import_csv, validate_list

    result = import_csv(csv_file, provider_code=provider, title=title)
    report = validate_list(result.list)
    if not report.conforms:
        click.echo(f"{csv_file}: the imported list breaks the policy shapes:", err=True)
        for v in report.violations:
            click.echo(f"  {v}", err=True)
        sys.exit(EXIT_FINDINGS)
    dump_list(result.list, output)
    lst = result.list
    click.echo(
        f"imported {len(lst.datasets)} dataset(s), {len(lst.grants)} grant(s) from {result.rows} row(s) "
        f"({result.encoding}); conforms to the shapes; written to {output}"
    )
    if result.ignored_columns:
        click.echo(f"ignored columns: {', '.join(result.ignored_columns)}")
    for w in result.warnings:
        click.echo(f"warning: {w}", err=True)


@list_group.command("export")
@_list_option
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["odrl", "turtle"]),
    default="odrl",
    show_default=True,
    help="odrl: ODRL 2.2 JSON-LD with an inline context; turtle: the list as Turtle.",
)
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write here instead of stdout."
)
@_handle_errors
def export(list_file: Path, fmt: str, output: Path | None) -> None:
    """Export the list, e.g. as self-contained ODRL JSON-LD.

    \b
    Example:
      shulian list export --list list.ttl --format odrl -o list.jsonld
    """
    from node.policy import to_odrl_json, to_turtle

    lst = _load(list_file)
    text = to_odrl_json(lst) if fmt == "odrl" else to_turtle(lst)
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        click.echo(f"written to {output}", err=True)


def _parse_until(text: str) -> date | None:
    from node.policy import parse_until as parse

    try:
        return parse(text)
    except ValueError as exc:
        raise InputError(f"--until {text!r}: {exc}") from exc


def _save(lst: Any, path: Path) -> None:
    from node.policy import dump_list, validate_list

    report = validate_list(lst)
    if not report.conforms:  # the model keeps the rules; this guards the shapes and the model agreeing
        raise InputError(f"the change would break the policy shapes:\n{report.text()}")
    dump_list(lst, path)


@list_group.command("grant")
@_list_option
@click.option("--dataset", required=True, help="The dataset (resource code).")
@click.option("--consumer", required=True, help="The consumer department's unified social credit code.")
@click.option(
    "--items", required=True, help="Granted items, comma-separated record keys (or their Chinese names)."
)
@click.option(
    "--purpose", "purposes", required=True, multiple=True, help="A purpose of use (repeat for more)."
)
@click.option("--until", required=True, help="Last day the grant is in force (YYYY-MM-DD), or 长期.")
@click.option(
    "--mask", "masks", multiple=True, help="item=rule: redact, hash, keep:F:L, keep-first:N, keep-last:N."
)
@click.option("--basis", help="The basis of the grant (依据).")
@click.option("--request", "request_id", help="The approved access request this grant comes from.")
@_handle_errors
def grant(
    list_file: Path,
    dataset: str,
    consumer: str,
    items: str,
    purposes: tuple[str, ...],
    until: str,
    masks: tuple[str, ...],
    basis: str | None,
    request_id: str | None,
) -> None:
    """Grant a consumer items of a conditional dataset, for purposes, until a date.

    \b
    Example:
      shulian list grant --list list.ttl --dataset 101/000001 \\
        --consumer 11110000000000001R --items identityNumber,name \\
        --purpose 社保资格审核 --until 2026-12-31 --mask identityNumber=keep:6:4
    """
    from node.policy import Grant, parse_mask_assignments
    from node.policy._standard import find_item

    lst = _load(list_file)
    try:
        masking = parse_mask_assignments(list(masks))
    except ValueError as exc:
        raise InputError(f"--mask: {exc}") from exc
    new = Grant.create(
        dataset_id=dataset,
        consumer_code=consumer,
        items=[find_item(i) or i.strip() for i in items.replace("，", ",").split(",") if i.strip()],
        purposes=purposes,
        until=_parse_until(until),
        masking=masking,
        basis=basis,
        request_id=request_id,
    )
    _save(lst.with_grant(new), list_file)
    click.echo(f"granted {new.grant_id}: {dataset} -> {new.consumer_code}, items {', '.join(new.items)}")


@list_group.command("revoke")
@_list_option
@click.option("--dataset", required=True, help="The dataset (resource code).")
@click.option("--consumer", required=True, help="The consumer department's unified social credit code.")
@_handle_errors
def revoke(list_file: Path, dataset: str, consumer: str) -> None:
    """Revoke every grant of a consumer on a dataset.

    \b
    Example:
      shulian list revoke --list list.ttl --dataset 101/000001 --consumer 11110000000000001R
    """
    lst = _load(list_file)
    updated, removed = lst.revoke(dataset, consumer)
    _save(updated, list_file)
    click.echo(f"revoked {len(removed)} grant(s): {', '.join(g.grant_id for g in removed)}")


@list_group.command("check")
@_list_option
@click.option("--json", "as_json", is_flag=True, help="Print the violations as JSON.")
@_handle_errors
def check(list_file: Path, as_json: bool) -> None:
    """Check a list file against the SHACL shapes (exit 1 when it breaks them).

    \b
    Example:
      shulian list check --list list.ttl
    """
    from node.policy import read_graph, validate_graph

    report = validate_graph(read_graph(list_file))
    if as_json:
        click.echo(
            json.dumps(
                {
                    "conforms": report.conforms,
                    "violations": [
                        {
                            "focus": v.focus,
                            "path": v.path,
                            "shape": v.shape,
                            "component": v.component,
                            "message": v.message,
                        }
                        for v in report.violations
                    ],
                },
                ensure_ascii=False,
                indent=2,
            )
        )
    else:
        click.echo(f"{list_file}: {'conforms' if report.conforms else 'breaks the policy shapes:'}")
        for v in report.violations:
            click.echo(f"  {v}")
    if not report.conforms:
        sys.exit(EXIT_FINDINGS)
