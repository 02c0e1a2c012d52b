"""``shulian peers``: the configured peers and the federation's members; ``peers check`` pings them.

``shulian peers`` (same as ``shulian peers list``) lists every department this node knows: the
``[[peers]]`` of node.toml (the nodes it calls, and that may push to it) and the members of the
signed federation directory. ``shulian peers check`` asks each over mutual TLS, with this node's
certificate, for its health (grpc.health.v1) and its identity (Node/GetStatus).
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from node.cli._common import config_option, node_config
from node.cli.init import cli_errors
from node.cli.status import Names, load_directory_or_none
from node.errors import EXIT_FINDINGS, EXIT_UNAVAILABLE, ShulianError, Unavailable

if TYPE_CHECKING:
    from node.config import NodeConfig

__all__ = ["peers", "peer_rows", "check_peers"]

#: addresses under the reserved ``.invalid`` domain (RFC 2606) name members that run no node
#: (e.g. the conformance kit's test consumers): listed, never pinged
_NO_NODE_SUFFIX = ".invalid"


def _no_node(address: str) -> bool:
    return address.rpartition(":")[0].strip("[]").lower().endswith(_NO_NODE_SUFFIX)


def peer_rows(cfg: NodeConfig) -> dict[str, Any]:
    """Every department this node knows (itself, its configured peers, the federation's members)."""
    directory, problem = load_directory_or_none(cfg)
    names = Names(cfg.standard, directory)
    configured = {p.code: p for p in cfg.peers}
    members = {m.code: m for m in directory} if directory is not None else {}
    codes = [cfg.department.code, *[p.code for p in cfg.peers],
             *sorted(c for c in members if c not in configured and c != cfg.department.code)]
    rows = []
    findings = [f"federation directory: {problem}"] if problem else []
    for code in dict.fromkeys(codes):
        peer, member = configured.get(code), members.get(code)
        me = code == cfg.department.code
        address = peer.address if peer is not None else member.address if member is not None else cfg.listen
        roles = ["this node"] if me else []
        if peer is not None:
            roles.append("peer (may push here)")
        notes = []
        if member is None and directory is not None:
            notes.append("NOT a federation member")
            findings.append(f"{code} ({'this node' if me else 'a configured peer'}) is not a member of federation "
                            f"{directory.federation!r}")
        elif member is not None:
            roles.append("member")
            if peer is not None and member.address != peer.address:
                notes.append(f"the directory publishes {member.address}")
        if _no_node(address) and not me:
            notes.append("runs no node")
        level = member.level if member is not None else cfg.department.level if me else ""
        division = member.division if member is not None else cfg.department.division if me else ""
        rows.append({
            "code": code, "name": (member.name if member is not None else peer.name if peer is not None
                                   else cfg.department.name),
            "level": level, "level_zh": names.level(level) if level else "",
            "division": division, "division_zh": names.division(division) if division else "",
            "address": address, "self": me, "configured": peer is not None, "member": member is not None,
            "roles": roles, "notes": notes})
    return {"department": cfg.department.code, "name": cfg.department.name,
            "federation": directory.federation if directory is not None else None,
            "directory_version": directory.version if directory is not None else None,
            "peers": rows, "findings": findings}


async def _check_one(cfg: NodeConfig, row: dict[str, Any], timeout: float) -> dict[str, Any]:
    from node.transport.grpc import NodeClient

    out = {"code": row["code"], "name": row["name"], "address": row["address"], "health": "", "identity": "",
           "latency_ms": None, "error": ""}
    if _no_node(row["address"]):
        out.update(health="SKIPPED", error="runs no node (address under .invalid)")
        return out
    started = time.perf_counter()
    try:
        async with NodeClient.from_config(cfg, row["address"], timeout=timeout) as client:
            out["health"] = await client.health("")
            out["latency_ms"] = round((time.perf_counter() - started) * 1000, 1)
            info = await client.status()
    except Unavailable as exc:
        out.update(health="UNAVAILABLE", error=exc.message)
        return out
    except ShulianError as exc:
        if not out["health"]:
            out["health"] = getattr(exc, "code", exc.reason)
        out["error"] = f"{exc.reason}: {exc.message}"
        return out
    out["identity"] = "ok" if info["department"] == row["code"] else f"answers as {info['department']}"
    return out


async def _check_all(cfg: NodeConfig, rows: list[dict[str, Any]], timeout: float) -> list[dict[str, Any]]:
    return list(await asyncio.gather(*(_check_one(cfg, r, timeout) for r in rows)))


def check_peers(cfg: NodeConfig, codes: tuple[str, ...] = (), timeout: float = 5.0) -> dict[str, Any]:
    """Ping every peer and member (but this node) over mutual TLS; a JSON-ready report."""
    listing = peer_rows(cfg)
    rows = [r for r in listing["peers"] if not r["self"]]
    if codes:
        known = {r["code"] for r in rows}
        unknown = [c for c in codes if c not in known]
        if unknown:
            from node.errors import InputError

            raise InputError(f"not a configured peer or federation member: {', '.join(unknown)} "
                             "(see `shulian peers list`)")
        rows = [r for r in rows if r["code"] in codes]
    results = asyncio.run(_check_all(cfg, rows, timeout))
    findings = list(listing["findings"])
    for r in results:
        if r["health"] == "SKIPPED":
            continue
        if r["health"] != "SERVING":
            findings.append(f"{r['code']} {r['name']} at {r['address']}: {r['health']} {r['error']}".rstrip())
        elif r["identity"] != "ok":
            findings.append(f"{r['code']} at {r['address']} {r['identity']}")
    return {"department": listing["department"], "name": listing["name"], "peers": results, "findings": findings}


def _table(title: str, headers: list[str], rows: list[list[str]]) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console()
    if not console.is_terminal:
        console = Console(width=max(console.width, 160))
    table = Table(title=title, title_justify="left")
    for h in headers:
        table.add_column(h)
    for row in rows:
        table.add_row(*[escape(c) for c in row])
    console.print(table)


class _DefaultList(click.Group):
    """``shulian peers --config X`` runs ``peers list``."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not args or (args[0] not in self.commands and args[0] not in ctx.help_option_names):
            args = ["list", *args]
        return super().parse_args(ctx, args)


@click.group("peers", cls=_DefaultList)
def peers() -> None:
    """The departments this node knows: its configured peers ([[peers]] in node.toml) and the
    members of the signed federation directory; `check` pings them over mutual TLS.

    \b
    Example:
      shulian peers --config node.toml
      shulian peers check --config node.toml
      shulian peers check 11130100000014001U --config node.toml --json

    Exit codes: 0 ok, 1 findings (a peer that is not a member, a peer not serving or not who
    the directory says), 2 bad input, 3 a peer is unavailable.
    """


@peers.command("list")
@config_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table.")
@cli_errors
def list_(config_path: Path | None, as_json: bool) -> None:
    """List this node, its configured peers and the federation's members, with their Chinese names.

    \b
    Example:
      shulian peers list --config node.toml --json
    """
    cfg = node_config(config_path)
    report = peer_rows(cfg)
    if as_json:
        click.echo(json.dumps(report, ensure_ascii=False, indent=2))
    else:
        fed = f"federation {report['federation']} v{report['directory_version']}" if report["federation"] else \
            "no readable federation directory"
        _table(f"peers of {report['name']} ({report['department']}), {fed}",
               ["code 代码", "name 名称", "level 层级", "division 行政区划", "address 地址", "role", "notes"],
               [[r["code"], r["name"], r["level_zh"] or "—", r["division_zh"] or "—", r["address"],
                 ", ".join(r["roles"]) or "—", "; ".join(r["notes"])] for r in report["peers"]])
        for finding in report["findings"]:
            click.echo(f"finding: {finding}")
    if report["findings"]:
        raise SystemExit(EXIT_FINDINGS)


@peers.command("check")
@click.argument("codes", nargs=-1)
@config_option
@click.option("--timeout", default=5.0, show_default=True, type=click.FloatRange(min=0.1),
              help="Seconds to wait for each peer.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table.")
@cli_errors
def check(codes: tuple[str, ...], config_path: Path | None, timeout: float, as_json: bool) -> None:
    """Ping each peer and member (or only CODES) over mutual TLS with this node's certificate:
    its health service, and that it answers as the department the directory names.

    \b
    Example:
      shulian peers check --config node.toml
      shulian peers check 11130100000014001U --config node.toml --timeout 2 --json
    """
    cfg = node_config(config_path)
    report = check_peers(cfg, codes, timeout)
    if as_json:
        click.echo(json.dumps(report, ensure_ascii=False, indent=2))
    else:
        _table(f"peers of {report['name']} ({report['department']}), checked over mutual TLS",
               ["code 代码", "name 名称", "address 地址", "health 健康", "identity 身份", "ms", "error"],
               [[r["code"], r["name"], r["address"], r["health"], r["identity"] or "—",
                 "—" if r["latency_ms"] is None else f"{r['latency_ms']:.1f}", r["error"]]
                for r in report["peers"]])
        for finding in report["findings"]:
            click.echo(f"finding: {finding}")
    if any(r["health"] == "UNAVAILABLE" for r in report["peers"]):
        raise SystemExit(EXIT_UNAVAILABLE)
    if report["findings"]:
        raise SystemExit(EXIT_FINDINGS)
