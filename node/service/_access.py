"""Access requests (共享申请) kept in the node's store.

:class:`StoreAccessRequests` implements :class:`node.policy.access.AccessRequestRepository`
over :class:`node.store.Store`, so ``node.policy.access.approve/refuse`` (and the
``shulian access`` commands, which use this class too) work on the same requests the
daemon files. The store calls a refusal ``denied``; the policy layer ``refused``: they
are mapped here. The grant an approval issued is remembered in the store's state
(namespace ``access.grant``), since the request table has no column for it.

:func:`file_request` is what the RequestAccess RPC does: check the request against
the responsibility list (:func:`node.policy.access.request_access`: dataset known,
conditional, items shareable, purpose stated), compute the deadline (10 working days),
and store it with an ``access.requested`` evidence entry in one commit.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from node.errors import AlreadyExists, InputError
from node.evidence import ACCESS_REQUESTED
from node.policy.access import (
    AccessRequest,
    InMemoryAccessRequests,
    RequestStatus,
    deadline,
    request_access,
)
from node.service._core import NodeCore
from node.store import AccessRequest as StoredRequest
from node.store import Store

__all__ = ["StoreAccessRequests", "file_request", "get_request"]

_GRANT_NS = "access.grant"
_TO_STORE = {RequestStatus.PENDING: "pending", RequestStatus.APPROVED: "approved", RequestStatus.REFUSED: "denied"}
_FROM_STORE = {v: k for k, v in _TO_STORE.items()}


class StoreAccessRequests:
    """:class:`~node.policy.access.AccessRequestRepository` backed by the node's store.

    Serves the daemon (:func:`file_request`, the gRPC service) and the operator commands
    (``shulian access``). The store says ``denied`` where the policy model says ``refused``; a
    request stored without a deadline gets the policy's (10 working days after filing). The store
    requires a scenario (应用场景) with every request. The grant id of an approval is kept in the
    store's state (namespace ``access.grant``). The requested end date (``until``) is in the
    store's record only (:meth:`stored`): the policy model has no field for it. ``decided_by``
    (e.g. ``operator:alice``) is recorded with every decision made through this repository.
    """

    def __init__(self, store: Store, *, decided_by: str = "") -> None:
        self.store = store
        self.decided_by = decided_by

    def to_policy(self, r: StoredRequest) -> AccessRequest:
        """The policy layer's view of a stored request."""
        grant = self.store.get_state(_GRANT_NS, r.id)
        return AccessRequest(
            request_id=r.id, dataset_id=r.dataset, consumer_code=r.consumer, items=r.items, purpose=r.purpose,
            filed_at=r.filed_at, deadline=r.deadline or deadline(r.filed_at), scenario=r.scenario or None,
            status=_FROM_STORE[r.status], decided_at=r.decided_at, reason=r.reason or None,
            grant_id=grant if isinstance(grant, str) else None)

    def file(self, request: AccessRequest, *, until: dt.date | None = None) -> AccessRequest:
        stored = self.store.file_access_request(
            consumer=request.consumer_code, dataset=request.dataset_id, purpose=request.purpose,
            scenario=request.scenario or "", items=request.items, until=until, deadline=request.deadline,
            request_id=request.request_id, filed_at=request.filed_at)
        return self.to_policy(stored)

    def list(self, *, status: RequestStatus | None = None, dataset_id: str | None = None,
             consumer_code: str | None = None) -> list[AccessRequest]:
        rows = self.store.list_access_requests(status=None if status is None else _TO_STORE[status],
                                               dataset=dataset_id, consumer=consumer_code)
        return [self.to_policy(r) for r in rows]

    def get(self, request_id: str) -> AccessRequest:
        return self.to_policy(self.store.get_access_request(request_id))

    def decide(self, request_id: str, *, status: RequestStatus, decided_at: dt.datetime, reason: str | None = None,
               grant_id: str | None = None) -> AccessRequest:
        if status is RequestStatus.PENDING:
            raise InputError("a decision is approved or refused, not pending")
        with self.store.transaction():
            try:
                self.store.decide_access_request(request_id, approve=status is RequestStatus.APPROVED,
                                                 reason=reason or "", decided_by=self.decided_by,
                                                 decided_at=decided_at)
            except AlreadyExists as exc:
                raise InputError(exc.message) from exc
            if grant_id:
                self.store.put_state(_GRANT_NS, request_id, grant_id)
        return self.get(request_id)

    def stored(self, request_id: str) -> StoredRequest:
        """The request as the store keeps it (with ``until`` and ``decided_by``)."""
        return self.store.get_access_request(request_id)


def file_request(core: NodeCore, consumer: str, *, dataset: str, purpose: str, scenario: str,
                 items: Sequence[str], until: dt.date | None, via: str = "grpc",
                 request_id: str | None = None) -> StoredRequest:
    """Check and file an access request from ``consumer`` (see the module docstring)."""
    core.record_type(dataset)
    if not scenario.strip():
        raise InputError("access request: state the scenario (应用场景) the data is for")
    now = core.clock()
    if until is not None and until < now.date():
        raise InputError(f"access request: the period ends on {until.isoformat()}, which is already past")
    checked = request_access(InMemoryAccessRequests(), dataset_id=dataset, consumer_code=consumer, items=items,
                             purpose=purpose, filed_at=now, scenario=scenario, policy=core.policy.current())
    repo = StoreAccessRequests(core.store)
    with core.store.transaction():
        repo.file(checked, until=until)
        core.evidence.append(ACCESS_REQUESTED, consumer, {
            "request": checked.request_id, "dataset": dataset, "purpose": checked.purpose, "scenario": scenario,
            "items": list(checked.items), "until": until.isoformat() if until else None,
            "deadline": checked.deadline.isoformat(), "via": via, "request_id": request_id})
    return repo.stored(checked.request_id)


def get_request(core: NodeCore, consumer: str, request_id: str) -> StoredRequest:
    """A request the caller filed (another consumer's request is reported as not found)."""
    from node.errors import NotFound

    if not request_id.strip():
        raise InputError("give the access request id")
    try:
        found = core.store.get_access_request(request_id)
    except NotFound as exc:
        raise NotFound(f"no access request {request_id!r}", reason="UNKNOWN_REQUEST") from exc
    if found.consumer != consumer and consumer != core.department:
        raise NotFound(f"no access request {request_id!r}", reason="UNKNOWN_REQUEST")
    return found
