"""The responsibility list and the federation directory of a running node, reloaded when they change.

A node's policy is its responsibility list file (``[policy] responsibility_list``)
merged with what the configuration says about each dataset (its catalog
``sharing_type`` and ``sharing_basis``) and with grants recorded at run time in the
store. :meth:`PolicySource.current` returns the list in force and reloads it when

- the list file changed (its mtime, size or inode: ``shulian list grant --list FILE``
  and :func:`node.policy.dump_list` replace it atomically), or
- the store's policy version changed (:func:`add_runtime_grant` /
  :func:`revoke_runtime_grants` bump it in the transaction that records the grant).

So an approval by the CLI takes effect on a running daemon at its next request,
without a restart. A file that no longer loads leaves the last good list in force
(and is logged); the node never falls back to "no policy".

Precedence: a dataset in the list file is governed by the file; a dataset only in the
configuration gets a policy from its catalog metadata (unconditional / conditional
without grants / not shared, with its basis). Run-time grants are added on top.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from node.config import NodeConfig
from node.errors import ConfigError, InputError, ShulianError
from node.federation import FederationDirectory, load_node_directory
from node.policy import DatasetPolicy, Grant, MaskRule, ResponsibilityList, SharingType
from node.store import Store

__all__ = [
    "PolicySource",
    "DirectorySource",
    "config_policy",
    "add_runtime_grant",
    "revoke_runtime_grants",
    "runtime_grants",
    "grant_to_json",
    "grant_from_json",
    "POLICY_STATE_NAMESPACE",
    "GRANTS_STATE_NAMESPACE",
]

log = logging.getLogger(__name__)

#: store state (namespace, key) holding the policy version counter
POLICY_STATE_NAMESPACE = "policy"
_VERSION_KEY = "version"
#: store state namespace holding run-time grants: key = grant id, value = :func:`grant_to_json`
GRANTS_STATE_NAMESPACE = "policy.grants"

_SHARING = {
    "unconditional": SharingType.UNCONDITIONAL,
    "conditional": SharingType.CONDITIONAL,
    "not_shared": SharingType.NOT_SHARED,
}


_RECENT_NS = 2_000_000_000


def _stat_key(path: Path | None) -> tuple[int, int, int, bytes] | None:
    """What identifies a version of a file: mtime, size, inode, and, while the file is younger than
    two seconds (timestamps are coarse: two quick rewrites can share one), a digest of its content."""
    if path is None:
        return None
    try:
        st = os.stat(path)
        digest = b""
        if time.time_ns() - st.st_mtime_ns < _RECENT_NS:
            digest = hashlib.blake2b(Path(path).read_bytes(), digest_size=16).digest()
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino, digest)


# ---------------------------------------------------------------------------- run-time grants


def grant_to_json(grant: Grant) -> dict[str, Any]:
    return {
        "grant_id": grant.grant_id,
        "dataset": grant.dataset_id,
        "consumer": grant.consumer_code,
        "items": list(grant.items),
        "purposes": list(grant.purposes),
        "until": grant.until.isoformat() if grant.until else None,
        "masking": {k: r.spec for k, r in grant.masking},
        "basis": grant.basis,
        "request_id": grant.request_id,
    }


def grant_from_json(value: Mapping[str, Any]) -> Grant:
    try:
        until = value.get("until")
        return Grant.create(
            grant_id=str(value.get("grant_id") or ""),
            dataset_id=str(value["dataset"]),
            consumer_code=str(value["consumer"]),
            items=[str(i) for i in value["items"]],
            purposes=[str(p) for p in value["purposes"]],
            until=dt.date.fromisoformat(until) if until else None,
            masking={str(k): MaskRule.parse(str(v)) for k, v in dict(value.get("masking") or {}).items()},
            basis=value.get("basis"),
            request_id=value.get("request_id"),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"a run-time grant in the store is malformed: {exc}") from exc


def _bump(store: Store) -> None:
    current = store.get_state(POLICY_STATE_NAMESPACE, _VERSION_KEY, 0)
    store.put_state(POLICY_STATE_NAMESPACE, _VERSION_KEY, int(current) + 1)


def add_runtime_grant(store: Store, grant: Grant) -> None:
    """Record a grant in the store (e.g. on approving an access request); running nodes pick it up."""
    with store.transaction():
        store.put_state(GRANTS_STATE_NAMESPACE, grant.grant_id, grant_to_json(grant))
        _bump(store)


def revoke_runtime_grants(store: Store, dataset_id: str, consumer_code: str) -> int:
    """Remove the run-time grants of a consumer on a dataset; returns how many were removed."""
    removed = 0
    with store.transaction():
        for key, value in store.state_items(GRANTS_STATE_NAMESPACE):
            if isinstance(value, dict) and value.get("dataset") == dataset_id \
                    and value.get("consumer") == consumer_code.strip().upper():
                removed += int(store.delete_state(GRANTS_STATE_NAMESPACE, key))
        if removed:
            _bump(store)
    return removed


def runtime_grants(store: Store) -> list[Grant]:
    out: list[Grant] = []
    for key, value in store.state_items(GRANTS_STATE_NAMESPACE):
        try:
            out.append(grant_from_json(value))
        except InputError as exc:
            log.error("ignoring run-time grant %s: %s", key, exc.message)
    return out


# ---------------------------------------------------------------------------- policy


def config_policy(cfg: NodeConfig) -> list[DatasetPolicy]:
    """A policy per configured dataset from its catalog metadata (sharing type and basis)."""
    out: list[DatasetPolicy] = []
    for ds in cfg.datasets:
        meta = ds.catalog
        basis = (meta.sharing_basis,) if meta.sharing_basis.strip() else ()
        try:
            out.append(DatasetPolicy(ds.id, _SHARING[meta.sharing_type], title=meta.title_zh, basis=basis,
                                     conditions=(meta.sharing_conditions,) if meta.sharing_conditions else ()))
        except InputError as exc:
            raise ConfigError(exc.message, file=str(cfg.path), key=f"datasets[{ds.id}].catalog") from exc
    return out


def _merge(base: Iterable[DatasetPolicy], listed: ResponsibilityList | None, grants: Iterable[Grant],
           provider: str) -> ResponsibilityList:
    by_id = {d.dataset_id: d for d in base}
    title = None
    if listed is not None:
        title = listed.title
        for d in listed.datasets:
            configured = by_id.get(d.dataset_id)
            if configured is not None and configured.sharing_type is not d.sharing_type:
                log.warning("dataset %s: the responsibility list says %s, the configuration %s; the list governs",
                            d.dataset_id, d.sharing_type.label_en, configured.sharing_type.label_en)
            by_id[d.dataset_id] = d
    result = ResponsibilityList(tuple(by_id.values()), provider_code=provider, title=title)
    for g in grants:
        try:
            result = result.with_grant(g)
        except ShulianError as exc:
            log.error("ignoring run-time grant %s: %s", g.grant_id, exc.message)
    return result


class PolicySource:
    """The responsibility list in force; see the module docstring for what reloads it."""

    def __init__(self, cfg: NodeConfig, store: Store | None = None) -> None:
        self.cfg = cfg
        self.store = store
        self.path = cfg.policy.responsibility_list
        self._base = config_policy(cfg)
        self._lock = threading.Lock()
        self._stamp: tuple[Any, ...] | None = None
        self._listed: ResponsibilityList | None = None
        self._current: ResponsibilityList | None = None
        self.reloads = 0

    def _state_version(self) -> int:
        if self.store is None:
            return 0
        try:
            return int(self.store.get_state(POLICY_STATE_NAMESPACE, _VERSION_KEY, 0))
        except (TypeError, ValueError):
            return 0

    def load(self) -> ResponsibilityList:
        """Load now (at start: a list that does not load is a :class:`ConfigError`)."""
        with self._lock:
            return self._reload(strict=True)

    def current(self) -> ResponsibilityList:
        """The list in force, reloaded first if its file or the store's policy version changed."""
        stamp = (_stat_key(self.path), self._state_version())
        current = self._current
        if current is not None and stamp == self._stamp:
            return current
        with self._lock:
            if self._current is not None and stamp == self._stamp:
                return self._current
            return self._reload(strict=False)

    def _reload(self, *, strict: bool) -> ResponsibilityList:
        from node.policy import load_list

        stamp = (_stat_key(self.path), self._state_version())
        listed = self._listed
        if self.path is not None and (self._stamp is None or stamp[0] != self._stamp[0]):
            try:
                listed = load_list(self.path)
            except ShulianError as exc:
                if strict:
                    raise ConfigError(f"the responsibility list does not load: {exc.message}",
                                      file=str(self.cfg.path), key="policy.responsibility_list") from exc
                log.error("the responsibility list %s no longer loads; keeping the previous one: %s",
                          self.path, exc.message)
        grants = runtime_grants(self.store) if self.store is not None else []
        merged = _merge(self._base, listed, grants, self.cfg.department.code)
        self._listed, self._current, self._stamp = listed, merged, stamp
        self.reloads += 1
        log.info("responsibility list loaded: %d dataset(s), %d grant(s)", len(merged.datasets),
                 len(merged.grants), extra={"policy_file": str(self.path) if self.path else None})
        return merged


# ---------------------------------------------------------------------------- directory


class DirectorySource:
    """The federation directory in force, re-verified and reloaded when its file changes."""

    def __init__(self, cfg: NodeConfig) -> None:
        self.cfg = cfg
        self._lock = threading.Lock()
        self._stamp: tuple[int, int, int, bytes] | None = None
        self._current: FederationDirectory | None = None
        self._codes: frozenset[str] = frozenset()

    def load(self) -> FederationDirectory:
        with self._lock:
            directory = load_node_directory(self.cfg)
            self._set(directory, _stat_key(self.cfg.federation))
            return directory

    def _set(self, directory: FederationDirectory, stamp: tuple[int, int, int, bytes] | None) -> None:
        self._current, self._stamp, self._codes = directory, stamp, frozenset(directory.codes)

    def current(self) -> FederationDirectory:
        stamp = _stat_key(self.cfg.federation)
        if self._current is not None and stamp == self._stamp:
            return self._current
        with self._lock:
            if self._current is not None and stamp == self._stamp:
                return self._current
            try:
                directory = load_node_directory(self.cfg)
            except ShulianError as exc:
                if self._current is None:
                    raise
                log.error("the federation directory %s no longer verifies; keeping version %s: %s",
                          self.cfg.federation, self._current.version, exc.message)
                self._stamp = stamp
                return self._current
            if self._current is not None and directory.version < self._current.version:
                log.error("the federation directory %s went back from version %s to %s; keeping the newer one",
                          self.cfg.federation, self._current.version, directory.version)
                self._stamp = stamp
                return self._current
            self._set(directory, stamp)
            log.info("federation directory loaded: version %s, %d member(s)", directory.version, len(directory))
            return directory

    def codes(self) -> frozenset[str]:
        self.current()
        return self._codes

    def member_key(self, code: str) -> Any:
        """The signing public key of member ``code`` (:class:`NotFound` if not a member)."""
        return self.current().member(code).signing_public_key()
