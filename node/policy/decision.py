"""The one decision function every transport uses (gRPC and Kafka alike).

:func:`decide` reads the responsibility list and answers one question: may this
consumer receive this dataset, for this purpose, now, and if so which items,
masked how. The answer is a :class:`Decision`. Its :meth:`Decision.apply` is a
projection compiled once per decision (generated straight-line code, no loops
over rules), so applying it to each record of a 100,000-record stream costs about
a microsecond per record.

Rules, in the order they are checked:

1. the consumer must be a federation member, else ``NOT_A_MEMBER``;
2. the dataset must be in the list, else ``UNKNOWN_DATASET``;
3. not shared (不予共享): refused, ``NOT_SHARED``, with its basis;
4. unconditional (无条件共享): allowed (``UNCONDITIONAL``) for every member, minus the
   items withheld from everyone, masked as the list masks them for everyone; asking
   for a withheld item is refused with ``ITEM_NOT_GRANTED``;
5. conditional (有条件共享): the consumer needs a grant (``NO_GRANT``) for the purpose the
   request declares (``PURPOSE_NOT_COVERED``) that has not expired (``GRANT_EXPIRED``,
   expiry dates are inclusive, in China Standard Time), and may receive only the items
   those grants cover (``ITEM_NOT_GRANTED`` when it asks for more), masked as granted.
   When two grants in force for the same purpose cover one item and mask it
   differently, the stricter rule is applied.

What a projection keeps: the granted items, plus the record's ``id`` and ``type``,
which are always delivered because the consumer needs them to store records
idempotently and to apply updates. They are never masked, unless the grant says
``id=hash`` (a keyed hash per consumer, still unique and stable, so idempotent
storage keeps working). A consumer never receives an item its grant does not
cover: unknown keys in a record are dropped by a conditional projection.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from functools import lru_cache
from types import MappingProxyType
from typing import Any, NamedTuple

from node.errors import ConfigError, PolicyDenied

from ._ids import STRUCTURAL_KEYS, local_date, normalise_code, normalise_text
from .masking import MaskMethod, MaskRule, consumer_hash_key
from .model import DatasetPolicy, Grant, ResponsibilityList, SharingType

__all__ = ["ReasonCode", "Decision", "decide", "Projector", "ProjectionPlan", "projection_plan"]

log = logging.getLogger(__name__)

Projector = Callable[[Mapping[str, Any]], dict[str, Any]]


class ReasonCode(StrEnum):
    """Machine-readable outcome of :func:`decide`."""

    UNCONDITIONAL = "UNCONDITIONAL"  # allowed: unconditional dataset
    GRANTED = "GRANTED"  # allowed: a grant covers the request
    NOT_A_MEMBER = "NOT_A_MEMBER"
    UNKNOWN_DATASET = "UNKNOWN_DATASET"
    NOT_SHARED = "NOT_SHARED"
    NO_GRANT = "NO_GRANT"
    PURPOSE_NOT_COVERED = "PURPOSE_NOT_COVERED"
    GRANT_EXPIRED = "GRANT_EXPIRED"
    ITEM_NOT_GRANTED = "ITEM_NOT_GRANTED"

    @property
    def allowed(self) -> bool:
        return self in (ReasonCode.UNCONDITIONAL, ReasonCode.GRANTED)


_NO_MASKS: Mapping[str, MaskRule] = MappingProxyType({})


class ProjectionPlan(NamedTuple):
    """What a decision's projection does, as data: the compiled projector is generated from
    it, and a faster engine (the C query path) may carry it out instead, byte for byte alike."""

    #: the keys delivered, in output order (``id``, ``type``, then the items sorted); None: every
    #: key of the record, in its order, but ``withheld``
    keys: tuple[str, ...] | None
    withheld: tuple[str, ...]
    #: (key, rule), sorted by key
    masks: tuple[tuple[str, MaskRule], ...]


def projection_plan(projector: Projector) -> ProjectionPlan | None:
    """The plan a projector was compiled from (None for any other callable)."""
    plan = getattr(projector, _PLAN_ATTRIBUTE, None)
    return plan if isinstance(plan, ProjectionPlan) else None


_PLAN_ATTRIBUTE = "shulian_projection_plan"


def _plan(items: frozenset[str] | None, withheld: frozenset[str], masks: Mapping[str, MaskRule]) -> ProjectionPlan:
    keys = None if items is None else (*STRUCTURAL_KEYS, *sorted(items))
    return ProjectionPlan(keys, tuple(sorted(withheld)), tuple(sorted(masks.items())))


@dataclass(frozen=True)
class Decision:
    """The answer of :func:`decide`; ``apply`` projects and masks one record.

    For an allowed decision ``apply`` *is* the compiled projection (an instance attribute
    shadowing the method), so calling it per record costs no extra indirection; for a
    denied one it raises :class:`PolicyDenied`.
    """

    allowed: bool
    reason_code: ReasonCode
    dataset_id: str
    consumer_code: str
    purpose: str | None
    decided_on: date
    basis: str | None = None
    #: the items delivered besides ``id``/``type``; ``None`` means every key but ``withheld``
    items: frozenset[str] | None = None
    withheld: frozenset[str] = frozenset()
    maskers: Mapping[str, MaskRule] = field(default_factory=lambda: _NO_MASKS)
    grant_ids: tuple[str, ...] = ()
    message: str = ""
    message_zh: str = ""
    _projector: Projector | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self._projector is not None:
            object.__setattr__(self, "apply", self._projector)

    @property
    def projector(self) -> Projector:
        """The compiled projection itself (call it directly in hot loops). Raises if denied."""
        if self._projector is None:
            raise self.error()
        return self._projector

    def apply(self, record: Mapping[str, Any]) -> dict[str, Any]:
        """Project and mask one record (a new dict; the input is not touched). Raises if denied."""
        if self._projector is None:  # only reached when denied: allowed decisions bind apply itself
            raise self.error()
        return self._projector(record)

    @property
    def plan(self) -> ProjectionPlan | None:
        """What :attr:`projector` does, as data (see :class:`ProjectionPlan`): None when denied, or
        when the projector was not compiled from a plan (then only calling it says what it does)."""
        return projection_plan(self._projector) if self._projector is not None else None

    def apply_many(self, records: Iterable[Mapping[str, Any]]) -> Iterator[dict[str, Any]]:
        return map(self.projector, records)

    def error(self) -> PolicyDenied:
        """The :class:`PolicyDenied` for this denial (reason = the reason code, message with the basis)."""
        text = self.message + (f" (basis: {self.basis})" if self.basis else "")
        return PolicyDenied(text, reason=self.reason_code.value)

    def raise_if_denied(self) -> Decision:
        if not self.allowed:
            raise self.error()
        return self

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (what the evidence log records)."""
        return {
            "allowed": self.allowed,
            "reason": self.reason_code.value,
            "dataset": self.dataset_id,
            "consumer": self.consumer_code,
            "purpose": self.purpose,
            "date": self.decided_on.isoformat(),
            "basis": self.basis,
            "items": None if self.items is None else sorted(self.items),
            "withheld": sorted(self.withheld),
            "masking": {k: r.spec for k, r in sorted(self.maskers.items())},
            "grants": list(self.grant_ids),
            "message": self.message,
        }


def decide(
    policy: ResponsibilityList,
    dataset_id: str,
    consumer_code: str,
    purpose: str | None,
    now: datetime,
    requested_items: Iterable[str] | None = None,
    *,
    federation_members: Collection[str],
    hash_key: bytes | None = None,
) -> Decision:
    """Decide one request against the responsibility list.

    ``requested_items`` ``None`` or empty means "everything I may receive".
    ``federation_members`` holds the members' credit codes. ``hash_key`` is the node's
    masking key, needed only when a rule hashes (else :class:`ConfigError`).
    """
    consumer = normalise_code(consumer_code)
    today = local_date(now)
    asked = frozenset(requested_items or ())
    requested = asked - frozenset(STRUCTURAL_KEYS) if asked else None
    declared = normalise_text(purpose) if purpose else None
    base = {"dataset_id": dataset_id, "consumer_code": consumer, "purpose": declared, "decided_on": today}

    def deny(reason: ReasonCode, en: str, zh: str, basis: str | None = None) -> Decision:
        log.info("deny %s: %s -> %s (%s)", reason.value, dataset_id, consumer, en)
        return Decision(False, reason, basis=basis, message=en, message_zh=zh, **base)  # type: ignore[arg-type]

    if consumer not in federation_members:
        return deny(
            ReasonCode.NOT_A_MEMBER,
            f"{consumer} is not a member of the federation",
            f"{consumer} 不是共享联盟成员",
        )
    ds = policy.get(dataset_id)
    if ds is None:
        return deny(
            ReasonCode.UNKNOWN_DATASET,
            f"dataset {dataset_id!r} is not in the responsibility list",
            f"数据资源 {dataset_id} 不在共享责任清单中",
        )
    if ds.sharing_type is SharingType.NOT_SHARED:
        return deny(
            ReasonCode.NOT_SHARED,
            f"dataset {dataset_id!r} is not shared (不予共享)",
            f"数据资源 {dataset_id} 不予共享",
            ds.basis_text,
        )
    if ds.sharing_type is SharingType.UNCONDITIONAL:
        return _unconditional(ds, requested, hash_key, base, deny)
    return _conditional(ds, consumer, declared, today, requested, hash_key, base, deny)


def _unconditional(
    ds: DatasetPolicy,
    requested: frozenset[str] | None,
    hash_key: bytes | None,
    base: dict[str, Any],
    deny: Callable[..., Decision],
) -> Decision:
    withheld = frozenset(ds.withheld)
    if requested is not None and requested & withheld:
        bad = ", ".join(sorted(requested & withheld))
        return deny(
            ReasonCode.ITEM_NOT_GRANTED,
            f"item(s) {bad} of dataset {ds.dataset_id!r} are withheld from every consumer",
            f"数据资源 {ds.dataset_id} 的信息项 {bad} 不予共享",
            ds.basis_text,
        )
    masks = ds.masking_map
    if requested is not None:
        masks = {k: r for k, r in masks.items() if k in requested or k == "id"}
    projector = _compile(requested, withheld, masks, hash_key, base["consumer_code"])
    return Decision(
        True,
        ReasonCode.UNCONDITIONAL,
        basis=ds.basis_text,
        items=requested,
        withheld=withheld,
        maskers=MappingProxyType(masks),
        message=f"dataset {ds.dataset_id!r} is shared unconditionally (无条件共享)",
        message_zh=f"数据资源 {ds.dataset_id} 无条件共享",
        _projector=projector,
        **base,
    )


def _conditional(
    ds: DatasetPolicy,
    consumer: str,
    purpose: str | None,
    today: date,
    requested: frozenset[str] | None,
    hash_key: bytes | None,
    base: dict[str, Any],
    deny: Callable[..., Decision],
) -> Decision:
    basis = ds.basis_text
    grants = ds.grants_for(consumer)
    if not grants:
        return deny(
            ReasonCode.NO_GRANT,
            f"dataset {ds.dataset_id!r} is conditional (有条件共享) and {consumer} holds no grant for it",
            f"数据资源 {ds.dataset_id} 为有条件共享，{consumer} 未获授权",
            basis,
        )
    covering = [g for g in grants if purpose and g.covers_purpose(purpose)]
    if not covering:
        granted = "; ".join(sorted({p for g in grants for p in g.purposes}))
        said = f"purpose {purpose!r}" if purpose else "no purpose"
        return deny(
            ReasonCode.PURPOSE_NOT_COVERED,
            f"the request declares {said}; the grants of {consumer} on {ds.dataset_id!r} cover: {granted}",
            f"申请用途 {purpose or '（未声明）'} 不在授权用途内（{granted}）",
            basis,
        )
    valid = [g for g in covering if g.valid_on(today)]
    if not valid:
        last = max(g.until for g in covering if g.until is not None)
        return deny(
            ReasonCode.GRANT_EXPIRED,
            f"the grant of {consumer} on {ds.dataset_id!r} for this purpose expired on {last.isoformat()}",
            f"{consumer} 对数据资源 {ds.dataset_id} 的授权已于 {last.isoformat()} 到期",
            basis,
        )
    granted_items = frozenset(i for g in valid for i in g.items)
    if requested is not None and not requested <= granted_items:
        bad = ", ".join(sorted(requested - granted_items))
        return deny(
            ReasonCode.ITEM_NOT_GRANTED,
            f"item(s) {bad} of {ds.dataset_id!r} are not granted to {consumer} for this purpose",
            f"信息项 {bad} 未授权给 {consumer}",
            basis,
        )
    items = requested if requested is not None else granted_items
    masks = _strictest(valid, items)
    grant_basis = "；".join(sorted({g.basis for g in valid if g.basis}))
    projector = _compile(items, frozenset(), masks, hash_key, consumer)
    return Decision(
        True,
        ReasonCode.GRANTED,
        basis=grant_basis or basis,
        items=items,
        maskers=MappingProxyType(masks),
        grant_ids=tuple(g.grant_id for g in valid),
        message=f"granted: {len(items)} item(s) of {ds.dataset_id!r} to {consumer}",
        message_zh=f"已授权：数据资源 {ds.dataset_id} 的 {len(items)} 个信息项",
        _projector=projector,
        **base,
    )


def _strictest(grants: list[Grant], items: frozenset[str]) -> dict[str, MaskRule]:
    """Per delivered key, the strictest rule among the grants that cover it and mask it."""
    out: dict[str, MaskRule] = {}
    for g in grants:
        covered = set(g.items) | {"id"}
        for key, rule in g.masking:
            if key in covered and (key in items or key == "id"):
                current = out.get(key)
                if current is None or rule.strictness > current.strictness:
                    out[key] = rule
    # an item granted unmasked by one grant and masked by another stays masked (stricter wins)
    return out


def _compile(
    items: frozenset[str] | None,
    withheld: frozenset[str],
    masks: Mapping[str, MaskRule],
    hash_key: bytes | None,
    consumer: str,
) -> Projector:
    key: bytes | None = None
    if any(r.method is MaskMethod.HASH for r in masks.values()):
        if not hash_key:
            raise ConfigError(
                "a masking rule hashes values but the node has no masking key; set it in the node configuration",
                key="policy.hash_key",
            )
        key = consumer_hash_key(hash_key, consumer)
    return _build(*_plan(items, withheld, masks), key)


@lru_cache(maxsize=512)
def _build(
    keys: tuple[str, ...] | None,
    withheld: tuple[str, ...],
    masks: tuple[tuple[str, MaskRule], ...],
    key: bytes | None,
) -> Projector:
    """Generate the projection as straight-line code (keys are inlined as literals via ``repr``)."""
    ns: dict[str, Any] = {}
    maskers = {k: r.compile(key) for k, r in masks}
    slot = {k: f"m{i}" for i, k in enumerate(maskers)}
    for k, name in slot.items():
        ns[name] = maskers[k]
    # maskers are bound as default arguments: fast locals, no global lookups per record
    params = "".join(f", {name}={name}" for name in slot.values())
    lines = [f"def project(r{params}):"]
    if keys is not None:  # allow-list: only these keys, in this order
        lines.append("    o = {}")
        for k in keys:
            value = f"{slot[k]}(r[{k!r}])" if k in slot else f"r[{k!r}]"
            lines.append(f"    if {k!r} in r: o[{k!r}] = {value}")
    else:  # deny-list: every key but the withheld ones
        lines.append("    o = dict(r)")
        if withheld:
            lines.append("    p = o.pop")
            lines.extend(f"    p({k!r}, None)" for k in withheld)
        for k, name in slot.items():
            lines.append(f"    if {k!r} in o: o[{k!r}] = {name}(o[{k!r}])")
    lines.append("    return o")
    exec(compile("\n".join(lines), "<shulian policy projection>", "exec"), ns)  # noqa: S102 - keys are repr() literals
    project: Projector = ns["project"]
    setattr(project, _PLAN_ATTRIBUTE, ProjectionPlan(keys, withheld, masks))  # the plan travels with its code
    return project
