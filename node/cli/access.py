"""``shulian access``: answer access requests (共享申请) for conditional datasets.

Requests live in the node's store (the daemon files them); an approval becomes a grant in the
responsibility list file named by ``[policy] responsibility_list`` (where the daemon reads its
policy), a refusal records its reasons. Both append evidence (``access.granted`` /
``access.refused``). Deadlines: 10 working days from filing (:mod:`node.policy.access`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from node.cli._common import config_option, local_time, node_config, open_store, operator_name, print_table
from node.cli.init import cli_errors
from node.errors import InputError, NotFound, Unavailable

if TYPE_CHECKING:
    from node.config import NodeConfig
    from node.policy import ResponsibilityList
    from node.store import Store

__all__ = ["access", "request_rows"]

_STATUS_ZH = {"pending": "待答复", "approved": "已同意", "denied": "已拒绝"}


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def request_rows(store: Store, *, status: str | None = None, now: dt.datetime | None = None
                 ) -> list[dict[str, Any]]:
    """Requests as JSON-ready rows: pending first (earliest deadline first), then the answered ones
    (latest answer first); ``overdue`` marks pending requests past their deadline."""
    from node.policy.access import is_overdue
    from node.service import StoreAccessRequests

    repo = StoreAccessRequests(store)
    moment = now or _now()
    rows = []
    for r in store.list_access_requests(status=status):
        p = repo.to_policy(r)
        rows.append({
            "id": r.id, "consumer": r.consumer, "dataset": r.dataset, "items": list(r.items), "purpose": r.purpose,
            "scenario": r.scenario, "until": r.until.isoformat() if r.until else None, "status": r.status,
            "reason": r.reason, "filed_at": r.filed_at.isoformat(), "deadline": p.deadline.isoformat(),
            "overdue": is_overdue(p, moment), "decided_at": r.decided_at.isoformat() if r.decided_at else None,
            "decided_by": r.decided_by,
        })
    pending = sorted((r for r in rows if r["status"] == "pending"), key=lambda r: (r["deadline"], r["filed_at"]))
    answered = sorted((r for r in rows if r["status"] != "pending"), key=lambda r: r["decided_at"] or "",
                      reverse=True)
    return pending + answered


def _requests_store(cfg: NodeConfig) -> Store:
    store = open_store(cfg, create=False)
    if store is None:
        raise InputError(f"{cfg.store}: the node's store does not exist yet (no access requests)")
    return store


@click.group("access")
def access() -> None:
    """Access requests (共享申请) for conditional datasets: list them (pending first, overdue
    flagged), approve one (a grant in the responsibility list) or deny one (with reasons).
    A provider must answer within 10 working days.

    \b
    Example:
      shulian access list --config node.toml
      shulian access approve req-3f2a9c --config node.toml --until 2026-12-31
      shulian access deny req-3f2a9c --config node.toml --reason "超出履职需要"

    Exit codes: 0 ok, 2 bad input (unknown or already answered request, no reason), 3 the store
    is busy or unavailable.
    """


@access.command("list")
@config_option
@click.option("--status", type=click.Choice(["pending", "approved", "denied"]), default=None,
              help="Only requests with this status.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON rows instead of a table.")
@cli_errors
def list_(config_path: Path | None, status: str | None, as_json: bool) -> None:
    """List access requests: pending first with their deadline (overdue ones flagged), then the
    answered ones.

    \b
    Example:
      shulian access list --config node.toml --status pending --json
    """
    cfg = node_config(config_path)
    store = open_store(cfg, create=False)
    try:
        rows = request_rows(store, status=status) if store is not None else []
    finally:
        if store is not None:
            store.close()
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    overdue = sum(1 for r in rows if r["overdue"])
    print_table(
        f"access requests to {cfg.department.name} ({cfg.department.code})",
        ["申请 request", "使用部门 consumer", "数据集 dataset", "信息项 items", "用途 purpose", "提交 filed",
         "答复期限 deadline", "状态 status"],
        [[r["id"], r["consumer"], r["dataset"], ", ".join(r["items"]), r["purpose"], local_time(r["filed_at"]),
          r["deadline"] + (" OVERDUE 逾期" if r["overdue"] else ""),
          _STATUS_ZH.get(r["status"], r["status"]) + (f": {r['reason']}" if r["reason"] else "")]
         for r in rows])
    click.echo(f"{len(rows)} request(s), {sum(1 for r in rows if r['status'] == 'pending')} pending, "
               f"{overdue} overdue")


def _list_path(cfg: NodeConfig) -> Path:
    path = cfg.policy.responsibility_list
    if path is None:
        raise InputError(f"{cfg.path} has no [policy] responsibility_list: set it to the Turtle file the node "
                         "reads its responsibility list from (e.g. responsibility_list = \"policy/list.ttl\")")
    return path


def _read_list(path: Path, cfg: NodeConfig) -> tuple[ResponsibilityList, bytes | None]:
    """The list and the bytes it was read from (None: the file does not exist yet, a new list)."""
    from rdflib import Graph

    from node.policy import ResponsibilityList, from_graph, validate_graph

    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return ResponsibilityList(provider_code=cfg.department.code,
                                  title=f"{cfg.department.name}政务数据共享责任清单"), None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: the responsibility list is not UTF-8 Turtle") from exc
    try:
        graph = Graph().parse(data=text, format="turtle")
    except Exception as exc:  # rdflib raises several unrelated types for bad syntax
        raise InputError(f"{path}: the responsibility list is not valid Turtle: {' '.join(str(exc).split())}"
                         ) from exc
    report = validate_graph(graph)
    if not report.conforms:
        raise InputError(f"{path}: the responsibility list breaks the policy shapes: "
                         + "; ".join(report.text().splitlines()))
    return from_graph(graph), raw


def _listed(lst: ResponsibilityList, cfg: NodeConfig, name: str, list_path: Path
            ) -> tuple[ResponsibilityList, str]:
    """The list (with the dataset added from node.toml when missing) and the dataset's id in it.

    The request names a dataset as the list does, or by the configured id or resource code of a
    dataset in node.toml (whichever of the two the list uses). A dataset the list lacks is added
    under its configured id (the id the running node decides on), with the sharing attributes
    and items node.toml gives it.
    """
    from node.catalog import find_dataset, information_items
    from node.policy import DatasetPolicy, SharingType

    if lst.get(name) is not None:
        return lst, name
    try:
        ds = find_dataset(cfg, name)
    except NotFound:
        raise NotFound(f"dataset {name!r} is neither in the responsibility list {list_path} nor configured in "
                       f"{cfg.path}") from None
    for alias in (ds.id, ds.catalog.resource_code):
        if lst.get(alias) is not None:
            return lst, alias
    meta = ds.catalog
    kinds = {"unconditional": SharingType.UNCONDITIONAL, "conditional": SharingType.CONDITIONAL,
             "not_shared": SharingType.NOT_SHARED}
    entry = DatasetPolicy(
        dataset_id=ds.id, sharing_type=kinds[meta.sharing_type], title=meta.title_zh,
        items=tuple(i.key for i in information_items(ds.record_type)),
        conditions=(meta.sharing_conditions,) if meta.sharing_conditions.strip() else (),
        methods=(meta.sharing_method,) if meta.sharing_type != "not_shared" else (),
        basis=(meta.sharing_basis,) if meta.sharing_basis.strip() else ())
    return lst.with_dataset(entry), ds.id


@access.command("approve")
@click.argument("request_id")
@config_option
@click.option("--until", default=None,
              help="Last day of the grant (YYYY-MM-DD), or 长期 for no end (default: the end the request asked for).")
@click.option("--items", default=None, help="Grant only these of the requested items (comma-separated).")
@click.option("--mask", "masks", multiple=True,
              help="item=rule: redact, hash, keep:F:L, keep-first:N, keep-last:N (repeatable).")
@click.option("--basis", default=None, help="The basis of the grant (依据).")
@click.option("--note", default=None, help="A note recorded with the approval.")
@click.option("--operator", default=None, help="Who approves (recorded; default: your user name).")
@cli_errors
def approve(request_id: str, config_path: Path | None, until: str | None, items: str | None,
            masks: tuple[str, ...], basis: str | None, note: str | None, operator: str | None) -> None:
    """Approve a pending request: add the grant (the request's consumer, items and purpose) to the
    responsibility list file the node reads ([policy] responsibility_list, written atomically;
    created if missing, the dataset taken from node.toml if the list lacks it), mark the request
    approved and record access.granted evidence, as one step.

    \b
    Example:
      shulian access approve req-3f2a9c --config node.toml --until 2026-12-31 \\
          --mask identityNumber=keep:6:4
    """
    from node.evidence import ACCESS_GRANTED, EvidenceLog
    from node.pki import load_signing_key
    from node.policy import dump_list, parse_mask_assignments, parse_until, validate_list
    from node.policy.access import RequestStatus, grant_from_request
    from node.service import StoreAccessRequests

    cfg = node_config(config_path)
    list_path = _list_path(cfg)
    key = load_signing_key(cfg.signing_key)
    try:
        masking = parse_mask_assignments(list(masks))
    except ValueError as exc:
        raise InputError(f"--mask: {exc}") from exc
    chosen = [i.strip() for i in items.replace("，", ",").split(",") if i.strip()] if items is not None else None
    actor_name = operator_name(operator)
    store = _requests_store(cfg)
    try:
        repo = StoreAccessRequests(store, decided_by=actor_name)
        stored = store.get_access_request(request_id)
        request = repo.to_policy(stored)
        if request.status is not RequestStatus.PENDING:
            raise InputError(f"access request {request_id} was already {request.status.value}")
        if until is not None:
            try:
                end = parse_until(until)
            except ValueError as exc:
                raise InputError(f"--until {until!r}: {exc}") from exc
        else:
            end = stored.until  # what the consumer asked for
            if end is None:
                raise InputError(f"request {request_id} names no end date; give --until YYYY-MM-DD (or 长期)")
        current, raw = _read_list(list_path, cfg)
        current, listed_id = _listed(current, cfg, request.dataset_id, list_path)
        grant = grant_from_request(dataclasses.replace(request, dataset_id=listed_id), until=end,
                                   masking=masking, basis=basis, items=chosen)
        updated = current.with_grant(grant)
        report = validate_list(updated)
        if not report.conforms:
            raise InputError("the grant would break the policy shapes: " + "; ".join(report.text().splitlines()))
        # one write transaction: the SQLite write lock serialises approvals across processes, and a
        # failure before the list is written undoes the decision and its evidence
        with store.transaction():
            now = _now()
            if (list_path.read_bytes() if list_path.exists() else None) != raw:
                raise Unavailable(f"{list_path} changed while the approval was prepared; run the command again")
            decided = repo.decide(request_id, status=RequestStatus.APPROVED, decided_at=now, reason=note,
                                  grant_id=grant.grant_id)
            EvidenceLog(store, key).append(ACCESS_GRANTED, decided.consumer_code, {
                "request": request_id, "dataset": listed_id, "grant": grant.grant_id, "items": list(grant.items),
                "purposes": list(grant.purposes), "until": end.isoformat() if end else None,
                "masking": {k: r.spec for k, r in grant.masking}, "decided_by": actor_name,
                "list": str(list_path)})
            list_path.parent.mkdir(parents=True, exist_ok=True)
            dump_list(updated, list_path)
    finally:
        store.close()
    click.echo(f"approved {request_id}: grant {grant.grant_id} on {listed_id} to {grant.consumer_code}, "
               f"items {', '.join(grant.items)}, until {end.isoformat() if end else '长期'}; written to {list_path}")


@access.command("deny")
@click.argument("request_id")
@config_option
@click.option("--reason", required=True, help="Why the request is refused (required: a refusal must give reasons).")
@click.option("--operator", default=None, help="Who refuses (recorded; default: your user name).")
@cli_errors
def deny(request_id: str, config_path: Path | None, reason: str, operator: str | None) -> None:
    """Refuse a pending request, with its reasons (拒绝须说明理由); records access.refused evidence.

    \b
    Example:
      shulian access deny req-3f2a9c --config node.toml --reason "申请用途超出法定职责范围"
    """
    from node.evidence import ACCESS_REFUSED, EvidenceLog
    from node.pki import load_signing_key
    from node.policy.access import refuse
    from node.service import StoreAccessRequests

    if not reason.strip():
        raise InputError("--reason: a refusal must give its reasons (拒绝须说明理由)")
    cfg = node_config(config_path)
    key = load_signing_key(cfg.signing_key)
    actor_name = operator_name(operator)
    store = _requests_store(cfg)
    try:
        repo = StoreAccessRequests(store, decided_by=actor_name)
        with store.transaction():
            refused = refuse(repo, request_id, now=_now(), reason=reason)
            EvidenceLog(store, key).append(ACCESS_REFUSED, refused.consumer_code, {
                "request": request_id, "dataset": refused.dataset_id, "reason": refused.reason,
                "decided_by": actor_name})
    finally:
        store.close()
    click.echo(f"denied {request_id} ({refused.dataset_id} to {refused.consumer_code}): {refused.reason}")
