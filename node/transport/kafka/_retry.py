"""Retrying quarantined messages (``shulian quarantine retry``) without a broker.

A held message is checked again exactly as on receipt (with today's directory,
subscriptions and standard): if it passes it is stored and marked ``released``,
else it stays ``held`` and the new reason is reported.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from node.config import NodeConfig
from node.evidence import EvidenceLog
from node.federation import load_node_directory
from node.pki import load_encryption_key, load_signing_key
from node.store import QuarantineItem, Store
from node.transport.kafka._inbox import ensure_inbox
from node.transport.kafka._receiver import KEY_HEADER, Incoming, Receiver
from node.validation import Validator

__all__ = ["incoming_from_quarantine", "RetryOutcome", "retry_quarantined"]

log = logging.getLogger(__name__)


def incoming_from_quarantine(item: QuarantineItem) -> Incoming:
    """The message as it was received (the Kafka key travels as the last ``x-shulian-kafka-key`` header)."""
    headers = list(item.headers)
    key: bytes | None = None
    for i in range(len(headers) - 1, -1, -1):
        if headers[i][0] == KEY_HEADER:
            key = headers.pop(i)[1]
            break
    return Incoming(item.topic, item.partition, item.offset, key, item.value, tuple(headers))


@dataclass(frozen=True)
class RetryOutcome:
    id: int
    status: str  # released | held | skipped
    detail: str  # the new reason, or what happened

    @property
    def released(self) -> bool:
        return self.status == "released"


def retry_quarantined(cfg: NodeConfig, store: Store, ids: Iterable[int], validator: Validator) -> list[RetryOutcome]:
    """Check each held message again; store and release those that pass."""
    evidence = EvidenceLog(store, load_signing_key(cfg.signing_key))
    directory = load_node_directory(cfg)
    receiver = Receiver(
        node_code=cfg.department.code,
        subscriptions=cfg.kafka.subscriptions if cfg.kafka else (),
        store=store,
        evidence=evidence,
        validator=validator,
        directory=lambda: directory,
        encryption_key=load_encryption_key(cfg.encryption_key) if cfg.encryption_key else None,
    )
    ensure_inbox(store)
    out: list[RetryOutcome] = []
    for item_id in ids:
        item = store.quarantine_get(item_id)
        if item.status != "held":
            out.append(RetryOutcome(item.id, "skipped", f"already {item.status}"))
            continue
        with store.transaction():
            result = receiver.apply([incoming_from_quarantine(item)], retry_of=item.id)
            if result.rejected:
                out.append(RetryOutcome(item.id, "held", result.rejected[0].reason))
                continue
            store.quarantine_set_status(item.id, "released")
        what = "stored" if result.stored else "already held (duplicate version)"
        out.append(RetryOutcome(item.id, "released", what))
        log.info("quarantined message %d released: %s", item.id, what)
    return out
