"""``shulian-node run`` as a real process: bad config, JSON logs, SIGTERM, kill -9 during a push,
a subscription resumed across restarts."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import grpc
import grpc_testkit as kit
import pytest

from node.config import write_config_file
from node.errors import ShulianError
from node.store import Store

pytestmark = pytest.mark.integration

_EXE = Path(sys.executable).with_name("shulian-node")
DAEMON = [str(_EXE)] if _EXE.exists() else [sys.executable, "-c", "from node.daemon import main; main()"]


def _run(args: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*DAEMON, *args], capture_output=True, text=True, timeout=120, **kwargs)


def test_bad_config_is_one_line_naming_file_and_key(fed: kit.Federation) -> None:
    path = fed.provider.config_path
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    data["node"]["listen"] = "no port here"
    write_config_file(path, data)
    result = _run(["run", "--config", str(path)])
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr
    assert str(path) in lines[0] and "[node.listen]" in lines[0] and "host:port" in lines[0]
    missing = _run(["run", "--config", str(path.with_name("absent.toml"))])
    assert missing.returncode == 2 and "not found" in missing.stderr and "absent.toml" in missing.stderr


def test_check_command(fed: kit.Federation) -> None:
    result = _run(["check", "--config", str(fed.provider.config_path)])
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ok: ") and kit.PROVIDER in result.stdout


def _json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_serves_logs_json_and_stops_gracefully_on_sigterm(fed: kit.Federation, tmp_path: Path) -> None:
    daemon = kit.Daemon(fed.provider, tmp_path / "node.log")
    with daemon:
        async def main() -> Any:
            async with kit.client_for(fed.nodes["consumer"], daemon.address) as client:
                records, _ = await client.query_all("population", purpose=kit.PURPOSE, limit=10)
                # malformed bytes: INVALID_ARGUMENT, no traceback, the node goes on serving
                call = client.channel.unary_unary("/shulian.v1.Records/Query", lambda b: b, lambda b: b)
                with pytest.raises(grpc.aio.AioRpcError) as bad:
                    await call(b"\xff\xff\xff", timeout=10)
                # a follow subscription stays open until the node stops
                stream = client.subscribe("enterprises", follow=True)
                first = await anext(stream)
                daemon.proc.send_signal(signal.SIGTERM)  # type: ignore[union-attr]
                rest = [b async for b in stream]  # ends cleanly when the node shuts down
                return records, bad.value.code(), first, rest

        records, bad_code, first, rest = asyncio.run(main())
        assert len(records) == 10 and bad_code == grpc.StatusCode.INVALID_ARGUMENT
        assert len(first.records) == 20 and first.caught_up
        assert all(not b.records for b in rest)
        assert daemon.proc.wait(30) == 0  # type: ignore[union-attr]
    lines = _json_lines(daemon.text())
    assert "Traceback" not in daemon.text()
    for entry in lines:
        assert {"time", "level", "logger", "message", "department"} <= set(entry), entry
        assert entry["department"] == kit.PROVIDER
    messages = [e["message"] for e in lines]
    assert "serving" in messages and "shutting down" in messages and messages[-1] == "store closed; bye"
    query = next(e for e in lines if e["message"] == "Query done" and "duration_ms" in e)
    assert query["peer"] == kit.CONSUMER and query["dataset"] == "population" and query["request_id"]
    refused = next(e for e in lines if e.get("reason") == "BAD_REQUEST")
    assert refused["status"] == "INVALID_ARGUMENT"


def test_acknowledged_pushes_survive_kill_9(fed: kit.Federation, tmp_path: Path) -> None:
    daemon = kit.Daemon(fed.provider, tmp_path / "node.log").start()
    acked: list[str] = []

    async def push_until_killed() -> BaseException | None:
        async with kit.client_for(fed.nodes["consumer"], daemon.address) as client:
            batches = ([kit.person(b * 200 + i, "k") for i in range(200)] for b in range(500))
            try:
                async for response in client.push_batches("inbox", batches):
                    acked.extend(r.id for r in response.results if r.status == r.STORED)
                    if response.batch == 5:
                        os.kill(daemon.pid, signal.SIGKILL)  # more batches are on the way
            except ShulianError as exc:  # UNAVAILABLE, or INTERNAL when the stream breaks mid-write
                return exc
        return None

    try:
        err = asyncio.run(push_until_killed())
    finally:
        daemon.kill9() if daemon.proc and daemon.proc.poll() is None else None
    assert isinstance(err, ShulianError), "the push must have been cut short by the kill"
    assert daemon.proc is not None and daemon.proc.returncode == -signal.SIGKILL
    assert 1200 <= len(acked) < 500 * 200

    restarted = kit.Daemon(fed.provider, tmp_path / "node.log").start()
    try:
        async def read_back() -> dict[str, Any]:
            async with kit.client_for(fed.nodes["consumer"], restarted.address) as client:
                records, _ = await client.query_all("inbox", ids=acked)
            return {r.id: r.data for r in records}

        stored = asyncio.run(read_back())
    finally:
        restarted.terminate()
    assert sorted(stored) == sorted(acked)
    for rid in acked[:: max(1, len(acked) // 50)]:
        assert stored[rid] == kit.person(int(rid[1:]), "k")
    with Store(fed.provider.config().store) as store:  # evidence committed with the records
        from node.evidence import EvidenceLog
        from node.pki import load_signing_key

        log = EvidenceLog(store, load_signing_key(fed.provider.config().signing_key))
        assert log.verify().ok
        evidenced = sum(e.details["stored"] for e in log.entries() if e.kind == "push.accepted")
        assert evidenced == store.count_records("inbox") >= len(acked)


def test_subscription_resumes_after_restarts(fed: kit.Federation, tmp_path: Path) -> None:
    log_path = tmp_path / "node.log"
    first = kit.Daemon(fed.provider, log_path).start()
    try:
        async def read_first_batch() -> int:
            async with kit.client_for(fed.nodes["consumer"], first.address) as client:
                async for batch in client.subscribe("population", purpose=kit.PURPOSE, follow=True, batch_size=500):
                    assert len(batch.records) == 500 and batch.verified
                    return batch.cursor  # the consumer stops here (it restarts) with its cursor saved
            raise AssertionError("no batch")

        cursor = asyncio.run(read_first_batch())
    finally:
        assert first.terminate() == 0  # the provider restarts too

    second = kit.Daemon(fed.provider, log_path).start()
    try:
        async def changes_then_resume() -> tuple[list[Any], list[Any]]:
            async with kit.client_for(fed.nodes["provider"], second.address) as own:  # the provider's own import
                summary = await own.push("population", [kit.person(i) for i in range(1200, 1500)]
                                         + [dict(kit.person(3), name="李秀兰")])
                assert summary.accepted == 301
            async with kit.client_for(fed.nodes["consumer"], second.address) as client:
                resumed = [b async for b in client.subscribe("population", purpose=kit.PURPOSE, after=cursor,
                                                             batch_size=500)]
                again = [b async for b in client.subscribe("population", purpose=kit.PURPOSE,
                                                           after=resumed[-1].cursor)]
            return resumed, again

        resumed, again = asyncio.run(changes_then_resume())
    finally:
        second.terminate()
    ids = [r.id for b in resumed for r in b.records]
    expected = [f"p{i:07d}" for i in range(500, 1500)] + ["p0000003"]
    assert ids == expected  # every change after the cursor, once, in change order
    assert len(set(ids)) == len(ids)
    updated = next(r for b in resumed for r in b.records if r.id == "p0000003")
    assert updated.version == 2 and (updated.data or {})["name"] == "李秀兰"
    assert resumed[-1].caught_up and again[0].records == [] and again[0].caught_up


def test_kafka_down_makes_the_node_degraded_but_grpc_serves(fed: kit.Federation, tmp_path: Path) -> None:
    path = fed.provider.config_path
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    data["kafka"] = {"bootstrap_servers": ["127.0.0.1:1"]}  # nothing listens there
    write_config_file(path, data)
    with kit.Daemon(fed.provider, tmp_path / "node.log") as daemon:
        async def main() -> Any:
            async with kit.client_for(fed.nodes["consumer"], daemon.address) as client:
                for _ in range(100):
                    status = await client.status()
                    if status["components"].get("kafka", "").startswith("down"):
                        break
                    await asyncio.sleep(0.1)
                records, _ = await client.query_all("enterprises")
                return status, await client.health("shulian.kafka"), await client.health(""), len(records)

        status, kafka, overall, count = asyncio.run(main())
        assert daemon.terminate() == 0
    assert status["state"] == "degraded" and status["components"]["grpc"] == "ok"
    assert kafka == "NOT_SERVING" and overall == "SERVING" and count == 20
