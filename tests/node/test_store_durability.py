"""Acknowledged writes survive kill -9; several processes share one store safely."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from node.evidence import EvidenceLog
from node.pki import generate_signing_key, load_signing_key
from node.store import Store, canonical_body

pytestmark = pytest.mark.integration

WRITER = textwrap.dedent("""
    import sys
    from node.store import Store
    path, durability, prefix = sys.argv[1], sys.argv[2], sys.argv[3]
    store = Store(path, durability=durability)
    store.ensure_dataset("population", "Person", publish=True)
    batch_no = 0
    while True:
        batch = [(f"{prefix}{batch_no:05d}-{i:03d}",
                  {"name": f"张{batch_no}-{i}", "sex": "1", "birthDate": "1990-01-01", "n": i})
                 for i in range(200)]
        results = store.upsert_many("population", batch)
        assert all(r.changed for r in results)
        # the commit has returned: acknowledge the batch
        print(f"ack {batch_no} {batch[0][0]} {batch[-1][0]}", flush=True)
        batch_no += 1
""")


def expected(batch_no: int, i: int) -> dict[str, object]:
    return {"name": f"张{batch_no}-{i}", "sex": "1", "birthDate": "1990-01-01", "n": i}


@pytest.mark.parametrize("durability", ["full", "normal"])
def test_acknowledged_records_survive_kill_9(tmp_path: Path, durability: str) -> None:
    path = tmp_path / "store.db"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path), durability, "r"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    acked: list[int] = []
    try:
        for line in proc.stdout:
            if line.startswith("ack "):
                acked.append(int(line.split()[1]))
            if len(acked) >= 25:
                break
    finally:
        os.kill(proc.pid, signal.SIGKILL)  # mid-stream: the writer is inside its next batch
    rest, err = proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL, err
    acked += [int(line.split()[1]) for line in rest.splitlines() if line.startswith("ack ")]
    assert acked == list(range(len(acked))) and len(acked) >= 25

    with Store(path) as store:
        for batch_no in acked:
            ids = [f"r{batch_no:05d}-{i:03d}" for i in range(200)]
            found = {r.id: r for r in store.iter_records("population", ids=ids)}
            assert len(found) == 200, f"batch {batch_no} acknowledged but {200 - len(found)} records lost"
            for i, rid in enumerate(ids):
                assert found[rid].body == canonical_body(expected(batch_no, i))
                assert found[rid].version == 1
        # the change feed and outbox were committed with the records, never without them
        n = store.count_records("population")
        assert n % 200 == 0 and n // 200 >= len(acked)
        assert store.latest_seq() == n and store.outbox_pending_count() == n


MIXED = textwrap.dedent("""
    import sys
    from pathlib import Path
    from node.evidence import EvidenceLog
    from node.pki import load_signing_key
    from node.store import Store
    path, key, prefix, rounds = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    store = Store(path, busy_timeout=60)
    store.ensure_dataset("shared")
    log = EvidenceLog(store, load_signing_key(Path(key)))
    for b in range(rounds):
        batch = [(f"{prefix}-{b}-{i}", {"p": prefix, "b": b, "i": i}) for i in range(50)]
        with store.transaction():
            store.upsert_many("shared", batch)
            log.append("push.accepted", prefix, {"batch": b, "count": len(batch)})
    print("done", flush=True)
""")


def test_processes_share_the_store_and_the_evidence_chain(tmp_path: Path) -> None:
    path, key_path = tmp_path / "store.db", tmp_path / "signing.pem"
    generate_signing_key(key_path)
    Store(path).close()
    rounds = 30
    procs = [subprocess.Popen([sys.executable, "-c", MIXED, str(path), str(key_path), f"w{n}", str(rounds)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for n in range(3)]
    deadline = time.monotonic() + 240
    for proc in procs:
        out, err = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
        assert proc.returncode == 0 and out.strip() == "done", err
    with Store(path) as store:
        assert store.count_records("shared") == 3 * rounds * 50
        assert [c.seq for c in store.changes(0, limit=100_000)] == list(range(1, 3 * rounds * 50 + 1))
        log = EvidenceLog(store, load_signing_key(key_path))
        report = log.verify()
        assert report.ok, report.findings
        assert report.entries == 3 * rounds
        assert sorted(e.actor for e in log.entries()) == sorted(f"w{n}" for n in range(3) for _ in range(rounds))
