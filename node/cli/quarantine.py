"""``shulian quarantine``: messages the Kafka boundary refused — list, show, retry, discard."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from node.cli.init import cli_errors
from node.errors import EXIT_FINDINGS, InputError

if TYPE_CHECKING:
    from node.config import NodeConfig
    from node.store import QuarantineItem, Store

__all__ = ["quarantine"]

_STATUSES = ("held", "released", "discarded", "all")


def _open(config: Path | None) -> tuple[NodeConfig, Store]:
    from node.config import config_path_from_env, load_config
    from node.store import Store

    config = config or config_path_from_env()
    if config is None:
        raise InputError("give --config node.toml, or set SHULIAN_CONFIG")
    cfg = load_config(config, check_files=False)
    if not cfg.store.exists():
        raise InputError(f"{cfg.store}: the node's store does not exist yet (nothing is quarantined)")
    return cfg, Store(cfg.store, durability=cfg.durability)


def _code(item: QuarantineItem) -> str:
    return item.reason.split(":", 1)[0]


def _value_view(item: QuarantineItem) -> dict[str, Any]:
    headers = {k: v for k, v in item.headers}
    if item.value is None:
        return {"bytes": 0}
    view: dict[str, Any] = {"bytes": len(item.value)}
    if "ce_encryption" in headers:
        view["encrypted"] = True
        return view
    try:
        view["json"] = json.loads(item.value.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        view["base64"] = base64.b64encode(item.value[:4096]).decode("ascii")
    return view


def _item_dict(item: QuarantineItem, *, full: bool) -> dict[str, Any]:
    from node.transport.kafka import KEY_HEADER

    out: dict[str, Any] = {
        "id": item.id, "status": item.status, "received_at": item.received_at.isoformat(),
        "topic": item.topic, "partition": item.partition, "offset": item.offset,
        "code": _code(item), "reason": item.reason,
    }
    headers = dict(item.headers)
    out["subject"] = headers.get("ce_subject", b"").decode("utf-8", "replace")
    if full:
        key = headers.get(KEY_HEADER)
        out["key"] = key.decode("utf-8", "replace") if key is not None else None
        out["headers"] = [[k, v.decode("utf-8", "replace")] for k, v in item.headers if k != KEY_HEADER]
        out["value"] = _value_view(item)
    return out


_config_opt = click.option("--config", type=click.Path(dir_okay=False, path_type=Path), default=None,
                           help="The node's node.toml (default: $SHULIAN_CONFIG).")
_json_opt = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")


@click.group("quarantine")
def quarantine() -> None:
    """Messages refused at the Kafka boundary (forged, unexpected, invalid, unparseable).

    Every refused message is held here with its reason (and sent to the node's
    dead-letter topic shulian.<code>.dlq). Retry one after fixing the cause
    (a directory update, a subscription, the standard); discard one that is junk.

    \b
    Example:
      shulian quarantine list --config node.toml
      shulian quarantine show 12 --config node.toml
      shulian quarantine retry 12 --config node.toml
      shulian quarantine retry --all --config node.toml

    Exit codes: 0 ok, 1 a retried message still fails, 2 bad input or unknown id.
    """


@quarantine.command("list")
@_config_opt
@click.option("--status", type=click.Choice(_STATUSES), default="held", show_default=True,
              help="Which messages to list.")
@click.option("--limit", type=click.IntRange(1, 100_000), default=100, show_default=True)
@_json_opt
@cli_errors
def list_cmd(config: Path | None, status: str, limit: int, as_json: bool) -> None:
    """List quarantined messages, oldest first.

    \b
    Example:
      shulian quarantine list --config node.toml --status all --json
    """
    from rich.console import Console
    from rich.table import Table

    _cfg, store = _open(config)
    with store:
        items = store.quarantine_list(status=None if status == "all" else status, limit=limit)
    rows = [_item_dict(i, full=False) for i in items]
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False))
        return
    if not rows:
        click.echo(f"no {'' if status == 'all' else status + ' '}messages in quarantine")
        return
    table = Table("id", "reason", "subject", "status", "received", "from (topic/partition/offset)")
    table.columns[1].no_wrap = True
    table.columns[5].overflow = "fold"
    for r in rows:
        table.add_row(str(r["id"]), r["code"], r["subject"], r["status"], r["received_at"][:19],
                      f"{r['topic']}/{r['partition']}/{r['offset']}")
    Console().print(table)


@quarantine.command("show")
@click.argument("item_id", type=int)
@_config_opt
@_json_opt
@cli_errors
def show_cmd(item_id: int, config: Path | None, as_json: bool) -> None:
    """Show one quarantined message: reason, headers, value.

    \b
    Example:
      shulian quarantine show 12 --config node.toml --json
    """
    _cfg, store = _open(config)
    with store:
        item = store.quarantine_get(item_id)
    data = _item_dict(item, full=True)
    if as_json:
        click.echo(json.dumps(data, ensure_ascii=False, indent=2))
        return
    click.echo(f"message {data['id']} ({data['status']}), received {data['received_at']}")
    click.echo(f"  from     {data['topic']} partition {data['partition']} offset {data['offset']}")
    click.echo(f"  key      {data['key']}")
    click.echo(f"  reason   {data['reason']}")
    click.echo("  headers")
    for k, v in data["headers"]:
        click.echo(f"    {k}: {v if len(v) <= 120 else v[:119] + '…'}")
    value = data["value"]
    if "json" in value:
        click.echo("  value (JSON)")
        for line in json.dumps(value["json"], ensure_ascii=False, indent=2).splitlines():
            click.echo("    " + line)
    elif value.get("encrypted"):
        click.echo(f"  value    {value['bytes']} bytes, encrypted to this node")
    else:
        click.echo(f"  value    {value['bytes']} bytes, not JSON: {value.get('base64', '')[:120]}")


@quarantine.command("retry")
@click.argument("item_ids", type=int, nargs=-1)
@click.option("--all", "retry_all", is_flag=True, help="Retry every held message.")
@_config_opt
@click.option("--standard", "standard_dir", type=click.Path(file_okay=False, exists=True), default=None,
              help="Validate against the standard in this directory (default: [node] standard, else the shipped one).")
@_json_opt
@cli_errors
def retry_cmd(item_ids: tuple[int, ...], retry_all: bool, config: Path | None, standard_dir: str | None,
              as_json: bool) -> None:
    """Check held messages again; store and release those that now pass.

    \b
    Example:
      shulian quarantine retry 12 13 --config node.toml
      shulian quarantine retry --all --config node.toml --json
    """
    from node.transport.kafka import retry_quarantined
    from node.validation import get_validator

    if not item_ids and not retry_all:
        raise InputError("name the messages to retry (ids from 'shulian quarantine list') or give --all")
    cfg, store = _open(config)
    with store:
        ids = list(item_ids)
        if retry_all:
            ids += [i.id for i in store.quarantine_list(status="held", limit=1_000_000) if i.id not in ids]
        outcomes = retry_quarantined(cfg, store, ids, get_validator("fast", standard_dir or cfg.standard))
    if as_json:
        click.echo(json.dumps([{"id": o.id, "status": o.status, "detail": o.detail} for o in outcomes],
                              ensure_ascii=False))
    else:
        for o in outcomes:
            click.echo(f"{o.id}: {o.status} — {o.detail}")
        if not outcomes:
            click.echo("nothing to retry")
    if any(o.status == "held" for o in outcomes):
        raise SystemExit(EXIT_FINDINGS)


@quarantine.command("discard")
@click.argument("item_ids", type=int, nargs=-1, required=True)
@_config_opt
@cli_errors
def discard_cmd(item_ids: tuple[int, ...], config: Path | None) -> None:
    """Mark held messages as discarded (they stay in the store for the record).

    \b
    Example:
      shulian quarantine discard 12 --config node.toml
    """
    from node.evidence import EvidenceLog
    from node.pki import load_signing_key

    cfg, store = _open(config)
    with store:
        evidence = EvidenceLog(store, load_signing_key(cfg.signing_key))
        for item_id in item_ids:
            with store.transaction():
                item = store.quarantine_set_status(item_id, "discarded")
                evidence.append("records.discarded", "operator", {
                    "quarantine": item.id, "topic": item.topic, "partition": item.partition,
                    "offset": item.offset, "reason": item.reason})
            click.echo(f"{item_id}: discarded")
