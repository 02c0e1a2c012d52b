"""``shulian access list|approve|deny``: requests in the store, grants in the responsibility list."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from node.config import NodeConfig, load_config
from node.evidence import EvidenceLog
from node.pki import load_signing_key
from node.policy import decide, load_validated
from node.policy.access import AccessRequestRepository, RequestStatus, deadline, request_access
from node.service import StoreAccessRequests
from node.store import Store

from .conftest import CONSUMER, OTHER, PROVIDER, run

PURPOSE = "社会保险参保资格审核"
MEMBERS = frozenset({PROVIDER, CONSUMER, OTHER})
NOW = dt.datetime.now(dt.UTC)


@pytest.fixture
def cfg(node_toml: Path) -> NodeConfig:
    """The node with [policy] responsibility_list set (the file does not exist yet) and three requests:
    r-old (filed long ago: overdue), r-new (fresh, by resource code, no end date), r-third."""
    text = node_toml.read_text("utf-8").replace("[policy]\n", '[policy]\nresponsibility_list = "policy/list.ttl"\n')
    node_toml.write_text(text, encoding="utf-8")
    config = load_config(node_toml, env={}, check_files=False)
    with Store(config.store) as st:
        st.file_access_request(consumer=CONSUMER, dataset="population", purpose=PURPOSE, scenario="参保审核",
                               items=["identityNumber", "name"], until=dt.date(2099, 12, 31), request_id="r-old",
                               filed_at=dt.datetime(2025, 1, 6, 9, tzinfo=dt.UTC))
        st.file_access_request(consumer=OTHER, dataset="101001001/000001", purpose="最低生活保障资格核查",
                               scenario="低保核查", items=["name"], request_id="r-new")
        st.file_access_request(consumer=OTHER, dataset="population", purpose="其他", scenario="其他",
                               items=["sex"], request_id="r-third")
    return config


def _evidence(cfg: NodeConfig) -> list[tuple[str, str, dict[str, object]]]:
    with Store(cfg.store) as st:
        log = EvidenceLog(st, load_signing_key(cfg.signing_key))
        assert log.verify().ok
        return [(e.kind, e.actor, e.details) for e in log.entries()]


@pytest.mark.parametrize("args", [["access"], *[["access", c] for c in ("list", "approve", "deny")]])
def test_help_has_an_example(args: list[str]) -> None:
    r = run(*args, "--help")
    assert r.exit_code == 0 and "Example" in r.output


def test_list_puts_pending_first_and_flags_overdue(cfg: NodeConfig) -> None:
    r = run("access", "deny", "r-third", "--config", str(cfg.path), "--reason", "超出职责范围")
    assert r.exit_code == 0, r.stderr
    r = run("access", "list", "--config", str(cfg.path), "--json")
    assert r.exit_code == 0, r.stderr
    rows = json.loads(r.stdout)
    assert [x["id"] for x in rows] == ["r-old", "r-new", "r-third"]
    old, new, third = rows
    assert old["overdue"] is True and old["deadline"] == deadline(dt.date(2025, 1, 6)).isoformat() == "2025-01-20"
    assert new["overdue"] is False and dt.date.fromisoformat(new["deadline"]) > NOW.date()
    assert third["status"] == "denied" and third["reason"] == "超出职责范围" and third["overdue"] is False
    table = run("access", "list", "--config", str(cfg.path)).stdout
    assert "OVERDUE" in table and "3 request(s), 2 pending, 1 overdue" in table
    pending = json.loads(run("access", "list", "--config", str(cfg.path), "--status", "pending", "--json").stdout)
    assert [x["id"] for x in pending] == ["r-old", "r-new"]


def test_approve_creates_a_grant_that_decide_honours(cfg: NodeConfig) -> None:
    assert cfg.policy.responsibility_list is not None
    list_path = cfg.policy.responsibility_list
    assert not list_path.exists()
    r = run("access", "approve", "r-old", "--config", str(cfg.path), "--mask", "identityNumber=keep:6:4",
            "--operator", "王")
    assert r.exit_code == 0, r.stderr
    assert "grant" in r.stdout and "until 2099-12-31" in r.stdout

    policy = load_validated(list_path)  # written where the daemon reads it, and valid against the shapes
    assert policy.provider_code == PROVIDER
    person = {"id": "p1", "type": "Person", "identityNumber": "11010519491231002X", "name": "王秀英", "sex": "2"}
    decision = decide(policy, "population", CONSUMER, PURPOSE, NOW, federation_members=MEMBERS)
    assert decision.allowed and decision.reason_code == "GRANTED"
    assert decision.apply(person) == {"id": "p1", "type": "Person", "identityNumber": "110105********002X",
                                      "name": "王秀英"}
    assert not decide(policy, "population", CONSUMER, "别的用途", NOW, federation_members=MEMBERS).allowed
    assert decide(policy, "population", OTHER, PURPOSE, NOW, federation_members=MEMBERS).reason_code == "NO_GRANT"

    with Store(cfg.store) as st:
        request = st.get_access_request("r-old")
        assert request.status == "approved" and request.decided_by == "operator:王"
    kind, actor, details = _evidence(cfg)[-1]
    assert (kind, actor) == ("access.granted", CONSUMER)
    assert details["request"] == "r-old" and details["dataset"] == "population"
    assert details["items"] == ["identityNumber", "name"] and details["until"] == "2099-12-31"

    r = run("access", "approve", "r-old", "--config", str(cfg.path))
    assert r.exit_code == 2 and "already approved" in r.stderr


def test_approve_by_resource_code_needs_an_end_and_lists_the_configured_id(cfg: NodeConfig) -> None:
    assert cfg.policy.responsibility_list is not None
    r = run("access", "approve", "r-new", "--config", str(cfg.path))
    assert r.exit_code == 2 and "names no end date" in r.stderr and "--until" in r.stderr
    r = run("access", "approve", "r-new", "--config", str(cfg.path), "--until", "2026-13-40")
    assert r.exit_code == 2 and "--until" in r.stderr
    r = run("access", "approve", "r-new", "--config", str(cfg.path), "--until", "长期")
    assert r.exit_code == 0, r.stderr
    # the request named the resource code; the list keys the dataset by its configured id, as the node does
    policy = load_validated(cfg.policy.responsibility_list)
    assert [d.dataset_id for d in policy.datasets] == ["population"]
    assert run("access", "approve", "r-old", "--config", str(cfg.path)).exit_code == 0
    policy = load_validated(cfg.policy.responsibility_list)
    assert [d.dataset_id for d in policy.datasets] == ["population"]
    assert {g.consumer_code for g in policy.grants} == {CONSUMER, OTHER}
    decision = decide(policy, "population", OTHER, "最低生活保障资格核查", NOW + dt.timedelta(days=3650),
                      federation_members=MEMBERS)
    assert decision.allowed and decision.items == frozenset({"name"})


def test_approve_without_a_configured_list_or_for_unknown_requests_exits_2(node_toml: Path) -> None:
    cfg = load_config(node_toml, env={}, check_files=False)
    with Store(cfg.store) as st:
        st.file_access_request(consumer=CONSUMER, dataset="population", purpose=PURPOSE, scenario="s",
                               items=["name"], until=dt.date(2099, 1, 1), request_id="r1")
    r = run("access", "approve", "r1", "--config", str(node_toml))
    assert r.exit_code == 2 and "responsibility_list" in r.stderr
    with Store(cfg.store) as st:
        assert st.get_access_request("r1").status == "pending"
    r = run("access", "deny", "nope", "--config", str(node_toml), "--reason", "x")
    assert r.exit_code == 2 and "no access request 'nope'" in r.stderr


def test_approve_of_an_unconditional_dataset_is_refused_before_anything_is_written(cfg: NodeConfig) -> None:
    with Store(cfg.store) as st:
        st.file_access_request(consumer=CONSUMER, dataset="licences", purpose=PURPOSE, scenario="s",
                               items=["holder"], until=dt.date(2099, 1, 1), request_id="r-lic")
    r = run("access", "approve", "r-lic", "--config", str(cfg.path))
    assert r.exit_code == 2 and "conditional" in r.stderr
    assert cfg.policy.responsibility_list is not None and not cfg.policy.responsibility_list.exists()
    with Store(cfg.store) as st:
        assert st.get_access_request("r-lic").status == "pending"
    assert _evidence(cfg) == []


def test_deny_needs_a_reason_and_records_it(cfg: NodeConfig) -> None:
    r = run("access", "deny", "r-new", "--config", str(cfg.path))
    assert r.exit_code == 2 and "--reason" in r.stderr
    r = run("access", "deny", "r-new", "--config", str(cfg.path), "--reason", "   ")
    assert r.exit_code == 2 and "reason" in r.stderr
    r = run("access", "deny", "r-new", "--config", str(cfg.path), "--reason", "申请用途超出法定职责范围")
    assert r.exit_code == 0, r.stderr
    with Store(cfg.store) as st:
        request = st.get_access_request("r-new")
        assert request.status == "denied" and request.reason == "申请用途超出法定职责范围"
    [(kind, actor, details)] = _evidence(cfg)
    assert (kind, actor) == ("access.refused", OTHER)
    assert details == {"request": "r-new", "dataset": "101001001/000001", "reason": "申请用途超出法定职责范围",
                       "decided_by": str(details["decided_by"])}
    assert str(details["decided_by"]).startswith("operator:")
    r = run("access", "deny", "r-new", "--config", str(cfg.path), "--reason", "again")
    assert r.exit_code == 2 and "already denied" in r.stderr


def test_the_store_repository_serves_the_policy_api(cfg: NodeConfig) -> None:
    with Store(cfg.store) as st:
        repo = StoreAccessRequests(st, decided_by="operator:t")
        assert isinstance(repo, AccessRequestRepository)
        filed = request_access(repo, dataset_id="population", consumer_code=CONSUMER, items=["name"],
                               purpose=PURPOSE, scenario="参保", filed_at=NOW, request_id="r-api")
        assert filed.status is RequestStatus.PENDING and filed.deadline == deadline(NOW)
        assert repo.get("r-api") == filed
        assert [r.request_id for r in repo.list(status=RequestStatus.PENDING, consumer_code=CONSUMER)] == [
            "r-old", "r-api"]
        refused = repo.decide("r-api", status=RequestStatus.REFUSED, decided_at=NOW, reason="不符合条件")
        assert refused.status is RequestStatus.REFUSED and st.get_access_request("r-api").status == "denied"
        assert [r.request_id for r in repo.list(status=RequestStatus.REFUSED)] == ["r-api"]
