"""Access requests (共享申请) for conditional datasets, and their working-day deadlines.

A consumer files a request (dataset, items, purpose of use, scenario); the
provider must answer within 10 working days (a refusal must give reasons). An
approved request becomes a :class:`~node.policy.model.Grant` in the list.

Persistence is behind :class:`AccessRequestRepository` (file/list/get/decide), so
the node's store can implement it; :class:`InMemoryAccessRequests` is the
reference implementation used by unit tests.

Deadlines: a request filed on day D (China Standard Time) is due at the end of the
N-th working day after D. Working days are Monday to Friday, minus ``holidays``,
plus ``extra_workdays`` (the weekend days China declares working days, 调休).
Both come from configuration; the defaults are empty.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Protocol, runtime_checkable

from node.errors import AlreadyExists, InputError, NotFound, PolicyDenied

from ._ids import check_credit_code, check_dataset_id, check_item_key, local_date, normalise_text
from ._standard import check_record_key
from .masking import MaskRule
from .model import Grant, ResponsibilityList, SharingType

__all__ = [
    "RequestStatus",
    "AccessRequest",
    "AccessRequestRepository",
    "InMemoryAccessRequests",
    "deadline",
    "is_working_day",
    "is_overdue",
    "request_access",
    "grant_from_request",
    "approve",
    "refuse",
    "DEFAULT_WORKING_DAYS",
]

log = logging.getLogger(__name__)

#: Days a provider has to answer a request for a conditional resource.
DEFAULT_WORKING_DAYS = 10


class RequestStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REFUSED = "refused"


@dataclass(frozen=True, slots=True)
class AccessRequest:
    request_id: str
    dataset_id: str
    consumer_code: str
    items: tuple[str, ...]
    purpose: str
    filed_at: datetime
    deadline: date
    scenario: str | None = None
    status: RequestStatus = RequestStatus.PENDING
    decided_at: datetime | None = None
    reason: str | None = None  # the refusal's reasons, or a note on approval
    grant_id: str | None = None  # the grant issued on approval


@runtime_checkable
class AccessRequestRepository(Protocol):
    """Where requests live (the node's store implements this)."""

    def file(self, request: AccessRequest) -> AccessRequest:
        """Store a new request; :class:`AlreadyExists` if the id is taken."""
        ...

    def list(
        self,
        *,
        status: RequestStatus | None = None,
        dataset_id: str | None = None,
        consumer_code: str | None = None,
    ) -> list[AccessRequest]:
        """Requests matching every given filter, oldest first."""
        ...

    def get(self, request_id: str) -> AccessRequest:
        """One request; :class:`NotFound` if unknown."""
        ...

    def decide(
        self,
        request_id: str,
        *,
        status: RequestStatus,
        decided_at: datetime,
        reason: str | None = None,
        grant_id: str | None = None,
    ) -> AccessRequest:
        """Record the answer to a pending request; :class:`InputError` if it was already answered."""
        ...


class InMemoryAccessRequests:
    """A dict-backed repository (unit tests and examples only: nothing persists)."""

    def __init__(self) -> None:
        self._items: dict[str, AccessRequest] = {}

    def file(self, request: AccessRequest) -> AccessRequest:
        if request.request_id in self._items:
            raise AlreadyExists(f"access request {request.request_id} already exists")
        self._items[request.request_id] = request
        return request

    def list(
        self,
        *,
        status: RequestStatus | None = None,
        dataset_id: str | None = None,
        consumer_code: str | None = None,
    ) -> list[AccessRequest]:
        found = [
            r
            for r in self._items.values()
            if (status is None or r.status is status)
            and (dataset_id is None or r.dataset_id == dataset_id)
            and (consumer_code is None or r.consumer_code == consumer_code)
        ]
        return sorted(found, key=lambda r: (r.filed_at, r.request_id))

    def get(self, request_id: str) -> AccessRequest:
        try:
            return self._items[request_id]
        except KeyError:
            raise NotFound(f"no access request {request_id}") from None

    def decide(
        self,
        request_id: str,
        *,
        status: RequestStatus,
        decided_at: datetime,
        reason: str | None = None,
        grant_id: str | None = None,
    ) -> AccessRequest:
        current = self.get(request_id)
        if current.status is not RequestStatus.PENDING:
            raise InputError(f"access request {request_id} was already {current.status.value}")
        if status is RequestStatus.PENDING:
            raise InputError("a decision is approved or refused, not pending")
        updated = replace(current, status=status, decided_at=decided_at, reason=reason, grant_id=grant_id)
        self._items[request_id] = updated
        return updated


# ------------------------------------------------------------------ working days


def is_working_day(day: date, holidays: Iterable[date] = (), extra_workdays: Iterable[date] = ()) -> bool:
    if day in set(extra_workdays):
        return True
    return day.weekday() < 5 and day not in set(holidays)


def deadline(
    filed_at: datetime | date,
    working_days: int = DEFAULT_WORKING_DAYS,
    holidays: Iterable[date] = (),
    extra_workdays: Iterable[date] = (),
) -> date:
    """The last day (inclusive) to answer a request filed at ``filed_at``: the ``working_days``-th
    working day after the filing day (China Standard Time; naive datetimes are taken as CST)."""
    if working_days < 0:
        raise ValueError("working_days cannot be negative")
    day = local_date(filed_at) if isinstance(filed_at, datetime) else filed_at
    off = frozenset(holidays)
    extra = frozenset(extra_workdays)
    counted = 0
    while counted < working_days:
        day += timedelta(days=1)
        if day in extra or (day.weekday() < 5 and day not in off):
            counted += 1
    return day


def is_overdue(request: AccessRequest, now: datetime) -> bool:
    """True when the request is still pending after its deadline day (CST)."""
    return request.status is RequestStatus.PENDING and local_date(now) > request.deadline


# ------------------------------------------------------------------ operations


def request_access(
    repo: AccessRequestRepository,
    *,
    dataset_id: str,
    consumer_code: str,
    items: Iterable[str],
    purpose: str,
    filed_at: datetime,
    scenario: str | None = None,
    policy: ResponsibilityList | None = None,
    working_days: int = DEFAULT_WORKING_DAYS,
    holidays: Iterable[date] = (),
    extra_workdays: Iterable[date] = (),
    request_id: str | None = None,
) -> AccessRequest:
    """File a pending request (RequestAccess). With ``policy``, requests that cannot be granted are refused now:
    unknown dataset (:class:`NotFound`), unconditional (no request needed), not shared or withheld items
    (:class:`PolicyDenied` with the basis)."""
    try:
        ds_id = check_dataset_id(dataset_id)
        consumer = check_credit_code(consumer_code, "consumer")
        keys = tuple(sorted({check_record_key(check_item_key(i)) for i in items}))
    except ValueError as exc:
        raise InputError(f"access request: {exc}") from exc
    if not keys:
        raise InputError("access request: name the item(s) you need (信息项)")
    stated = normalise_text(purpose) if purpose else ""
    if not stated:
        raise InputError("access request: state the purpose of use (使用用途)")
    if policy is not None:
        ds = policy.dataset(ds_id)
        if ds.sharing_type is SharingType.UNCONDITIONAL:
            raise InputError(
                f"dataset {ds_id!r} is shared unconditionally (无条件共享); no request is needed"
            )
        if ds.sharing_type is SharingType.NOT_SHARED:
            raise PolicyDenied(
                f"dataset {ds_id!r} is not shared (不予共享); basis: {ds.basis_text}", reason="NOT_SHARED"
            )
        withheld = sorted(set(keys) & set(ds.withheld))
        if withheld:
            raise PolicyDenied(
                f"item(s) {', '.join(withheld)} of {ds_id!r} are not shared; basis: {ds.basis_text}",
                reason="ITEM_NOT_GRANTED",
            )
    request = AccessRequest(
        request_id=request_id or f"req-{uuid.uuid4().hex[:16]}",
        dataset_id=ds_id,
        consumer_code=consumer,
        items=keys,
        purpose=stated,
        scenario=scenario.strip() if scenario and scenario.strip() else None,
        filed_at=filed_at,
        deadline=deadline(filed_at, working_days, holidays, extra_workdays),
    )
    log.info(
        "access request %s filed: %s -> %s, due %s", request.request_id, ds_id, consumer, request.deadline
    )
    return repo.file(request)


def grant_from_request(
    request: AccessRequest,
    *,
    until: date | None,
    masking: Mapping[str, MaskRule] | None = None,
    basis: str | None = None,
    items: Iterable[str] | None = None,
) -> Grant:
    """The grant an approval issues: the request's consumer, items (or a subset) and purpose."""
    granted = tuple(items) if items is not None else request.items
    extra = sorted(set(granted) - set(request.items))
    if extra:
        raise InputError(
            f"cannot grant item(s) {', '.join(extra)}: request {request.request_id} did not ask for them"
        )
    return Grant.create(
        dataset_id=request.dataset_id,
        consumer_code=request.consumer_code,
        items=granted,
        purposes=(request.purpose,),
        until=until,
        masking=masking,
        basis=basis,
        request_id=request.request_id,
        grant_id=f"{request.consumer_code}-{request.request_id}",
    )


def approve(
    repo: AccessRequestRepository,
    policy: ResponsibilityList,
    request_id: str,
    *,
    now: datetime,
    until: date | None,
    masking: Mapping[str, MaskRule] | None = None,
    basis: str | None = None,
    items: Iterable[str] | None = None,
    note: str | None = None,
) -> tuple[AccessRequest, ResponsibilityList]:
    """Approve a pending request: returns the decided request and the list with the new grant
    (the caller persists the list)."""
    request = repo.get(request_id)
    if request.status is not RequestStatus.PENDING:
        raise InputError(f"access request {request_id} was already {request.status.value}")
    grant = grant_from_request(request, until=until, masking=masking, basis=basis, items=items)
    updated_policy = policy.with_grant(grant)  # validates before anything is recorded
    decided = repo.decide(
        request_id, status=RequestStatus.APPROVED, decided_at=now, reason=note, grant_id=grant.grant_id
    )
    return decided, updated_policy


def refuse(repo: AccessRequestRepository, request_id: str, *, now: datetime, reason: str) -> AccessRequest:
    """Refuse a pending request; a refusal must give its reasons."""
    if not reason or not reason.strip():
        raise InputError("a refusal must give its reasons (拒绝须说明理由)")
    return repo.decide(request_id, status=RequestStatus.REFUSED, decided_at=now, reason=reason.strip())
