"""KafkaExchange against a real broker (Tansu), nodes in this process."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from kafka_testkit import Federation, Node, free_port, person, start_broker, stop_process

from node.evidence import EvidenceLog
from node.federation import load_node_directory
from node.pki import load_signing_key
from node.policy import DatasetPolicy, Grant, MaskRule, ResponsibilityList, SharingType
from node.store import Store
from node.transport.kafka import (
    H_PROOF,
    H_SIGNATURE,
    KafkaExchange,
    KafkaOptions,
    dead_letter_topic,
    leaf_hash,
    local_dataset_id,
    merkle_sign,
    shared_topic,
)
from node.validation import get_validator

pytestmark = pytest.mark.integration

FAST = KafkaOptions(poll_interval=0.05, metadata_interval=0.3, probe_interval=0.3, max_backoff=1.0,
                    request_timeout_ms=5000)


class Holder:
    """A policy that a test can change while the exchange runs (as a daemon reloading its file)."""

    def __init__(self, value: ResponsibilityList | None) -> None:
        self.value = value

    def __call__(self) -> ResponsibilityList | None:
        return self.value


@asynccontextmanager
async def running(node: Node, policy: Callable[[], ResponsibilityList | None] | None = None,
                  options: KafkaOptions = FAST) -> AsyncIterator[tuple[KafkaExchange, Store]]:
    node.write_config()
    cfg = node.load()
    with Store(cfg.store) as store:
        async with KafkaExchange(cfg=cfg, store=store, evidence=EvidenceLog(store, load_signing_key(cfg.signing_key)),
                                 validator=get_validator("fast"), policy=policy,
                                 directory=load_node_directory(cfg), options=options) as kx:
            yield kx, store


async def until(predicate: Callable[[], Any], what: str, timeout: float = 30.0) -> Any:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        value = predicate()
        if value:
            return value
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def count(store: Store, dataset: str) -> int:
    try:
        return store.count_records(dataset)
    except Exception:  # noqa: BLE001 - not created yet
        return 0


async def read_topic(bootstrap: str, topic: str, n: int, timeout: float = 20.0) -> list[Any]:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    c = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await c.start()
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        tps: list[Any] = []
        while not tps and loop.time() < deadline:  # the topic may not be made yet
            cluster = await c._client.fetch_all_metadata()
            tps = [TopicPartition(topic, p) for p in sorted(cluster.partitions_for_topic(topic) or ())]
            if not tps:
                await asyncio.sleep(0.1)
        c.assign(tps)
        await c.seek_to_beginning(*tps)
        out: list[Any] = []
        while len(out) < n and loop.time() < deadline:
            for msgs in (await c.getmany(timeout_ms=300)).values():
                out += msgs
        return out
    finally:
        await c.stop()


def test_round_trip_projection_revocation_and_dead_letters(federation: Federation, broker: str) -> None:
    p, a, b = federation.node("prov"), federation.node("a"), federation.node("b")
    p.publish("open", "unconditional")
    p.publish("population", "conditional", code="1010100/000002")
    for n in (a, b):
        n.subscribe(p, "open")
        n.subscribe(p, "population")
    grant = Grant.create(dataset_id="population", consumer_code=a.code, items=["name", "birthDate", "identityNumber"],
                         purposes=["社会保险参保资格审核"], until=None, masking={"identityNumber": MaskRule.keep(6, 4)})
    policy = Holder(ResponsibilityList(datasets=(
        DatasetPolicy("open", SharingType.UNCONDITIONAL),
        DatasetPolicy("population", SharingType.CONDITIONAL, basis=("依据",), grants=(grant,)),
    ), provider_code=p.code))
    open_local, pop_local = local_dataset_id(p.code, "open"), local_dataset_id(p.code, "population")

    async def scenario() -> None:
        async with AsyncExitStack() as stack:
            pk, ps = await stack.enter_async_context(running(p, policy))
            ak, as_ = await stack.enter_async_context(running(a))
            bk, bs = await stack.enter_async_context(running(b))
            ps.upsert_many("open", [(f"o{i}", person(i, "o")) for i in range(20)])
            ps.upsert_many("population", [(f"p{i}", person(i)) for i in range(10)])
            await until(lambda: count(as_, open_local) == 20 and count(as_, pop_local) == 10, "a to store all")
            await until(lambda: count(bs, open_local) == 20, "b to store the open dataset")
            assert count(bs, pop_local) == 0  # b holds no grant: it has no topic to read
            assert not any("population" in t for t in bk.health().assigned)
            got = as_.get_record(pop_local, "p4")
            assert got is not None and set(got.data or {}) == {"id", "type", "name", "birthDate", "identityNumber"}
            assert (got.data or {})["identityNumber"].count("*") == 8
            assert as_.get_record(open_local, "o4").data == person(4, "o")  # type: ignore[union-attr]
            assert pk.health().status == "serving" and pk.health().published == 30

            # revoking the grant stops publication to a
            policy.value = policy.value.revoke("population", a.code)[0]  # type: ignore[union-attr]
            ps.upsert_many("population", [("p99", person(99))])
            ps.upsert_many("open", [("o98", person(98, "o"))])
            await until(lambda: count(as_, open_local) == 21, "the open record after the revocation")
            assert await pk.drain(10)
            await asyncio.sleep(0.5)
            assert count(as_, pop_local) == 10
            kinds = {e.kind: e.details for e in EvidenceLog(ps).entries()}
            assert kinds["kafka.publication_stopped"]["consumer"] == a.code

            # a third party with write access to the shared topic: forged and invalid messages
            from aiokafka import AIOKafkaProducer

            good = (await read_topic(broker, shared_topic(p.code, "open"), 21))[0]
            hs = [(k, v) for k, v in good.headers if k not in (H_SIGNATURE, H_PROOF)]
            other_key = load_signing_key(b.dir / "keys" / "signing.pem")
            forged_value = good.value.replace(b'"name":"', b'"name":"X')
            _r, sig, _pr = merkle_sign(other_key, [leaf_hash(good.key, forged_value, hs)])
            forged = hs + [(H_SIGNATURE, base64.b64encode(sig)), (H_PROOF, b"")]
            producer = AIOKafkaProducer(bootstrap_servers=broker)
            await producer.start()
            try:
                await producer.send_and_wait(shared_topic(p.code, "open"), forged_value, key=good.key, headers=forged)
                await producer.send_and_wait(shared_topic(p.code, "open"), b"\x00garbage", key=b"junk",
                                             headers=[("ce_specversion", b"1.0")])
            finally:
                await producer.stop()
            await until(lambda: ak.health().quarantined == 2, "a to quarantine both")
            dlq = await read_topic(broker, dead_letter_topic(a.code), 2)
            reasons = sorted(dict(m.headers)["shulian_dlq_reason"] for m in dlq)
            assert reasons == [b"BAD_SIGNATURE", b"UNPARSEABLE"]
            bad = next(m for m in dlq if dict(m.headers)["shulian_dlq_reason"] == b"BAD_SIGNATURE")
            assert bad.value == forged_value and bad.key == good.key
            assert dict(bad.headers)["ce_signature"] == base64.b64encode(sig)  # the original headers, kept
            assert dict(bad.headers)["shulian_dlq_topic"] == shared_topic(p.code, "open").encode()
            assert sorted(i.reason.split(":")[0] for i in as_.quarantine_list()) == ["BAD_SIGNATURE", "UNPARSEABLE"]
            assert as_.get_record(open_local, "o0").data == person(0, "o")  # type: ignore[union-attr]
            assert ak.health().status == "serving", ak.health()

    asyncio.run(scenario())


def test_broker_down_at_start_then_up(tmp_path: Path) -> None:
    port = free_port()
    fed = Federation(tmp_path, f"127.0.0.1:{port}")
    p, a = fed.node("prov"), fed.node("a")
    p.publish("open", "unconditional")
    a.subscribe(p, "open")
    local = local_dataset_id(p.code, "open")

    async def scenario() -> None:
        async with running(p) as (pk, ps), running(a) as (ak, as_):
            await until(lambda: all("cannot reach" in kx.health().detail for kx in (pk, ak)),
                        "both nodes to report the broker down")
            for kx in (pk, ak):
                h = kx.health()
                assert h.status == "degraded" and not h.ok and not h.connected, h
            # the rest of the node keeps working: records commit, the outbox holds them
            ps.upsert_many("open", [(f"o{i}", person(i, "o")) for i in range(50)])
            assert ps.outbox_pending_count() == 50
            broker = await asyncio.to_thread(start_broker, port, tmp_path / "late-broker.log")
            try:
                await until(lambda: count(as_, local) == 50, "the consumer to catch up", timeout=60)
                await until(lambda: pk.health().status == "serving" and ak.health().status == "serving",
                            "both to report serving")
                assert ps.outbox_pending_count() == 0
                assert json.dumps(ak.health().to_dict())  # JSON-ready for the daemon's status
            finally:
                stop_process(broker)

    asyncio.run(scenario())


def test_a_node_without_kafka_is_disabled_not_failing(tmp_path: Path) -> None:
    fed = Federation(tmp_path, "127.0.0.1:9")
    n = fed.node("plain")
    cfg = n.load()  # no [kafka] section

    async def scenario() -> None:
        with Store(cfg.store) as store:
            async with KafkaExchange(cfg=cfg, store=store, evidence=EvidenceLog(store), validator=get_validator(),
                                     directory=load_node_directory(cfg)) as kx:
                h = kx.health()
                assert (h.status, h.ok) == ("disabled", True)

    asyncio.run(scenario())


def test_batches_are_checked_in_the_helper_and_its_loss_loses_nothing(federation: Federation) -> None:
    import dataclasses

    p, a = federation.node("prov"), federation.node("a")
    p.publish("open", "unconditional")
    a.subscribe(p, "open")
    local = local_dataset_id(p.code, "open")
    eager = dataclasses.replace(FAST, check_process_min_batch=1)

    async def scenario() -> None:
        async with running(p) as (_pk, ps), running(a, options=eager) as (ak, as_):
            pool = ak._pool
            assert pool is not None
            await until(pool.available, "the check helper to start")
            ps.upsert_many("open", [(f"o{i}", person(i, "o")) for i in range(300)])
            await until(lambda: count(as_, local) == 300, "the consumer to store all")
            assert pool.submitted > 0 and not pool.failed
            got = as_.get_record(local, "o7")
            assert got is not None and got.data == person(7, "o") and got.checked == ak.validator.fingerprint
            assert pool._proc is not None
            pool._proc.kill()  # the helper dies: the node checks by itself from then on
            ps.upsert_many("open", [(f"o{i}", person(i, "o")) for i in range(300, 600)])
            await until(lambda: count(as_, local) == 600, "the consumer to store the rest")
            assert pool.failed and ak.health().received == 600 and ak.health().quarantined == 0
            assert ak.health().status == "serving", ak.health()

    asyncio.run(scenario())


def test_batches_checked_ahead_are_stored_in_order_and_a_stop_in_flight_loses_nothing(
        federation: Federation) -> None:
    import dataclasses

    p, a = federation.node("prov"), federation.node("a")
    p.publish("open", "unconditional")
    a.subscribe(p, "open")
    local = local_dataset_id(p.code, "open")
    # many small batches, several read and checked ahead of the one being stored
    small = dataclasses.replace(FAST, max_records=7, check_ahead=3, check_process_min_batch=1)
    NAMES = ("王秀英", "李明", "张伟")  # noqa: N806

    async def scenario() -> None:
        async with running(p) as (_pk, ps):
            for round_ in range(3):  # the same ids again: each round is a newer version of every record
                ps.upsert_many("open", [(f"o{i}", dict(person(i, "o"), name=NAMES[round_])) for i in range(120)])
            async with running(a, options=small) as (ak, as_):
                await until(lambda: ak.health().stored > 40, "the consumer to store some")
            # stopped with batches in flight: what was stored stays, the rest is read again
            async with running(a, options=small) as (ak, as_):
                await until(lambda: count(as_, local) == 120 and all(
                    r.version == 3 for r in as_.iter_records(local)), "the consumer to store the last versions")
                for i in (0, 57, 119):  # the last version won, in order
                    got = as_.get_record(local, f"o{i}")
                    assert got is not None and got.data == dict(person(i, "o"), name=NAMES[2])
                assert ak.health().quarantined == 0

    asyncio.run(scenario())


def test_consumed_messages_become_plain_tuples_sharing_repeated_headers() -> None:
    import marshal
    from types import SimpleNamespace

    from node.transport.kafka._exchange import _plain_messages

    def rec(offset: int, headers: list[Any]) -> Any:
        return SimpleNamespace(offset=offset, key=b"k%d" % offset, value=b"v", headers=headers)

    from aiokafka import TopicPartition

    tp = TopicPartition("t", 3)
    data = {tp: [rec(i, [("ce_type", b"x"), ("ce_id", b"%d" % i), ("n", None)]) for i in range(3)]}
    out = _plain_messages(data)
    assert out == [("t", 3, i, b"k%d" % i, b"v", (("ce_type", b"x"), ("ce_id", b"%d" % i), ("n", None)))
                   for i in range(3)]
    assert out[0][5][0] is out[2][5][0] and out[0][5][2] is out[1][5][2]  # one object per repeated pair
    assert marshal.loads(marshal.dumps(out)) == out
    odd = {tp: [rec(0, [("a", bytearray(b"x"))]), rec(1, [["b", b"y"]])]}  # unhashable: taken as they came
    assert _plain_messages(odd) == [("t", 3, 0, b"k0", b"v", (("a", bytearray(b"x")),)),
                                   ("t", 3, 1, b"k1", b"v", (["b", b"y"],))]


def test_a_check_helper_that_does_not_start_in_time_is_given_up_and_nothing_is_lost(
        federation: Federation, monkeypatch: pytest.MonkeyPatch) -> None:
    import dataclasses

    from node.transport.kafka._pool import CheckPool

    monkeypatch.setattr(CheckPool, "available", lambda self: False)  # it never answers its start in time

    p, a = federation.node("prov"), federation.node("a")
    p.publish("open", "unconditional")
    a.subscribe(p, "open")
    local = local_dataset_id(p.code, "open")
    impatient = dataclasses.replace(FAST, check_process_min_batch=1, check_process_start_timeout=0.001)

    async def scenario() -> None:
        async with running(p) as (_pk, ps):
            ps.upsert_many("open", [(f"o{i}", person(i, "o")) for i in range(200)])
            async with running(a, options=impatient) as (ak, as_):
                await until(lambda: count(as_, local) == 200, "the consumer to store all")
                pool = ak._pool
                assert pool is not None and pool.failed and pool.submitted > 0  # waited 1 ms for its start
                assert ak.health().quarantined == 0 and ak.health().status == "serving", ak.health()

    asyncio.run(scenario())
