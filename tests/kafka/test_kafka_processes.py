"""Crash tests with real processes (``python -m node.transport.kafka run``) and SIGKILL."""

from __future__ import annotations

import signal
import subprocess

import pytest
from kafka_testkit import (
    Federation,
    Node,
    count_records,
    evidence_details,
    kill,
    person,
    start_exchange,
    status,
    stop_process,
    wait_for,
)

from node.store import Store
from node.transport.kafka import local_dataset_id, received_version

pytestmark = pytest.mark.integration


def _outbox(node: Node) -> int:
    with Store(node.store_path) as store:
        return store.outbox_pending_count()


def _write(node: Node, start: int, n: int, batch: int = 1000) -> None:
    with Store(node.store_path) as store:
        store.ensure_dataset("open", "Person", publish=True)
        for i in range(start, start + n, batch):
            store.upsert_many("open", [(f"o{j}", person(j, "o")) for j in range(i, min(start + n, i + batch))])


def _serving(node: Node) -> bool:
    return status(node).get("status") == "serving"


def _assert_each_stored_once(consumer: Node, provider: Node, n: int) -> None:
    local = local_dataset_id(provider.code, "open")
    with Store(consumer.store_path) as store:
        records = list(store.iter_records(local))
        assert len(records) == n
        assert {r.version for r in records} == {1}  # never written a second time
        assert len(store.changes(0, limit=10 * n, dataset=local)) == n
        assert received_version(store, local, "o0").version == 1  # type: ignore[union-attr]
        assert records[0].data == person(int(records[0].id[1:]), "o")
    received = evidence_details(consumer.store_path, "records.received")
    assert sum(d["stored"] for d in received) == n


def test_killed_provider_and_killed_consumer_lose_nothing_and_store_once(federation: Federation) -> None:
    p, a = federation.node("prov"), federation.node("a")
    p.publish("open", "unconditional")
    a.subscribe(p, "open")
    local = local_dataset_id(p.code, "open")
    procs: list[subprocess.Popen[bytes]] = []
    try:
        # --- the provider dies between the store's commit and the publication -------------
        prov = start_exchange(p)
        procs.append(prov)
        wait_for(lambda: _serving(p), 30, "the provider to connect", procs=[(prov, p)])
        _write(p, 0, 1000)  # committed with its outbox rows (the provider may be publishing them) ...
        prov.send_signal(signal.SIGSTOP)  # ... the provider stops where it is (mid-batch, maybe) ...
        _write(p, 1000, 2000)  # ... more rows are committed that it has not seen ...
        kill(prov)  # ... and it is gone before (all of) it went out
        pending = _outbox(p)
        assert pending > 0
        prov = start_exchange(p)
        procs.append(prov)
        wait_for(lambda: _outbox(p) == 0, 60, "the restarted provider to publish its outbox", procs=[(prov, p)])

        # --- the consumer dies in the middle of a batch --------------------------------------
        _write(p, 3000, 9000)
        cons = start_exchange(a)
        procs.append(cons)
        seen = wait_for(lambda: 0 < (c := count_records(a.store_path, local)) < 12000 and c, 90,
                        "the consumer to store part of the records", poll=0.01, procs=[(cons, a)])
        kill(cons)
        assert seen < 12000
        cons = start_exchange(a)
        procs.append(cons)
        wait_for(lambda: count_records(a.store_path, local) == 12000, 120, "the restarted consumer to catch up",
                 procs=[(cons, a), (prov, p)])
        wait_for(lambda: status(a).get("received", 0) >= 1 and _serving(a), 30, "the consumer to report serving")
        _assert_each_stored_once(a, p, 12000)
        delivered = evidence_details(p.store_path, "records.delivered")
        assert sum(d["count"] for d in delivered) >= 12000  # at least once: a killed batch may go out twice
        assert status(p)["status"] == "serving"
    finally:
        for proc in procs:
            stop_process(proc)
    assert all(proc.returncode in (0, -9) for proc in procs), [proc.returncode for proc in procs]
