"""The evidence log: every decision, hash-chained and signed by the node.

    from node.evidence import EvidenceLog, ACCESS_GRANTED
    log = EvidenceLog(store, signing_key)
    log.append(ACCESS_GRANTED, consumer_code, {"dataset": "population", "request": rid})
    with store.transaction():                      # records and their evidence in one commit
        store.upsert_many("population", batch)
        log.append("push.accepted", peer_code, {"dataset": "population", "count": len(batch)})
    report = log.verify()                          # report.ok, report.findings

Entry: seq, time, kind, actor, details (JSON object), prev_hash, hash, key_id, signature.
``hash`` = SHA-256 over the canonical JSON (sorted keys, no spaces, UTF-8) of
{seq, time, kind, actor, details, prev_hash, key_id}; ``prev_hash`` of the first
entry is 64 zeros; ``signature`` = Ed25519 over the 32 hash bytes, base64.
"""

from __future__ import annotations

from node.evidence._entry import (
    ACCESS_GRANTED,
    ACCESS_REFUSED,
    ACCESS_REQUESTED,
    GENESIS_HASH,
    PUSH_ACCEPTED,
    PUSH_REJECTED,
    RECORDS_DELIVERED,
    RECORDS_QUARANTINED,
    RECORDS_RECEIVED,
    EvidenceEntry,
    entry_hash,
)
from node.evidence._log import EvidenceLog
from node.evidence._verify import Finding, VerifyReport, read_export, verify_entries, verify_file

__all__ = [
    "EvidenceLog",
    "EvidenceEntry",
    "Finding",
    "VerifyReport",
    "verify_entries",
    "verify_file",
    "read_export",
    "entry_hash",
    "GENESIS_HASH",
    "ACCESS_REQUESTED",
    "ACCESS_GRANTED",
    "ACCESS_REFUSED",
    "PUSH_ACCEPTED",
    "PUSH_REJECTED",
    "RECORDS_DELIVERED",
    "RECORDS_RECEIVED",
    "RECORDS_QUARANTINED",
]
