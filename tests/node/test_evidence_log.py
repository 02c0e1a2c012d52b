"""node.evidence: the hash chain, signatures, and detection of altered, removed and reordered entries."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from node.errors import InputError
from node.evidence import (
    GENESIS_HASH,
    EvidenceLog,
    entry_hash,
    read_export,
    verify_entries,
    verify_file,
)
from node.store import Store

CODE = "91110108551385082Q"


@pytest.fixture()
def key() -> ed25519.Ed25519PrivateKey:
    return ed25519.Ed25519PrivateKey.generate()


@pytest.fixture()
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(tmp_path / "store.db") as s:
        yield s


def fill(log: EvidenceLog, n: int = 10) -> None:
    kinds = ["access.granted", "access.refused", "push.accepted", "push.rejected", "records.delivered"]
    log.append_many([(kinds[i % len(kinds)], CODE, {"i": i, "dataset": "population", "数": "量"})
                     for i in range(n)])


def problems(log: EvidenceLog) -> list[tuple[int, str]]:
    return [(f.seq, f.problem) for f in log.verify().findings]


def test_append_chain_and_signature(store: Store, key: ed25519.Ed25519PrivateKey) -> None:
    log = EvidenceLog(store, key)
    first = log.append("access.granted", CODE, {"dataset": "population", "items": ["name"]})
    second = log.append("records.delivered", CODE, {"count": 3})
    assert (first.seq, second.seq) == (1, 2)
    assert first.prev_hash == GENESIS_HASH and second.prev_hash == first.hash
    assert first.hash == entry_hash(seq=1, time=first.time, kind=first.kind, actor=CODE, details=first.details,
                                    prev_hash=GENESIS_HASH, key_id=first.key_id)
    assert first.signature_ok(key.public_key())
    assert first.time.endswith("Z")
    assert log.count() == 2 and log.head() == second
    assert [e.seq for e in log.tail(1)] == [2]
    report = log.verify()
    assert report.ok and report.entries == 2 and report.head_seq == 2 and report.head_hash == second.hash


def test_batch_append_is_one_transaction_with_records(store: Store, key: ed25519.Ed25519PrivateKey) -> None:
    log = EvidenceLog(store, key)
    store.ensure_dataset("population")
    with pytest.raises(RuntimeError):
        with store.transaction():
            store.upsert_many("population", [("a", {"x": 1})])
            log.append("push.accepted", CODE, {"count": 1})
            raise RuntimeError("crash before commit")
    assert log.count() == 0 and store.count_records("population") == 0
    with store.transaction():
        store.upsert_many("population", [("a", {"x": 1})])
        log.append("push.accepted", CODE, {"count": 1})
    assert log.count() == 1 and store.count_records("population") == 1
    entries = log.append_many([("push.accepted", CODE, {"b": b}) for b in range(100)])
    assert [e.seq for e in entries] == list(range(2, 102))
    assert log.verify().ok


def test_append_checks_input(store: Store, key: ed25519.Ed25519PrivateKey) -> None:
    log = EvidenceLog(store, key)
    with pytest.raises(InputError, match="kind"):
        log.append("Granted", CODE)
    with pytest.raises(InputError, match="actor"):
        log.append("access.granted", "")
    with pytest.raises(InputError, match="JSON"):
        log.append("access.granted", CODE, {"x": object()})
    with pytest.raises(InputError, match="signing key"):
        EvidenceLog(store).append("access.granted", CODE)
    assert log.append_many([]) == []


def test_altered_entry_is_found(store: Store, key: ed25519.Ed25519PrivateKey) -> None:
    log = EvidenceLog(store, key)
    fill(log)
    with store.transaction() as conn:
        conn.execute("UPDATE evidence SET details = ? WHERE seq = 5", (json.dumps({"i": 999}),))
    assert problems(log) == [(5, "altered")]
    assert "seq 5: altered" in str(log.verify().findings[0])


def test_altered_and_rehashed_entry_fails_its_signature(store: Store, key: ed25519.Ed25519PrivateKey) -> None:
    log = EvidenceLog(store, key)
    fill(log)
    e = next(x for x in log.entries() if x.seq == 4)
    new_actor = "91110000600037341L"
    forged = entry_hash(seq=4, time=e.time, kind=e.kind, actor=new_actor, details=e.details,
                        prev_hash=e.prev_hash, key_id=e.key_id)
    with store.transaction() as conn:
        conn.execute("UPDATE evidence SET actor = ?, hash = ? WHERE seq = 4", (new_actor, forged))
    assert problems(log) == [(4, "bad-signature")]


def test_removed_entry_is_found(store: Store, key: ed25519.Ed25519PrivateKey) -> None:
    log = EvidenceLog(store, key)
    fill(log)
    with store.transaction() as conn:
        conn.execute("DELETE FROM evidence WHERE seq = 6")
    report = log.verify()
    assert [(f.seq, f.problem) for f in report.findings] == [(6, "removed")]
    assert "seq 6 missing" in report.findings[0].message
    with store.transaction() as conn:
        conn.execute("DELETE FROM evidence WHERE seq IN (2, 3)")
    assert problems(log) == [(2, "removed"), (6, "removed")]


def test_reordered_entries_are_found(store: Store, key: ed25519.Ed25519PrivateKey) -> None:
    log = EvidenceLog(store, key)
    fill(log)
    with store.transaction() as conn:  # swap entries 3 and 4
        conn.execute("UPDATE evidence SET seq = -1 WHERE seq = 3")
        conn.execute("UPDATE evidence SET seq = 3 WHERE seq = 4")
        conn.execute("UPDATE evidence SET seq = 4 WHERE seq = -1")
    report = log.verify()
    assert [(f.seq, f.problem) for f in report.findings] == [(3, "reordered"), (4, "reordered")]
    assert "written as seq 4" in report.findings[0].message


def test_truncated_tail_needs_an_anchor(store: Store, key: ed25519.Ed25519PrivateKey) -> None:
    log = EvidenceLog(store, key)
    fill(log)
    head = log.head()
    assert head is not None
    assert log.verify(anchor=(head.seq, head.hash)).ok
    with store.transaction() as conn:
        conn.execute("DELETE FROM evidence WHERE seq >= 9")
    assert log.verify().ok  # a shorter chain is self-consistent ...
    assert [(f.seq, f.problem) for f in log.verify(anchor=(head.seq, head.hash)).findings] == [(10, "anchor")]


def test_wrong_key(store: Store, key: ed25519.Ed25519PrivateKey) -> None:
    log = EvidenceLog(store, key)
    fill(log, 3)
    other = ed25519.Ed25519PrivateKey.generate().public_key()
    assert [f.problem for f in log.verify([other]).findings] == ["unknown-key"] * 3


def test_export_and_offline_verify(store: Store, key: ed25519.Ed25519PrivateKey, tmp_path: Path) -> None:
    log = EvidenceLog(store, key)
    fill(log, 8)
    out = tmp_path / "evidence.jsonl"
    assert log.export(out) == 8
    assert verify_file(out, [key.public_key()]).ok
    lines = out.read_text(encoding="utf-8").splitlines()
    # reorder two lines
    swapped = lines[:2] + [lines[3], lines[2]] + lines[4:]
    out.write_text("\n".join(swapped) + "\n", encoding="utf-8")
    report = verify_file(out, [key.public_key()])
    assert (3, "reordered") in [(f.seq, f.problem) for f in report.findings]
    # remove one line
    out.write_text("\n".join(lines[:4] + lines[5:]) + "\n", encoding="utf-8")
    assert [(f.seq, f.problem) for f in verify_file(out, [key.public_key()]).findings] == [(5, "removed")]
    # alter one line
    doc = json.loads(lines[6])
    doc["details"]["i"] = -1
    out.write_text("\n".join(lines[:6] + [json.dumps(doc)] + lines[7:]) + "\n", encoding="utf-8")
    assert [(f.seq, f.problem) for f in verify_file(out, [key.public_key()]).findings] == [(7, "altered")]
    # duplicate
    out.write_text("\n".join(lines + [lines[1]]) + "\n", encoding="utf-8")
    assert [(f.seq, f.problem) for f in verify_file(out, [key.public_key()]).findings] == [(2, "duplicate")]
    out.write_text("not json\n", encoding="utf-8")
    with pytest.raises(InputError, match="not JSON"):
        list(read_export(out))


def test_verify_entries_on_empty_chain() -> None:
    report = verify_entries([], [])
    assert report.ok and report.entries == 0 and report.head_hash == GENESIS_HASH
