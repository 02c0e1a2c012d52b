"""Where a dataset's changes go: one route per topic, with the projection the policy decides.

- unconditional (无条件共享): one route to the shared topic, projected and masked as the
  responsibility list says for every consumer (items withheld from everyone are left out);
- conditional (有条件共享): one route per consumer holding a grant in force, to that
  consumer's topic, with its projection (every item its grants cover, the strictest
  masking where two grants differ), encrypted to its X25519 key;
- not shared (不予共享), unknown to the list, or no grant in force: no route.

Without a responsibility list the catalog's sharing type decides: an unconditional
dataset is published whole, anything else is not published.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric import x25519

from node.config import DatasetConfig, NodeConfig
from node.errors import NotFound
from node.federation import FederationDirectory
from node.policy import Decision, Grant, MaskRule, ResponsibilityList, SharingType, decide
from node.policy.model import DatasetPolicy
from node.transport.kafka._topics import consumer_topic, shared_topic

__all__ = ["Route", "RoutePlan", "RoutePlanner", "KAFKA_PURPOSE"]

log = logging.getLogger(__name__)

#: the purpose of the synthetic grant that unites several grants of one consumer for publication
KAFKA_PURPOSE = "Kafka 发布（全部授权用途）"
_CHINA = dt.timezone(dt.timedelta(hours=8))


@dataclass(frozen=True)
class Route:
    topic: str
    dataset: str
    consumer: str | None  # None: the shared topic
    decision: Decision | None  # None: records as stored
    recipient: x25519.X25519PublicKey | None = None

    @property
    def identity(self) -> bool:
        """True when the projection changes nothing (records go out as stored)."""
        d = self.decision
        return d is None or (d.items is None and not d.withheld and not d.maskers)

    @property
    def partial(self) -> bool:
        d = self.decision
        return d is not None and (d.items is not None or bool(d.withheld))

    @property
    def masked(self) -> tuple[str, ...]:
        return () if self.decision is None else tuple(sorted(self.decision.maskers))

    @property
    def id_masked(self) -> bool:
        return self.decision is not None and "id" in self.decision.maskers


@dataclass(frozen=True)
class RoutePlan:
    dataset: str
    routes: tuple[Route, ...]
    # consumers (or "*") not published to, with the reason code and message
    stopped: tuple[tuple[str, str, str], ...] = ()
    reason: str = ""  # why nothing at all is published


class RoutePlanner:
    """Computes a dataset's routes from the current policy and directory (cached per day)."""

    def __init__(self, cfg: NodeConfig, policy: Callable[[], ResponsibilityList | None],
                 directory: Callable[[], FederationDirectory]) -> None:
        self.cfg = cfg
        self.me = cfg.department.code
        self._policy = policy
        self._directory = directory
        self._cache: dict[str, RoutePlan] = {}
        self._cache_key: tuple[int, int, dt.date] | None = None

    def plan(self, ds: DatasetConfig, now: dt.datetime) -> RoutePlan:
        policy, directory = self._policy(), self._directory()
        key = (id(policy), id(directory), now.astimezone(_CHINA).date())
        if key != self._cache_key:
            self._cache = {}
            self._cache_key = key
        found = self._cache.get(ds.id)
        if found is None:
            found = self._cache[ds.id] = self._plan(ds, now, policy, directory)
        return found

    def _plan(self, ds: DatasetConfig, now: dt.datetime, policy: ResponsibilityList | None,
              directory: FederationDirectory) -> RoutePlan:
        shared = shared_topic(self.me, ds.id)
        if policy is None:
            if ds.catalog.sharing_type == "unconditional":
                return RoutePlan(ds.id, (Route(shared, ds.id, None, None),))
            return RoutePlan(ds.id, (), reason=f"no responsibility list: a {ds.catalog.sharing_type} dataset "
                             "is published only to consumers a list grants it to")
        entry_key, entry = _entry(policy, ds)
        if entry is None:
            return RoutePlan(ds.id, (), reason=f"dataset {ds.id!r} (resource code {ds.catalog.resource_code}) "
                             "is not in the responsibility list")
        members = directory.codes | {self.me}
        hash_key = self.cfg.policy.hash_key
        if entry.sharing_type is SharingType.NOT_SHARED:
            return RoutePlan(ds.id, (), reason=f"dataset {ds.id!r} is not shared (不予共享)")
        if entry.sharing_type is SharingType.UNCONDITIONAL:
            d = decide(policy, entry_key, self.me, None, now, federation_members=members, hash_key=hash_key)
            if not d.allowed:
                return RoutePlan(ds.id, (), (("*", d.reason_code.value, d.message),), reason=d.message)
            return RoutePlan(ds.id, (Route(shared, ds.id, None, d),))
        routes: list[Route] = []
        stopped: list[tuple[str, str, str]] = []
        for consumer in sorted({g.consumer_code for g in entry.grants}):
            d = _consumer_decision(policy, entry_key, entry, consumer, now, members, hash_key)
            if not d.allowed:
                stopped.append((consumer, d.reason_code.value, d.message))
                continue
            try:
                recipient = directory.member(consumer).encryption_public_key()
            except NotFound:
                stopped.append((consumer, "NOT_A_MEMBER", f"{consumer} is not in the federation directory"))
                continue
            routes.append(Route(consumer_topic(self.me, ds.id, consumer), ds.id, consumer, d, recipient))
        reason = "" if routes else f"no consumer holds a grant in force for {ds.id!r}"
        return RoutePlan(ds.id, tuple(routes), tuple(stopped), reason)


def _entry(policy: ResponsibilityList, ds: DatasetConfig) -> tuple[str, DatasetPolicy | None]:
    """The list's entry for a configured dataset: by dataset id, else by resource code."""
    for key in (ds.id, ds.catalog.resource_code):
        entry = policy.get(key)
        if entry is not None:
            return key, entry
    return ds.id, None


def _consumer_decision(policy: ResponsibilityList, key: str, entry: DatasetPolicy, consumer: str,
                       now: dt.datetime, members: frozenset[str], hash_key: bytes | None) -> Decision:
    """One decision covering every purpose the consumer's grants name (Kafka has no per-request purpose)."""
    purposes = sorted({p for g in entry.grants_for(consumer) for p in g.purposes})
    decisions = [decide(policy, key, consumer, p, now, federation_members=members, hash_key=hash_key)
                 for p in purposes]
    allowed = [d for d in decisions if d.allowed]
    if not allowed:
        return decisions[-1]
    if all((d.items, dict(d.maskers)) == (allowed[0].items, dict(allowed[0].maskers)) for d in allowed):
        return allowed[0]
    in_force = {gid for d in allowed for gid in d.grant_ids}
    grants = [g for g in entry.grants if g.grant_id in in_force]
    items = sorted({i for g in grants for i in g.items})
    masking: dict[str, MaskRule] = {}
    for g in grants:
        for item, rule in g.masking:
            current = masking.get(item)
            if current is None or rule.strictness > current.strictness:
                masking[item] = rule
    merged = Grant.create(dataset_id=entry.dataset_id, consumer_code=consumer, items=items,
                          purposes=[KAFKA_PURPOSE], until=None, masking=masking,
                          basis="；".join(sorted({g.basis for g in grants if g.basis})) or None)
    view = policy.with_dataset(dataclasses.replace(entry, grants=(merged,)))
    d = decide(view, key, consumer, KAFKA_PURPOSE, now, federation_members=members, hash_key=hash_key)
    return dataclasses.replace(d, grant_ids=tuple(sorted(in_force)))
