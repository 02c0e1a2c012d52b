"""``shulian status``: ask a running node how it is doing (Node/GetStatus over mutual TLS).

Also the helpers ``shulian peers`` shares: the address a node is reached at, and the
Chinese names the standard gives levels, divisions and record types.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from node.cli._common import config_option, local_time, node_config, open_store
from node.cli.init import cli_errors
from node.errors import EXIT_FINDINGS, InputError, ShulianError, Unavailable

if TYPE_CHECKING:
    from node.config import NodeConfig
    from node.federation import FederationDirectory

__all__ = ["status", "Names", "node_address", "gather_status", "load_directory_or_none"]

log = logging.getLogger(__name__)

_SHARING_ZH = {"unconditional": "无条件共享", "conditional": "有条件共享", "not_shared": "不予共享"}
_LOCAL_HOSTS = {"0.0.0.0": "127.0.0.1", "::": "localhost", "[::]": "localhost", "": "127.0.0.1"}


@dataclass
class Names:
    """Chinese names from the node's standard: levels, divisions, record types; departments from the directory."""

    standard: Path | None
    directory: FederationDirectory | None = None
    _divisions: dict[str, Any] | None = field(default=None, repr=False)

    def level(self, token: str) -> str:
        from node.standard.codelists import load_codelist

        try:
            code = load_codelist("administrative-level", self.standard).get(token)
        except ShulianError:
            code = None
        return code.label_zh if code is not None and code.label_zh else token

    def division(self, code: str) -> str:
        """``130123 河北省石家庄市正定县`` (the code alone when the standard's list lacks it)."""
        if self._divisions is None:
            from node.standard.divisions import load_divisions

            try:
                self._divisions = load_divisions(self.standard)
            except ShulianError:
                self._divisions = {}
        entry = self._divisions.get(code)
        return f"{code} {entry.full_name}" if entry is not None else code

    def record_type(self, name: str) -> str:
        from node.standard.codelists import load_vocabulary

        if not name:
            return "—"
        try:
            term = load_vocabulary(self.standard).get(name)
        except ShulianError:
            term = None
        return f"{term.label_zh} {name}" if term is not None and term.label_zh else name

    def department(self, code: str) -> str:
        if self.directory is not None and code in self.directory:
            return self.directory.member(code).name
        return ""


def load_directory_or_none(cfg: NodeConfig) -> tuple[FederationDirectory | None, str]:
    """The verified federation directory, or None and why it could not be read."""
    from node.federation import load_node_directory

    try:
        return load_node_directory(cfg), ""
    except ShulianError as exc:
        return None, exc.message


def node_address(cfg: NodeConfig, directory: FederationDirectory | None = None) -> str:
    """Where this node answers: its ``[node] listen`` (a wildcard host read as loopback), or, when it
    listens on port 0, its address in the federation directory."""
    host, _, port = cfg.listen.rpartition(":")
    if port not in ("", "0"):
        return f"{_LOCAL_HOSTS.get(host, host)}:{port}"
    if directory is not None and cfg.department.code in directory:
        return directory.member(cfg.department.code).address
    raise InputError(f"{cfg.path}: the node listens on port 0 and the federation directory has no address "
                     "for it; give --address HOST:PORT")


async def _ask(cfg: NodeConfig, address: str, timeout: float) -> tuple[dict[str, Any], dict[str, str]]:
    from node.transport.grpc import NodeClient

    async with NodeClient.from_config(cfg, address, timeout=timeout) as client:
        info = await client.status()
        health = {"": await client.health("")}
        if info["components"].get("kafka", "off") != "off":
            from node.transport.grpc import KAFKA_HEALTH_SERVICE

            try:
                health[KAFKA_HEALTH_SERVICE] = await client.health(KAFKA_HEALTH_SERVICE)
            except ShulianError as exc:  # NOT_FOUND: the service is not registered yet
                health[KAFKA_HEALTH_SERVICE] = exc.reason
    return info, health


def _access(cfg: NodeConfig, info: Mapping[str, Any]) -> dict[str, Any]:
    """Pending and overdue access requests: from GetStatus when the node reports them, else from the
    node's store on this machine (SQLite in WAL mode: safe to read while the daemon runs)."""
    reported = info.get("access_requests")
    if isinstance(reported, Mapping):
        return {"source": "node", "pending": int(reported.get("pending", 0)),
                "overdue": int(reported.get("overdue", 0)), "requests": list(reported.get("requests", []))}
    from node.cli.access import request_rows

    store = open_store(cfg, create=False)
    if store is None:
        return {"source": None, "pending": None, "overdue": None, "requests": []}
    try:
        rows = request_rows(store, status="pending")
    finally:
        store.close()
    return {"source": "store", "pending": len(rows), "overdue": sum(1 for r in rows if r["overdue"]),
            "requests": rows}


def _outbox(cfg: NodeConfig) -> int | None:
    store = open_store(cfg, create=False)
    if store is None:
        return None
    try:
        return store.outbox_pending_count()
    finally:
        store.close()


def gather_status(cfg: NodeConfig, address: str | None = None, timeout: float = 5.0) -> dict[str, Any]:
    """Everything ``shulian status`` reports, as a JSON-ready dict (raises Unavailable when the node is down)."""
    directory, directory_problem = load_directory_or_none(cfg)
    target = address or node_address(cfg, directory)
    try:
        info, health = asyncio.run(_ask(cfg, target, timeout))
    except Unavailable as exc:
        raise Unavailable(f"the node at {target} does not answer: {exc.message} (is shulian-node running? "
                          "give --address if it listens elsewhere)") from exc
    names = Names(cfg.standard, directory)
    configured = {d.id: d for d in cfg.datasets}
    datasets = []
    for d in info["datasets"]:
        ds = configured.get(d["id"])
        provider, _, remote = d["id"].partition(".")
        received = ds is None and bool(remote) and names.department(provider)
        datasets.append({
            "id": d["id"], "record_type": d["record_type"], "record_type_zh": names.record_type(d["record_type"]),
            "title": ds.catalog.title_zh if ds else (f"{remote}（来自 {received}）" if received else ""),
            "sharing_type": ds.catalog.sharing_type if ds else None,
            "sharing_type_zh": _SHARING_ZH.get(ds.catalog.sharing_type, "") if ds else "",
            "kafka_publish": ds.kafka_publish if ds else False, "records": d["records"]})
    components = dict(info["components"])
    kafka_state = components.get("kafka", "off")
    lag = {k: v for k, v in components.items() if k.startswith("kafka") and k != "kafka"}
    kafka = None if kafka_state == "off" else {
        "state": kafka_state, "health": health.get("shulian.kafka"), "outbox_pending": _outbox(cfg), "reported": lag}
    access = _access(cfg, info)
    for r in access["requests"]:
        r.setdefault("consumer_name", names.department(str(r.get("consumer", ""))))
    findings = []
    if info["state"] != "ok":
        findings.append(f"the node reports state {info['state']!r}")
    findings += [f"component {k}: {v}" for k, v in sorted(components.items())
                 if k not in lag and v not in ("ok", "off")]
    if health.get("") != "SERVING":
        findings.append(f"the health service says {health.get('')}")
    if access["overdue"]:
        findings.append(f"{access['overdue']} access request(s) are past their deadline (10 working days)")
    if directory_problem:
        findings.append(f"federation directory: {directory_problem}")
    if info["department"] != cfg.department.code:
        findings.append(f"{target} answers as {info['department']}, not {cfg.department.code}")
    return {
        "address": target, "department": info["department"], "name": info["name"],
        "level": cfg.department.level, "level_zh": names.level(cfg.department.level),
        "division": cfg.department.division, "division_zh": names.division(cfg.department.division),
        "version": info["version"], "state": info["state"], "components": components, "health": health,
        "caller": info["caller"], "latest_seq": info["latest_seq"], "datasets": datasets, "kafka": kafka,
        "access": access, "findings": findings,
    }


def _print(report: Mapping[str, Any]) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console()
    if not console.is_terminal:
        console = Console(width=max(console.width, 120))
    state = report["state"]
    colour = "green" if state == "ok" and not report["findings"] else "yellow" if state == "ok" else "red"
    console.print(f"[bold]{escape(report['name'])}[/bold] ({report['department']}) · {report['level_zh']} · "
                  f"{escape(report['division_zh'])} · shulian {report['version']} · at {report['address']}: "
                  f"[{colour}]{state}[/{colour}]", highlight=False)
    health = Table(title="health 健康状况", title_justify="left")
    for h in ("component 组件", "state 状态"):
        health.add_column(h)
    for name, value in sorted(report["components"].items()):
        health.add_row(name, escape(str(value)))
    for service, value in sorted(report["health"].items()):
        health.add_row(f"health service {service or '(overall)'}", value)
    console.print(health)
    table = Table(title="datasets 数据集", title_justify="left")
    for h in ("dataset", "名称 title", "记录类型 record type", "共享类型 sharing", "records 记录数"):
        table.add_column(h, justify="right" if h.startswith("records") else "left")
    for d in report["datasets"]:
        table.add_row(d["id"], escape(d["title"] or "—"), escape(d["record_type_zh"]), d["sharing_type_zh"] or "—",
                      f"{d['records']:,}")
    console.print(table)
    kafka = report["kafka"]
    if kafka is None:
        console.print("kafka: off (no [kafka] in node.toml)", highlight=False)
    else:
        outbox = "unknown" if kafka["outbox_pending"] is None else f"{kafka['outbox_pending']:,}"
        extra = "".join(f"; {k} {v}" for k, v in sorted(kafka["reported"].items()))
        console.print(f"kafka: {escape(str(kafka['state']))}; outbox pending (not yet published) {outbox}{extra}",
                      highlight=False)
    access = report["access"]
    if access["pending"] is None:
        console.print("access requests: not reported (no store on this machine)", highlight=False)
    else:
        console.print(f"access requests 共享申请: {access['pending']} pending, {access['overdue']} overdue",
                      highlight=False)
        if access["requests"]:
            pending = Table(title_justify="left")
            for h in ("request", "consumer 申请部门", "dataset", "purpose 用途", "deadline 答复期限"):
                pending.add_column(h)
            for r in access["requests"]:
                who = f"{r['consumer']} {r['consumer_name']}".strip()
                pending.add_row(r["id"], escape(who), r["dataset"], escape(r["purpose"]),
                                r["deadline"] + (" [red]OVERDUE 逾期[/red]" if r["overdue"] else "")
                                + (f" (filed {local_time(r['filed_at'])})" if r.get("filed_at") else ""))
            console.print(pending)
    console.print(f"change feed at seq {report['latest_seq']}; asked as {report['caller']}", highlight=False)
    for finding in report["findings"]:
        console.print(f"[yellow]finding:[/yellow] {escape(finding)}", highlight=False)


@click.command("status")
@config_option
@click.option("--address", default=None, metavar="HOST:PORT",
              help="Where the node answers (default: its [node] listen, or its address in the federation directory).")
@click.option("--timeout", default=5.0, show_default=True, type=click.FloatRange(min=0.1),
              help="Seconds to wait for the node.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of tables.")
@cli_errors
def status(config_path: Path | None, address: str | None, timeout: float, as_json: bool) -> None:
    """Ask a running node how it is: health, records per dataset, Kafka, pending and overdue
    access requests (共享申请).

    Calls Node/GetStatus and the gRPC health service over mutual TLS with the node's own
    certificate; access requests and the Kafka outbox are read from the node's store when
    it is on this machine.

    \b
    Example:
      shulian status --config nodes/psb/node.toml
      shulian status --config node.toml --address node.example.gov.cn:7443 --json

    Exit codes: 0 ok, 1 findings (degraded, a component down, overdue requests),
    2 bad input, 3 the node is unavailable.
    """
    from node.config import check_address

    if address is not None and check_address(address, allow_port_zero=False):
        raise InputError(f"--address {address!r}: {check_address(address, allow_port_zero=False)}")
    cfg = node_config(config_path)
    report = gather_status(cfg, address, timeout)
    if as_json:
        click.echo(json.dumps(report, ensure_ascii=False, indent=2))
    else:
        _print(report)
    if report["findings"]:
        raise SystemExit(EXIT_FINDINGS)
