"""RequestAccess / GetAccessRequest: requests are checked, stored with a 10-working-day deadline,
and an approval (recorded in the store) takes effect on the running node."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import grpc_testkit as kit
import pytest

from node.errors import InputError, NotFound, PolicyDenied
from node.evidence import EvidenceLog
from node.pki import load_signing_key
from node.policy.access import approve, deadline
from node.service import StoreAccessRequests, add_runtime_grant
from node.store import Store

pytestmark = pytest.mark.integration


def test_request_is_filed_pending_with_its_deadline_and_evidence(fed: kit.Federation) -> None:
    async def main() -> Any:
        async with kit.InProcessNode(fed.provider.config()) as node:
            async with kit.client_for(fed.nodes["expired"], node.address) as client:
                filed = await client.request_access("population", purpose="就业服务", scenario="就业补贴发放审核",
                                                    items=["name", "birthDate"], until=dt.date(2030, 12, 31))
                again = await client.get_access_request(filed["id"])
            async with kit.client_for(fed.nodes["consumer"], node.address) as other:
                with pytest.raises(NotFound):
                    await other.get_access_request(filed["id"])  # another consumer's request is not visible
        return filed, again

    filed, again = asyncio.run(main())
    assert filed == again
    assert filed["status"] == "pending" and filed["consumer"] == kit.EXPIRED
    assert filed["items"] == ["birthDate", "name"] and filed["until"] == "2030-12-31"
    filed_at = dt.datetime.fromisoformat(filed["filed_at"].replace("Z", "+00:00"))
    assert filed["deadline"] == deadline(filed_at, 10).isoformat()
    cfg = fed.provider.config()
    with Store(cfg.store) as store:
        stored = store.get_access_request(filed["id"])
        assert stored.purpose == "就业服务" and stored.scenario == "就业补贴发放审核"
        entries = [e for e in EvidenceLog(store, load_signing_key(cfg.signing_key)).entries()
                   if e.kind == "access.requested"]
    assert len(entries) == 1 and entries[0].actor == kit.EXPIRED and entries[0].details["request"] == filed["id"]


@pytest.mark.parametrize(("dataset", "kwargs", "error", "reason"), [
    ("enterprises", {}, InputError, None),  # unconditional: nothing to ask for
    ("secret", {}, PolicyDenied, "NOT_SHARED"),
    ("nope", {}, NotFound, "UNKNOWN_DATASET"),
    ("population", {"items": ["favouriteColour"]}, InputError, None),
    ("population", {"purpose": ""}, InputError, None),
    ("population", {"scenario": " "}, InputError, None),
    ("population", {"until": dt.date(2001, 1, 1)}, InputError, None),
])
def test_requests_that_cannot_be_granted_are_refused_now(fed: kit.Federation, dataset: str, kwargs: dict[str, Any],
                                                        error: type[Exception], reason: str | None) -> None:
    args: dict[str, Any] = {"purpose": "就业服务", "scenario": "就业补贴发放审核", "items": ["name"], **kwargs}

    async def main() -> Exception:
        async with kit.InProcessNode(fed.provider.config()) as node:
            async with kit.client_for(fed.nodes["expired"], node.address) as client:
                with pytest.raises(error) as info:
                    await client.request_access(dataset, **args)
        return info.value

    err = asyncio.run(main())
    if reason:
        assert getattr(err, "reason", None) == reason


def test_an_approved_request_lets_the_consumer_read_without_restart(fed: kit.Federation) -> None:
    cfg = fed.provider.config()

    async def main() -> Any:
        async with kit.InProcessNode(cfg) as node:
            async with kit.client_for(fed.nodes["expired"], node.address) as client:
                filed = await client.request_access("population", purpose="就业服务", scenario="就业补贴发放审核",
                                                    items=["name"])
                with pytest.raises(PolicyDenied):
                    await client.query_all("population", purpose="就业服务", limit=1)
                # the operator approves (what `shulian access approve` does with these APIs)
                with Store(cfg.store) as store:
                    repo = StoreAccessRequests(store)
                    decided, updated = approve(repo, node.core.current_policy(), filed["id"],
                                               now=dt.datetime.now(dt.UTC), until=dt.date(2099, 1, 1))
                    grant = next(g for g in updated.grants if g.request_id == filed["id"])
                    add_runtime_grant(store, grant)
                status = await client.get_access_request(filed["id"])
                records, delivery = await client.query_all("population", purpose="就业服务", limit=3)
        return decided, status, records, delivery

    decided, status, records, delivery = asyncio.run(main())
    assert decided.grant_id and status["status"] == "approved" and status["decided_at"]
    assert [set(r.data or {}) for r in records] == [{"id", "type", "name"}] * 3
    assert delivery is not None and delivery["grants"] == [decided.grant_id]
