"""node.store: access requests, policy state, quarantine."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest

from node.errors import AlreadyExists, InputError, NotFound
from node.store import Store

CONSUMER = "91110108551385082Q"


@pytest.fixture()
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(tmp_path / "store.db") as s:
        yield s


def test_access_request_lifecycle(store: Store) -> None:
    req = store.file_access_request(consumer=CONSUMER, dataset="population", purpose="社保待遇资格认证",
                                    scenario="养老金发放前核验", items=["name", "identityNumber"],
                                    until=dt.date(2026, 12, 31), deadline=dt.date(2026, 1, 15))
    assert req.status == "pending" and req.items == ("name", "identityNumber")
    assert req.until == dt.date(2026, 12, 31) and req.deadline == dt.date(2026, 1, 15)
    assert req.filed_at.tzinfo is not None and req.decided_at is None
    assert store.get_access_request(req.id) == req
    assert [r.id for r in store.list_access_requests(status="pending")] == [req.id]
    with pytest.raises(InputError, match="reason"):
        store.decide_access_request(req.id, approve=False)
    done = store.decide_access_request(req.id, approve=False, reason="超出职责范围", decided_by="operator:王")
    assert done.status == "denied" and done.reason == "超出职责范围" and done.decided_at is not None
    assert done.decided_by == "operator:王"
    with pytest.raises(AlreadyExists, match="already denied"):
        store.decide_access_request(req.id, approve=True)
    assert store.list_access_requests(status="pending") == []
    assert [r.status for r in store.list_access_requests(consumer=CONSUMER, dataset="population")] == ["denied"]


def test_access_request_errors(store: Store) -> None:
    with pytest.raises(InputError, match="purpose"):
        store.file_access_request(consumer=CONSUMER, dataset="d", purpose=" ", scenario="s")
    store.file_access_request(consumer=CONSUMER, dataset="d", purpose="p", scenario="s", request_id="r1")
    with pytest.raises(AlreadyExists):
        store.file_access_request(consumer=CONSUMER, dataset="d", purpose="p", scenario="s", request_id="r1")
    with pytest.raises(NotFound):
        store.get_access_request("nope")
    with pytest.raises(NotFound):
        store.decide_access_request("nope", approve=True)
    with pytest.raises(InputError, match="unknown status"):
        store.list_access_requests(status="maybe")
    approved = store.decide_access_request("r1", approve=True)
    assert approved.status == "approved" and approved.reason == ""
    assert len(store.list_access_requests(limit=1)) == 1


def test_policy_state(store: Store) -> None:
    store.put_state("grants", "g1", {"consumer": CONSUMER, "items": ["name"], "until": "2026-12-31"})
    store.put_state("grants", "g0", [1, 2])
    assert store.get_state("grants", "g1")["items"] == ["name"]
    assert [k for k, _ in store.state_items("grants")] == ["g0", "g1"]
    store.put_state("grants", "g0", {"replaced": True})
    assert store.get_state("grants", "g0") == {"replaced": True}
    assert store.delete_state("grants", "g0") is True and store.delete_state("grants", "g0") is False
    assert store.get_state("grants", "g0", default="none") == "none"
    with pytest.raises(InputError):
        store.put_state("grants", "bad", {1, 2})


def test_quarantine(store: Store) -> None:
    headers = [("ce_id", b"abc"), ("ce_type", "shulian.record"), ("sig", b"\xff\x00\x01"), ("empty", None)]
    item = store.quarantine_add(topic="t.consumer", partition=2, offset=41, headers=headers,
                                value=b'{"id": "x"}', reason="identityNumber: bad check character")
    assert item.status == "held" and item.offset == 41 and item.partition == 2
    assert item.headers == (("ce_id", b"abc"), ("ce_type", b"shulian.record"), ("sig", b"\xff\x00\x01"),
                            ("empty", b""))
    again = store.quarantine_add(topic="t.consumer", partition=2, offset=41, headers=[], value=b"other",
                                 reason="dup")
    assert again.id == item.id and again.value == b'{"id": "x"}'  # idempotent on redelivery
    second = store.quarantine_add(topic="t.consumer", partition=2, offset=42, headers=[], value=None, reason="r")
    assert [q.id for q in store.quarantine_list()] == [item.id, second.id]
    assert store.quarantine_set_status(item.id, "released").status == "released"
    assert [q.id for q in store.quarantine_list(status="held")] == [second.id]
    assert [q.id for q in store.quarantine_list(after_id=item.id)] == [second.id]
    with pytest.raises(NotFound):
        store.quarantine_get(999)
    with pytest.raises(NotFound):
        store.quarantine_set_status(999, "held")
    with pytest.raises(InputError):
        store.quarantine_set_status(item.id, "lost")
