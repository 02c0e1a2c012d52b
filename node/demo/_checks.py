"""The demo's later steps: refusals, a forged message, the conformance kit, evidence, operations."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from node.demo._context import Context, component
from node.demo._data import COUNTY, DEPARTMENTS, HRSS, PSB, Department
from node.demo._narrate import Skip, StepFailed, StepResult, dump

__all__ = ["refusal_step", "forged_step", "conformance_step", "evidence_step", "operations_step"]


# ---- refusals --------------------------------------------------------------------------------
async def _refused(ctx: Context, me: Department, target: Department, dataset: str, purpose: str) -> dict[str, Any]:
    from node.errors import PolicyDenied

    async with ctx.client(me, target) as peer:
        try:
            records, _ = await peer.query_all(dataset, purpose=purpose)
        except PolicyDenied as exc:
            detail: dict[str, Any] = getattr(exc, "detail", {}) or {}
            return {"consumer": me.name, "provider": target.name, "dataset": dataset, "purpose": purpose,
                    "status": getattr(exc, "code", "PERMISSION_DENIED"), "reason": exc.reason,
                    "message": exc.message, "basis": detail.get("metadata", {}).get("basis", ""),
                    "request_id": getattr(exc, "request_id", None)}
    raise StepFailed(f"{me.short} received {len(records)} records of {target.short}'s {dataset} for 「{purpose}」: "
                     "the request should have been refused")


async def refusal_step(ctx: Context, r: StepResult) -> None:
    asks = [(COUNTY, HRSS, "insurance-enrollment", "最低生活保障资格核查"),
            (HRSS, PSB, "population", "就业困难人员认定")]
    ctx.say.say(f"{COUNTY.short} asks {HRSS.short} for enrollments without a grant; {HRSS.short} asks "
                f"{PSB.short} for population for a purpose its grant does not cover.")
    refusals = [await _refused(ctx, *ask) for ask in asks]
    ctx.say.table("refused (PERMISSION_DENIED), each with its reason and basis (依据)",
                  ["consumer", "provider / dataset", "用途 purpose", "reason", "依据 basis"],
                  [[x["consumer"], f"{x['provider']} / {x['dataset']}", x["purpose"], x["reason"], x["basis"] or "—"]
                   for x in refusals])
    dump(ctx.out / "refusals.json", refusals)
    async with ctx.client(COUNTY, HRSS) as peer:
        filed = await peer.request_access("insurance-enrollment", purpose="最低生活保障资格核查",
                                          scenario="低保申请家庭社会保险参保状况核对",
                                          items=["identityNumber", "insuranceType", "enrollmentStatus"])
    ctx.say.say(f"  {COUNTY.short} then asks for a grant the proper way (Access/RequestAccess): {filed['id']} is "
                f"{filed['status']}; {HRSS.short} must answer by {filed['deadline']}.")
    ctx.state["pending_request"] = filed["id"]
    r.facts = {"refusals": [x["reason"] for x in refusals], "pending": filed["id"]}
    if [x["reason"] for x in refusals] != ["NO_GRANT", "PURPOSE_NOT_COVERED"] or not all(x["basis"] for x in refusals):
        raise StepFailed(f"unexpected refusals: {[(x['reason'], x['basis']) for x in refusals]}")
    r.detail = "; ".join(f"{x['reason']} ({x['basis']})" for x in refusals)


# ---- a forged Kafka message ----------------------------------------------------------------------------
async def _forge(bootstrap: str, topic: str) -> tuple[str, str, int, int]:
    """Copy the first message of ``topic``, change the person's name, publish it again (same key and headers,
    so the signature claims 市公安局, but it no longer covers the content).

    Returns the record's key, the forged name, and where the forgery landed (partition, offset)."""
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                                auto_offset_reset="earliest", client_id="demo-forger")
    await consumer.start()
    try:
        batch = await consumer.getmany(timeout_ms=10_000, max_records=1)
    finally:
        await consumer.stop()
    messages = [m for msgs in batch.values() for m in msgs]
    if not messages or messages[0].value is None:
        raise StepFailed(f"no message to copy on {topic}")
    original = messages[0]
    record = json.loads(original.value)
    record["name"] = "伪造记录"
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, client_id="demo-forger", acks="all")
    await producer.start()
    try:
        sent = await producer.send_and_wait(topic, json.dumps(record, ensure_ascii=False, separators=(",", ":"))
                                            .encode("utf-8"), key=original.key, headers=list(original.headers),
                                            partition=original.partition)
    finally:
        await producer.stop()
    return (original.key or b"").decode("utf-8", "replace"), record["name"], sent.partition, sent.offset


async def _count_messages(bootstrap: str, topic: str, *, at_least: int = 1, timeout: float = 10.0) -> int:
    """How many messages ``topic`` holds, read from the beginning without a consumer group; waits up to
    ``timeout`` seconds for ``at_least`` of them, then reads until nothing more comes."""
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                                auto_offset_reset="earliest", client_id="demo-reader")
    await consumer.start()
    count = 0
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            got = sum(len(msgs) for msgs in batch.values())
            count += got
            if count >= at_least and not got:
                break
    finally:
        await consumer.stop()
    return count


async def forged_step(ctx: Context, r: StepResult) -> None:
    kafka = component("node.transport.kafka", "Kafka exchange (node.transport.kafka)")
    if ctx.kafka_skip:
        raise Skip(ctx.kafka_skip)
    from node.store import Store

    topic = kafka.shared_topic(PSB.code, "population-basic")
    bootstrap = ctx.world.bootstrap or ""
    key, name, partition, offset = await _forge(bootstrap, topic)
    ctx.say.say(f"Someone on the broker copies a 市公安局 message from {topic} (record {key}), changes the name to "
                f"「{name}」 and publishes it again with the original CloudEvents headers and signature.")
    store = Store(ctx.world.site(HRSS).store)
    try:
        held: list[Any] = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not held:
            items = await asyncio.to_thread(store.quarantine_list, status="held")
            held = [x for x in items if (x.topic, x.partition, x.offset) == (topic, partition, offset)]
            if not held:
                await asyncio.sleep(0.25)
        stored = store.get_record(kafka.local_dataset_id(PSB.code, "population-basic"), key)
    finally:
        store.close()
    run = await ctx.cli(["quarantine", "list", "--config", ctx.rel(ctx.world.site(HRSS).config)])
    ctx.say.output(run.stdout or run.stderr, limit=12)
    listing = await ctx.cli(["quarantine", "list", "--config", ctx.rel(ctx.world.site(HRSS).config), "--json"],
                            show=False)
    (ctx.out / "quarantine.json").write_text(listing.stdout, encoding="utf-8")
    dead = await _count_messages(bootstrap, kafka.dead_letter_topic(HRSS.code))
    reasons = sorted({x.reason.split(":", 1)[0] for x in held})
    kept = stored.data.get("name") if stored is not None and stored.data else None
    ctx.say.say(f"  {HRSS.short}'s copy of {key} still says 「{kept}」; the forged message is held in its "
                f"quarantine, and {dead} message(s) are on its dead-letter topic "
                f"{kafka.dead_letter_topic(HRSS.code)}.")
    r.facts = {"quarantined": len(held), "reasons": reasons, "dead_letters": dead}
    if not held:
        raise StepFailed(f"the forged message was not quarantined within 30 s (logs/{HRSS.key}.log)")
    if kept == name:
        raise StepFailed("the forged content was stored")
    r.detail = f"forged copy of {key} quarantined by {HRSS.short}: {', '.join(reasons)}; stored record unchanged"


# ---- the conformance kit -------------------------------------------------------------------------------
def _registered_cases() -> list[str]:
    conformance = component("conformance", "conformance kit")
    component("conformance.fixture", "conformance kit's node fixture (conformance/fixture)")
    try:
        ids: list[str] = conformance.discover().ids()
    except Exception as exc:  # a broken case module: say which, do not crash the demo
        raise StepFailed(f"the conformance kit's node cases cannot be loaded: {exc}") from exc
    if not ids:
        raise Skip("conformance node cases (conformance/node_cases) not installed")
    return ids


async def _stop(ctx: Context, dept: Department) -> None:
    old = next(c for c in ctx.procs.children if c.name == dept.key)
    await asyncio.to_thread(ctx.procs.stop, old)
    ctx.procs.children.remove(old)


async def _start(ctx: Context, dept: Department) -> str:
    site = ctx.world.site(dept)
    child = ctx.procs.start_node(dept.key, site.config, ctx.out / "logs" / f"{dept.key}.log")
    return await asyncio.to_thread(ctx.procs.wait_serving, child)


async def conformance_step(ctx: Context, r: StepResult) -> None:
    ids = await asyncio.to_thread(_registered_cases)
    site = ctx.world.site(PSB)
    fixture = ctx.out / "conformance" / "fixture"
    report = ctx.out / "conformance" / "report"
    ctx.say.say(f"The conformance kit checks {PSB.name}'s node black-box over gRPC and Kafka ({len(ids)} node "
                "checks). Its fixture is loaded into the stopped node first: three test consumers (granted, "
                "expired, no grant) in the federation directory, test datasets, grants and records.")
    run = await ctx.cli(["fixture", "init", ctx.rel(fixture)], program="shulian-conform")
    if run.code != 0:
        raise StepFailed(f"shulian-conform fixture init exited {run.code}: {(run.stderr or run.stdout).strip()[-600:]}")
    await _stop(ctx, PSB)
    ctx.say.say(f"  {PSB.short}'s node stopped (SIGTERM)")
    run = await ctx.cli(["fixture", "load", ctx.rel(fixture), "--config", ctx.rel(site.config), "--ca-dir",
                         ctx.rel(ctx.world.ca)], program="shulian-conform")
    ctx.invalidate(PSB)
    address = await _start(ctx, PSB)
    ctx.say.say(f"  shulian-node run --config {ctx.rel(site.config)}   serving again on {address}")
    if run.code != 0:
        raise StepFailed(f"shulian-conform fixture load exited {run.code}: {(run.stderr or run.stdout).strip()[-600:]}")
    args = ["node", "--target", site.address, "--params", ctx.rel(fixture / "params.toml"),
            "--standard", ctx.rel(ctx.world.standard), "--out", ctx.rel(report)]
    if ctx.world.bootstrap and not ctx.kafka_skip:
        args += ["--kafka", ctx.world.bootstrap]
    run = await ctx.cli(args, program="shulian-conform", timeout=180)
    ctx.say.output(run.stdout or run.stderr, limit=40)
    try:
        summary = json.loads((report / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise StepFailed(f"shulian-conform node exited {run.code} without a summary: {run.stderr.strip()[-500:]}") \
            from exc
    outcomes: dict[str, int] = {}
    not_passed = []
    for case in summary.get("cases", []):
        outcomes[case["outcome"]] = outcomes.get(case["outcome"], 0) + 1
        if case["outcome"] in ("failed", "cantTell"):
            not_passed.append(f"{case['id']} {case['outcome']}")
    r.facts = {"exit": run.code, "outcomes": outcomes, "implemented": len(ids)}
    text = ", ".join(f"{n} {k}" for k, n in sorted(outcomes.items()))
    if run.code == 3 or not_passed:
        raise StepFailed(f"shulian-conform node exited {run.code}: {text}: {', '.join(not_passed)} "
                         "(conformance/report/)")
    r.detail = f"{PSB.short}'s node: {text}; JUnit, EARL and summary in conformance/report/"


# ---- evidence ----------------------------------------------------------------------------------------------
def _kinds(site_store: Any) -> dict[str, int]:
    from node.evidence import EvidenceLog
    from node.store import Store

    store = Store(site_store)
    try:
        kinds: dict[str, int] = {}
        for e in EvidenceLog(store).entries():
            kinds[e.kind] = kinds.get(e.kind, 0) + 1
        return kinds
    finally:
        store.close()


async def evidence_step(ctx: Context, r: StepResult) -> None:
    ctx.say.say("Each node's evidence log (hash-chained, every entry signed with the node's key) is verified in "
                "place, exported, and the export verified offline with the public key alone.")
    rows = []
    problems = []
    total = 0
    for dept in DEPARTMENTS:
        site = ctx.world.site(dept)
        cfg = ctx.rel(site.config)
        export = ctx.out / "evidence" / f"{dept.key}.jsonl"
        export.parent.mkdir(parents=True, exist_ok=True)
        verify = await ctx.cli(["audit", "verify", "--config", cfg, "--json"], show=dept is PSB)
        exported = await ctx.cli(["audit", "export", "--config", cfg, "--out", ctx.rel(export)], show=dept is PSB)
        offline = await ctx.cli(["audit", "verify", "--file", ctx.rel(export), "--public-key",
                                 ctx.rel(site.dir / "keys" / "signing.pem")], show=dept is PSB)
        try:
            report = json.loads(verify.stdout)
        except ValueError:
            report = {"ok": False, "entries": 0, "head_seq": 0, "head_hash": ""}
        (export.with_suffix(".verify.json")).write_text(verify.stdout, encoding="utf-8")
        kinds = await asyncio.to_thread(_kinds, site.store)
        total += report["entries"]
        ok = verify.code == 0 and exported.code == 0 and offline.code == 0 and report["ok"]
        if not ok:
            problems.append(f"{dept.short}: verify {verify.code}, export {exported.code}, offline {offline.code}")
        rows.append([dept.name, report["entries"], f"{report['head_seq']}:{report['head_hash'][:16]}…",
                     ", ".join(f"{k} {n}" for k, n in sorted(kinds.items())), "verified" if ok else "FAILED"])
    ctx.say.table("evidence logs (exports in evidence/)", ["部门", "entries", "head seq:hash", "kinds", "chain"], rows)
    r.facts = {"entries": total}
    if problems:
        raise StepFailed("evidence did not verify: " + "; ".join(problems))
    r.detail = f"{total} entries on {len(DEPARTMENTS)} nodes: chains and signatures verify, in place and exported"


# ---- operations: status and peers ------------------------------------------------------------------------------
async def operations_step(ctx: Context, r: StepResult) -> None:
    ctx.say.say(f"What an operator at {HRSS.short} sees: its node's status (Node/GetStatus and the health "
                "service over mutual TLS) and its peers, each pinged over mutual TLS.")
    hrss = ctx.rel(ctx.world.site(HRSS).config)
    status = await ctx.cli(["status", "--config", hrss])
    ctx.say.output(status.stdout or status.stderr, limit=45)
    peers = await ctx.cli(["peers", "check", "--config", hrss])
    ctx.say.output(peers.stdout or peers.stderr, limit=25)
    if status.code == 2 and "No such command" in status.stderr:
        raise Skip("shulian status and peers not installed")
    as_json = await ctx.cli(["status", "--config", hrss, "--json"], show=False)
    checks = await ctx.cli(["peers", "check", "--config", hrss, "--json"], show=False)
    (ctx.out / "status").mkdir(exist_ok=True)
    (ctx.out / "status" / "hrss-status.json").write_text(as_json.stdout, encoding="utf-8")
    (ctx.out / "status" / "hrss-peers.json").write_text(checks.stdout, encoding="utf-8")
    r.facts = {"status_exit": status.code, "peers_exit": peers.code}
    if status.code != 0 or peers.code != 0:
        raise StepFailed(f"shulian status exited {status.code}, shulian peers check {peers.code}")
    info = json.loads(as_json.stdout)
    reached = json.loads(checks.stdout)
    nodes = [p for p in reached["peers"] if p["health"] != "SKIPPED"]
    serving = sum(1 for p in nodes if p["health"] == "SERVING" and p["identity"] == "ok")
    pending = info["access"]["pending"]
    if pending != (1 if ctx.state.get("pending_request") else 0):
        raise StepFailed(f"shulian status reports {pending} pending access request(s)")
    r.detail = (f"{HRSS.short}: {info['state']}, {sum(d['records'] for d in info['datasets'])} records in "
                f"{len(info['datasets'])} datasets, {pending} pending request; peers: {serving}/{len(nodes)} "
                "nodes serving, identities match")
