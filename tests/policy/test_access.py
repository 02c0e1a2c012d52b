"""Access requests: working-day deadlines, overdue checks, file / approve / refuse."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from node.errors import AlreadyExists, InputError, NotFound, PolicyDenied
from node.policy import MaskRule, ReasonCode, decide
from node.policy.access import (
    AccessRequestRepository,
    InMemoryAccessRequests,
    RequestStatus,
    approve,
    deadline,
    grant_from_request,
    is_overdue,
    is_working_day,
    refuse,
    request_access,
)

from .conftest import MEMBERS, RSJ, YBJ

MON = date(2025, 3, 3)  # a Monday


@pytest.mark.parametrize(
    ("filed", "expected"),
    [
        (MON, date(2025, 3, 17)),  # Monday -> Monday two weeks later
        (date(2025, 3, 7), date(2025, 3, 21)),  # Friday -> Friday two weeks later
        (date(2025, 3, 8), date(2025, 3, 21)),  # Saturday: counting starts Monday
        (date(2025, 3, 9), date(2025, 3, 21)),  # Sunday
        (date(2025, 3, 5), date(2025, 3, 19)),  # Wednesday
    ],
)
def test_ten_working_days(filed, expected):
    assert deadline(filed) == expected


def test_holidays_and_make_up_workdays():
    # 2024 National Day: 10-01..10-07 off, Sunday 09-29 and Saturday 10-12 are working days (调休)
    holidays = [date(2024, 10, d) for d in range(1, 8)]
    extra = [date(2024, 9, 29), date(2024, 10, 12)]
    filed = date(2024, 9, 27)  # Friday
    assert deadline(filed) == date(2024, 10, 11)
    assert deadline(filed, holidays=holidays) == date(2024, 10, 18)
    assert deadline(filed, holidays=holidays, extra_workdays=extra) == date(2024, 10, 16)
    assert is_working_day(date(2024, 9, 29), holidays, extra)
    assert not is_working_day(date(2024, 10, 2), holidays, extra)


def test_other_periods_and_bad_input():
    assert deadline(MON, working_days=5) == date(2025, 3, 10)
    assert deadline(MON, working_days=2) == date(2025, 3, 5)
    assert deadline(MON, working_days=0) == MON
    with pytest.raises(ValueError):
        deadline(MON, working_days=-1)


def test_filing_time_is_read_in_china_time():
    # Friday 2025-03-07 17:00 UTC is Saturday 01:00 in China
    assert deadline(datetime(2025, 3, 7, 17, 0, tzinfo=UTC)) == deadline(date(2025, 3, 8))
    assert deadline(datetime(2025, 3, 7, 15, 0, tzinfo=UTC)) == deadline(date(2025, 3, 7))
    assert deadline(datetime(2025, 3, 7, 23, 0)) == deadline(date(2025, 3, 7))  # naive = CST


@given(st.dates(date(2000, 1, 1), date(2100, 1, 1)), st.integers(0, 40))
def test_deadline_counts_exactly_n_weekdays(filed, n):
    due = deadline(filed, working_days=n)
    days = [filed + timedelta(days=i) for i in range(1, (due - filed).days + 1)]
    assert sum(d.weekday() < 5 for d in days) == n
    assert n == 0 or due.weekday() < 5


@pytest.fixture
def repo() -> InMemoryAccessRequests:
    return InMemoryAccessRequests()


FILED = datetime(2025, 3, 3, 2, 0, tzinfo=UTC)  # Monday 10:00 CST


def _file(repo, policy=None, **kw):
    args = {
        "dataset_id": "101/000001",
        "consumer_code": YBJ,
        "items": ["identityNumber", "name"],
        "purpose": "医保待遇核查",
        "scenario": "异地就医备案",
        "filed_at": FILED,
        "policy": policy,
    }
    args.update(kw)
    return request_access(repo, **args)


def test_file_and_list(repo, policy):
    req = _file(repo, policy)
    assert isinstance(repo, AccessRequestRepository)
    assert req.status is RequestStatus.PENDING
    assert req.deadline == date(2025, 3, 17)
    assert req.items == ("identityNumber", "name") and req.consumer_code == YBJ
    assert repo.get(req.request_id) == req
    assert repo.list(status=RequestStatus.PENDING) == [req]
    assert repo.list(dataset_id="other") == [] and repo.list(consumer_code=YBJ) == [req]
    with pytest.raises(AlreadyExists):
        repo.file(req)
    with pytest.raises(NotFound):
        repo.get("nope")


def test_overdue(repo):
    req = _file(repo)
    assert not is_overdue(req, datetime(2025, 3, 17, 15, 59, tzinfo=UTC))  # 23:59 CST on the deadline
    assert is_overdue(req, datetime(2025, 3, 17, 16, 0, tzinfo=UTC))  # 00:00 CST the day after
    refused = refuse(repo, req.request_id, now=datetime(2025, 3, 20, tzinfo=UTC), reason="用途不明确")
    assert not is_overdue(refused, datetime(2025, 4, 1, tzinfo=UTC))  # answered (late) is not overdue


def test_holidays_move_the_deadline(repo):
    req = _file(repo, holidays=[date(2025, 3, 10)])
    assert req.deadline == date(2025, 3, 18)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"items": []}, InputError, "name the item"),
        ({"purpose": " "}, InputError, "state the purpose"),
        ({"consumer_code": "x"}, InputError, "unified social credit code"),
        ({"items": ["id"]}, InputError, "always delivered"),
    ],
)
def test_bad_requests(repo, kwargs, error, message):
    with pytest.raises(error, match=message):
        _file(repo, **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "error", "reason"),
    [
        ({"dataset_id": "105/000009"}, PolicyDenied, "NOT_SHARED"),
        ({"items": ["ethnicity"]}, PolicyDenied, "ITEM_NOT_GRANTED"),
        ({"dataset_id": "103/000001"}, InputError, "BAD_INPUT"),
        ({"dataset_id": "999/000001"}, NotFound, "NOT_FOUND"),
    ],
)
def test_requests_the_list_cannot_grant_are_refused_at_once(repo, policy, kwargs, error, reason):
    with pytest.raises(error) as caught:
        _file(repo, policy, **kwargs)
    assert caught.value.reason == reason
    assert repo.list() == []


def test_approve_issues_a_grant_that_decide_honours(repo, policy):
    req = _file(repo, policy)
    now = datetime(2025, 3, 10, tzinfo=UTC)
    decided, updated = approve(
        repo,
        policy,
        req.request_id,
        now=now,
        until=date(2026, 12, 31),
        masking={"identityNumber": MaskRule.keep(6, 4)},
        basis="《社会保险法》",
    )
    assert decided.status is RequestStatus.APPROVED and decided.decided_at == now
    grant = next(g for g in updated.grants if g.consumer_code == YBJ)
    assert decided.grant_id == grant.grant_id and grant.request_id == req.request_id
    assert grant.purposes == ("医保待遇核查",)
    d = decide(
        updated,
        "101/000001",
        YBJ,
        "医保待遇核查",
        datetime(2026, 1, 5, tzinfo=UTC),
        federation_members=MEMBERS,
    )
    assert d.reason_code is ReasonCode.GRANTED
    assert d.apply({"id": "p", "identityNumber": "11010519491231002X", "sex": "1"}) == {
        "id": "p",
        "identityNumber": "110105********002X",
    }
    with pytest.raises(InputError, match="already approved"):
        approve(repo, policy, req.request_id, now=now, until=None)
    with pytest.raises(InputError, match="already approved"):
        refuse(repo, req.request_id, now=now, reason="x")


def test_approve_a_subset_of_items(repo, policy):
    req = _file(repo, policy)
    _, updated = approve(repo, policy, req.request_id, now=FILED, until=None, items=["name"])
    assert next(g for g in updated.grants if g.consumer_code == YBJ).items == ("name",)


def test_approve_cannot_grant_more_than_asked(repo, policy):
    req = _file(repo, policy)
    with pytest.raises(InputError, match="did not ask"):
        grant_from_request(req, until=None, items=["name", "sex"])


def test_failed_approval_records_nothing(repo, policy):
    req = _file(repo)  # filed without the policy check: asks for a withheld item
    req2 = _file(repo, items=["ethnicity"])
    with pytest.raises(InputError, match="withheld"):
        approve(repo, policy, req2.request_id, now=FILED, until=None)
    assert repo.get(req2.request_id).status is RequestStatus.PENDING
    assert repo.get(req.request_id).status is RequestStatus.PENDING


def test_refusal_needs_reasons(repo):
    req = _file(repo)
    with pytest.raises(InputError, match="reasons"):
        refuse(repo, req.request_id, now=FILED, reason="  ")
    refused = refuse(repo, req.request_id, now=FILED, reason=" 超出履职需要 ")
    assert refused.status is RequestStatus.REFUSED and refused.reason == "超出履职需要"
    assert repo.list(status=RequestStatus.REFUSED) == [refused]


def test_grant_id_comes_from_the_request(repo, policy):
    req = _file(repo, policy, request_id="req-42")
    assert grant_from_request(req, until=None).grant_id == f"{YBJ}-req-42"
    assert RSJ not in grant_from_request(req, until=None).grant_id


def test_requested_items_must_be_record_properties(repo):
    with pytest.raises(InputError, match="did you mean identityNumber"):
        _file(repo, items=["identitynumber"])
