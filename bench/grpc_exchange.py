"""gRPC exchange benchmark: prints ONE JSON line.

Over mutual TLS, against a real ``shulian-node run`` daemon and, as the baseline
measured in the same run, a bare gRPC echo server (a separate process with the same
certificate) that answers the same messages without doing anything with them:

- push: 100,000 valid Person records in batches of 500 (Records.Push), end to end
  (decode + validate + policy + store + evidence, durable before each answer) vs the
  echo answering each batch with a result per record;
- query: 100,000 records streamed to a granted consumer with projection and masking
  (Records.Query: store read + outgoing validation + projection + masking + signing)
  vs the echo streaming pre-built batches of the same projected records. The 100,000
  records are loaded through the node's validating ingest (``NodeCore.ingest``, what
  Push, Kafka and the adapters run), so they carry the validator's fingerprint and the
  query skips re-validating them, as it does for every record that entered a real node
  through its boundary; records loaded around the boundary are validated on the way out
  (the memory figure below streams 900,000 of those);
- both are measured in rounds of (echo, node), five for push (each round pushes
  100,000 new records with ids of its own) and five for query; each side's figure is
  its median run (single runs on a shared 2-core machine swing by up to 2x);
- for context, a "JSON echo" baseline too: the echo plus one json.loads (push) or one
  json.loads + json.dumps (query) per record (``*_ratio_vs_json_echo``);
- memory: the daemon's peak RSS (VmHWM) holding 1,000,000 records (the 100,000 above
  plus 900,000 put straight into the store, unvalidated) after a query streaming all of
  them to the consumer.

    python bench/grpc_exchange.py [--records 100000] [--big 1000000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "grpc"))  # the federation kit shared with the tests

BATCH = 500
QUERY_ROUNDS = 5
PUSH_ROUNDS = 5
PUSH_PREFIXES = ("q", "r", "s", "t", "u")
ECHO_READY = "echo serving on "


# ------------------------------------------------------------------ the echo server (child process)


def _projected(n: int) -> bytes:
    import grpc_testkit as kit

    p = kit.person(n)
    out = {"id": p["id"], "type": "Person", "birthDate": p["birthDate"],
           "identityNumber": p["identityNumber"][:6] + "********" + p["identityNumber"][-4:], "name": p["name"]}
    return json.dumps(out, ensure_ascii=False, separators=(",", ":")).encode()


def echo_server(tls_dir: Path, records: int) -> None:
    import grpc

    from node._generated.shulian.v1 import common_pb2, records_pb2

    batches = []
    for start in range(0, records, BATCH):
        batches.append(records_pb2.QueryResponse(batch=common_pb2.RecordBatch(
            dataset="population", records=[common_pb2.Record(id=f"p{i:07d}", version=1, payload=_projected(i))
                                           for i in range(start, min(start + BATCH, records))])))

    async def push(requests: Any, context: Any) -> Any:
        index = 0
        stored = records_pb2.RecordResult.STORED
        result = records_pb2.RecordResult
        async for req in requests:
            yield records_pb2.PushResponse(batch=index, accepted=len(req.records),
                                           results=[result(id=r.id, status=stored, version=1) for r in req.records])
            index += 1

    async def query(request: Any, context: Any) -> Any:
        for b in batches:
            yield b

    # the informative "JSON echo": the same, plus one json.loads and one json.dumps per record
    async def push_json(requests: Any, context: Any) -> Any:
        index = 0
        stored = records_pb2.RecordResult.STORED
        loads = json.loads
        async for req in requests:
            response = records_pb2.PushResponse(batch=index, accepted=len(req.records))
            add = response.results.add
            for r in req.records:
                loads(r.payload)
                add(id=r.id, status=stored, version=1)
            yield response
            index += 1

    async def query_json(request: Any, context: Any) -> Any:
        dumps, loads = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode, json.loads
        for b in batches:
            out = common_pb2.RecordBatch(dataset=b.batch.dataset)
            add = out.records.add
            for r in b.batch.records:
                add(id=r.id, version=r.version, payload=dumps(loads(r.payload)).encode())
            yield records_pb2.QueryResponse(batch=out)

    async def main() -> None:
        server = grpc.aio.server(options=[("grpc.max_receive_message_length", 64 << 20)])
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("bench.Echo", {
            "Push": grpc.stream_stream_rpc_method_handler(push, records_pb2.PushRequest.FromString,
                                                          records_pb2.PushResponse.SerializeToString),
            "Query": grpc.unary_stream_rpc_method_handler(query, records_pb2.QueryRequest.FromString,
                                                          records_pb2.QueryResponse.SerializeToString),
            "PushJson": grpc.stream_stream_rpc_method_handler(push_json, records_pb2.PushRequest.FromString,
                                                              records_pb2.PushResponse.SerializeToString),
            "QueryJson": grpc.unary_stream_rpc_method_handler(query_json, records_pb2.QueryRequest.FromString,
                                                              records_pb2.QueryResponse.SerializeToString),
        }),))
        creds = grpc.ssl_server_credentials([((tls_dir / "node.key").read_bytes(), (tls_dir / "node.pem").read_bytes())],
                                            root_certificates=(tls_dir / "ca.pem").read_bytes(),
                                            require_client_auth=True)
        port = server.add_secure_port("127.0.0.1:0", creds)
        await server.start()
        print(f"{ECHO_READY}127.0.0.1:{port}", flush=True)
        await server.wait_for_termination()

    asyncio.run(main())


# ------------------------------------------------------------------ the client side


def _vm_hwm_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


async def _push(channel: Any, method: str, requests: list[Any]) -> tuple[float, int]:
    from node._generated.shulian.v1 import records_pb2

    call = channel.stream_stream(method, records_pb2.PushRequest.SerializeToString,
                                 records_pb2.PushResponse.FromString)

    async def gen() -> Any:
        for r in requests:
            yield r

    accepted = 0
    t0 = time.perf_counter()
    async for response in call(gen()):
        accepted += response.accepted
    return time.perf_counter() - t0, accepted


async def _query(channel: Any, method: str, request: Any) -> tuple[float, int, int]:
    from node._generated.shulian.v1 import records_pb2

    call = channel.unary_stream(method, records_pb2.QueryRequest.SerializeToString,
                                records_pb2.QueryResponse.FromString)
    count = size = 0
    t0 = time.perf_counter()
    async for msg in call(request):
        count += len(msg.batch.records)
        size += sum(len(r.payload) for r in msg.batch.records)
    return time.perf_counter() - t0, count, size


def _ingest(cfg: Any, dataset: str, n: int) -> None:
    """Load records through the node's validating ingest (as Push, Kafka and the adapters do)."""
    import grpc_testkit as kit

    from node.service import NodeCore

    with NodeCore.open(cfg) as core:
        for start in range(0, n, 1000):
            batch = [kit.person(i) for i in range(start, min(start + 1000, n))]
            result = core.ingest(kit.PROVIDER, dataset, [(p["id"], p) for p in batch], via="bench")
            if result.rejected:
                raise RuntimeError(f"the bench's records were rejected: {result.outcomes[0]}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--big", type=int, default=1_000_000, help="records held for the memory figure (0: skip)")
    parser.add_argument("--echo-server", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.echo_server:
        echo_server(args.echo_server, args.records)
        return 0

    import grpc
    import grpc_testkit as kit

    from node._generated.shulian.v1 import common_pb2, records_pb2
    from node.transport.grpc import channel_credentials

    n = args.records
    with tempfile.TemporaryDirectory(prefix="shulian-bench-") as tmp:
        root = Path(tmp)
        fed = kit.make_federation(root)
        provider, consumer = fed.provider, fed.nodes["consumer"]
        cfg = provider.config()
        t0 = time.perf_counter()
        _ingest(cfg, "population", n)
        load_s = time.perf_counter() - t0

        # one set of push requests per round, each with ids of its own (every round stores new records)
        push_rounds: list[list[Any]] = []
        for prefix in PUSH_PREFIXES[:PUSH_ROUNDS]:
            push_rounds.append([records_pb2.PushRequest(dataset="inbox" if start == 0 else "", records=[
                common_pb2.Record(id=p["id"], payload=json.dumps(p, ensure_ascii=False).encode())
                for p in (kit.person(i, prefix) for i in range(start, min(start + BATCH, n)))])
                for start in range(0, n, BATCH)])
        push_requests = push_rounds[0]
        query = records_pb2.QueryRequest(dataset="population", purpose=kit.PURPOSE, batch_size=BATCH)

        echo = subprocess.Popen([sys.executable, __file__, "--echo-server", str(provider.dir / "tls"),
                                 "--records", str(n)], stdout=subprocess.PIPE, text=True)
        daemon = kit.Daemon(provider, root / "daemon.log")
        try:
            assert echo.stdout is not None
            line = echo.stdout.readline()
            if not line.startswith(ECHO_READY):
                raise RuntimeError(f"echo server did not start: {line!r}")
            echo_address = line[len(ECHO_READY):].strip()
            daemon.start()
            creds = channel_credentials(*(provider.dir / "tls" / f for f in ("ca.pem",)),
                                        cert=consumer.dir / "tls" / "node.pem", key=consumer.dir / "tls" / "node.key")
            opts = [("grpc.max_receive_message_length", 64 << 20)]

            async def measure() -> dict[str, Any]:
                async with grpc.aio.secure_channel(echo_address, creds, options=opts) as ech, \
                        grpc.aio.secure_channel(daemon.address, creds, options=opts) as node:
                    # warm up both (connections, TLS, code paths)
                    await _push(ech, "/bench.Echo/Push", push_requests[:2])
                    await _query(ech, "/bench.Echo/Query", query)
                    warm = records_pb2.PushRequest(dataset="inbox", records=push_requests[0].records[:10])
                    await _push(node, "/shulian.v1.Records/Push", [warm])
                    await _query(node, "/shulian.v1.Records/Query",
                                 records_pb2.QueryRequest(dataset="population", purpose=kit.PURPOSE, limit=1000))
                    # the push half: PUSH_ROUNDS rounds of (echo, node), each side's median
                    echo_push_runs: list[float] = []
                    node_push_runs: list[float] = []
                    accepted = n
                    for requests in push_rounds:
                        elapsed, _ = await _push(ech, "/bench.Echo/Push", requests)
                        echo_push_runs.append(elapsed)
                        elapsed, stored = await _push(node, "/shulian.v1.Records/Push", requests)
                        node_push_runs.append(elapsed)
                        accepted = min(accepted, stored)
                    echo_push, node_push = statistics.median(echo_push_runs), statistics.median(node_push_runs)
                    # the query half: QUERY_ROUNDS rounds of (echo, node), each side's median (the
                    # same statistic on both sides: one short run is at the mercy of a busy machine)
                    echo_runs: list[float] = []
                    node_runs: list[float] = []
                    for _ in range(QUERY_ROUNDS):
                        elapsed, echo_count, echo_bytes = await _query(ech, "/bench.Echo/Query", query)
                        echo_runs.append(elapsed)
                        elapsed, count, size = await _query(node, "/shulian.v1.Records/Query", query)
                        node_runs.append(elapsed)
                        if count != n or echo_count != n:
                            break
                    echo_query, node_query = statistics.median(echo_runs), statistics.median(node_runs)
                    json_push, _ = await _push(ech, "/bench.Echo/PushJson", push_requests)
                    json_query, _, _ = await _query(ech, "/bench.Echo/QueryJson", query)
                if accepted + 10 < n or count != n or echo_count != n:
                    raise RuntimeError(f"incomplete run: accepted {accepted}, queried {count}, echo {echo_count}")
                return {"echo_push_s": echo_push, "push_s": node_push, "echo_query_s": echo_query,
                        "query_s": node_query, "query_bytes": size, "echo_query_bytes": echo_bytes,
                        "json_push_s": json_push, "json_query_s": json_query,
                        "push_runs_s": [round(t, 3) for t in node_push_runs],
                        "push_echo_runs_s": [round(t, 3) for t in echo_push_runs],
                        "query_runs_s": [round(t, 3) for t in node_runs],
                        "query_echo_runs_s": [round(t, 3) for t in echo_runs]}

            figures = asyncio.run(measure())
            figures["load_s"] = load_s
            daemon.terminate()
        finally:
            echo.kill()
            echo.wait()
            if daemon.proc is not None and daemon.proc.poll() is None:
                daemon.proc.kill()

        rss: dict[str, Any] = {}
        if args.big:
            t0 = time.perf_counter()
            for start in range(n, args.big, 100_000):
                kit.load_records(cfg, "population", [kit.person(i) for i in range(start, min(start + 100_000, args.big))])
            big_load_s = time.perf_counter() - t0
            big = kit.Daemon(provider, root / "daemon-big.log")
            try:
                big.start()

                async def read_all() -> tuple[float, int, int]:
                    async with grpc.aio.secure_channel(big.address, creds, options=opts) as node:
                        return await _query(node, "/shulian.v1.Records/Query", query)

                big_s, big_count, _ = asyncio.run(read_all())
                hwm = _vm_hwm_kb(big.pid)
                big.terminate()
            finally:
                if big.proc is not None and big.proc.poll() is None:
                    big.proc.kill()
            rss = {"big_records": args.big, "big_query_records": big_count, "big_query_s": round(big_s, 2),
                   "big_load_s": round(big_load_s, 1), "daemon_peak_rss_mb": round(hwm / 1024, 1),
                   "rss_target_mb": 200, "rss_ok": hwm / 1024 < 200}

    out = {
        "bench": "grpc_exchange",
        "records": n,
        "batch": BATCH,
        "push_records_per_s": round(n / figures["push_s"]),
        "push_echo_records_per_s": round(n / figures["echo_push_s"]),
        "push_ratio": round(figures["echo_push_s"] / figures["push_s"], 3),
        "push_target": 0.25,
        "query_records_per_s": round(n / figures["query_s"]),
        "query_echo_records_per_s": round(n / figures["echo_query_s"]),
        "query_ratio": round(figures["echo_query_s"] / figures["query_s"], 3),
        "query_target": 0.3,
        "push_ratio_vs_json_echo": round(figures["json_push_s"] / figures["push_s"], 3),
        "query_ratio_vs_json_echo": round(figures["json_query_s"] / figures["query_s"], 3),
        "push_s": round(figures["push_s"], 3),
        "push_echo_s": round(figures["echo_push_s"], 3),
        "query_s": round(figures["query_s"], 3),
        "query_echo_s": round(figures["echo_query_s"], 3),
        "push_json_echo_s": round(figures["json_push_s"], 3),
        "query_json_echo_s": round(figures["json_query_s"], 3),
        "push_runs_s": figures["push_runs_s"],
        "push_echo_runs_s": figures["push_echo_runs_s"],
        "query_runs_s": figures["query_runs_s"],
        "query_echo_runs_s": figures["query_echo_runs_s"],
        "cpus": os.cpu_count(),
        **rss,
    }
    out["pass"] = bool(out["push_ratio"] >= out["push_target"] and out["query_ratio"] >= out["query_target"]
                       and out.get("rss_ok", True))
    print(json.dumps(out, ensure_ascii=False))
    return 0 if out["pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
