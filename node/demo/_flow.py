"""The demo's first steps: the standard, catalogs, an access request, the county's data, receipt."""

from __future__ import annotations

import asyncio
import csv
import json
import shutil
import time
from pathlib import Path
from typing import Any

from node.demo._context import Context, component
from node.demo._data import (
    COUNTY,
    DEPARTMENTS,
    HRSS,
    PSB,
    PURPOSE,
    REQUESTED_ITEMS,
    SCENARIO,
    seed_people,
)
from node.demo._narrate import Skip, StepFailed, StepResult, dump
from node.demo._world import until_next_year

__all__ = ["standard_step", "catalog_step", "access_step", "map_step", "push_step", "grpc_step", "kafka_step",
           "type_label", "sharing_zh"]

_SHARING_ZH = {"unconditional": "无条件共享", "conditional": "有条件共享", "not_shared": "不予共享"}


def sharing_zh(token: str) -> str:
    return _SHARING_ZH.get(token, token)


def type_label(record_type: str, standard: Path | None = None) -> str:
    """``人口基础信息 Person``: the standard's Chinese name of a record type, then its key."""
    from node.standard.codelists import load_vocabulary

    term = load_vocabulary(standard).get(record_type)
    return f"{term.label_zh} {record_type}" if term is not None and term.label_zh else record_type


def _jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in rows),
                    encoding="utf-8")


# ---- 1. the standard ------------------------------------------------------------------------
def standard_step(ctx: Context, r: StepResult) -> None:
    from node.standard._paths import ontology_dir
    from node.validation import get_validator

    std = ctx.world.standard
    ctx.say.say(f"A copy of the standard in {ctx.rel(std)}/ with {ctx.world.divisions} division codes imported "
                f"from {ctx.world.divisions_from}; every node is configured with it ([node] standard).")
    examples = ontology_dir() / "examples"
    fast, ref = get_validator("fast", std), get_validator("shacl", std)
    lines: list[dict[str, Any]] = []
    rows = []
    mismatches = 0
    for t in fast.types:
        counts = {"valid": 0, "invalid": 0}
        agree = 0
        for kind in ("valid", "invalid"):
            for path in sorted((examples / t / kind).glob("*.json")):
                rec = json.loads(path.read_text(encoding="utf-8"))
                a, b = fast.validate(rec, t), ref.validate(rec, t)
                same = a.keys == b.keys and a.valid == b.valid
                ok = same and a.valid == (kind == "valid")
                counts[kind] += 1
                agree += same
                mismatches += not ok
                lines.append({"type": t, "example": path.name, "expected": kind, **a.to_json(),
                              "engines_agree": same})
        rows.append([type_label(t, std), counts["valid"], counts["invalid"],
                     f"{agree}/{counts['valid'] + counts['invalid']}"])
    _jsonl(ctx.out / "examples-report.jsonl", lines)
    ctx.say.table("the standard's example records, judged by both engines (fast = the node's hot path, "
                  "shacl = pySHACL, the reference)",
                  ["记录类型 record type", "valid", "invalid", "engines agree"], rows)
    r.facts = {"examples": len(lines), "mismatches": mismatches, "divisions": ctx.world.divisions}
    if mismatches:
        raise StepFailed(f"{mismatches} of {len(lines)} examples judged otherwise than documented "
                         "(see examples-report.jsonl)")
    r.detail = (f"{len(lines)} example records, fast and SHACL engines agree on all; "
                f"{ctx.world.divisions} division codes")


# ---- 2. catalogs --------------------------------------------------------------------------------
async def catalog_step(ctx: Context, r: StepResult) -> None:
    from rdflib import Graph
    from rdflib.namespace import DCAT, RDF

    from node.catalog.profile import validate_catalog

    ctx.say.say(f"{COUNTY.short} reads each node's catalog over gRPC (Catalog/GetCatalog, mutual TLS) and "
                "checks it against the standard's catalog profile (DCAT 3 + 政务信息资源目录).")
    rows = []
    conforming = 0
    datasets = 0
    for dept in DEPARTMENTS:
        async with ctx.client(COUNTY, dept) as peer:
            text = await peer.get_catalog("turtle")
            status = await peer.status()
        path = ctx.out / "catalogs" / f"{dept.key}.ttl"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        report = await asyncio.to_thread(validate_catalog, path, standard_dir=ctx.world.standard)
        dump(path.with_suffix(".report.json"), report.to_dict())
        conforming += report.conforms
        served = len(set(Graph().parse(data=text, format="turtle").subjects(RDF.type, DCAT.Dataset)))
        counts = {d["id"]: d["records"] for d in status["datasets"]}
        for ds in ctx.cfg(dept).datasets:
            datasets += 1
            rows.append([dept.name, ds.id, ds.catalog.title_zh, type_label(ds.record_type, ctx.world.standard),
                         sharing_zh(ds.catalog.sharing_type), ds.catalog.sharing_basis or "—",
                         counts.get(ds.id, 0), "conforms" if report.conforms else "DOES NOT CONFORM"])
        if served != len(ctx.cfg(dept).datasets):
            raise StepFailed(f"{dept.name}'s catalog lists {served} datasets, its node.toml {len(ctx.cfg(dept).datasets)}")
    ctx.say.table("catalogs published (saved in catalogs/)",
                  ["部门 department", "dataset", "名称 title", "记录类型 record type", "共享类型 sharing",
                   "依据 basis", "records", "profile"], rows)
    r.facts = {"catalogs": len(DEPARTMENTS), "conforming": conforming, "datasets": datasets}
    if conforming != len(DEPARTMENTS):
        raise StepFailed(f"{len(DEPARTMENTS) - conforming} catalog(s) do not conform to the catalog profile "
                         "(catalogs/*.report.json)")
    r.detail = f"{len(DEPARTMENTS)} catalogs, {datasets} datasets, all conform to the catalog profile"


# ---- 3. access request --------------------------------------------------------------------------
async def access_step(ctx: Context, r: StepResult) -> None:
    until = until_next_year()
    ctx.say.say(f"{HRSS.short} asks {PSB.short} for the full population records (有条件共享) over gRPC "
                f"(Access/RequestAccess): purpose 「{PURPOSE}」, scenario 「{SCENARIO}」, "
                f"items {', '.join(REQUESTED_ITEMS)}, until {until}.")
    async with ctx.client(HRSS, PSB) as peer:
        filed = await peer.request_access("population", purpose=PURPOSE, scenario=SCENARIO, items=REQUESTED_ITEMS,
                                          until=until)
    ctx.say.say(f"  filed {filed['id']}: {filed['status']}, {PSB.short} must answer by {filed['deadline']} "
                "(10 working days)")
    psb = ctx.rel(ctx.world.site(PSB).config)
    listing = await ctx.cli(["access", "list", "--config", psb, "--status", "pending"])
    ctx.say.output(listing.stdout)
    approve = await ctx.cli(["access", "approve", filed["id"], "--config", psb, "--mask", "identityNumber=keep:6:4",
                             "--note", "履行社会保险经办职责所需", "--operator", "市公安局数据管理员"])
    ctx.say.output(approve.stdout or approve.stderr)
    if approve.code != 0:
        raise StepFailed(f"shulian access approve exited {approve.code}: {approve.stderr.strip()}")
    async with ctx.client(HRSS, PSB) as peer:
        answer = await peer.get_access_request(filed["id"])
    ctx.say.say(f"  {HRSS.short} asks again (Access/GetAccessRequest): {answer['status']} at {answer['decided_at']}")
    dump(ctx.out / "access-request.json", {"filed": filed, "answer": answer})
    ctx.state["request"] = filed["id"]
    r.facts = {"request": filed["id"], "status": answer["status"]}
    if answer["status"] != "approved":
        raise StepFailed(f"the request is {answer['status']}, not approved")
    r.detail = (f"{HRSS.short} -> {PSB.short} population: filed {filed['id']}, approved; "
                "identityNumber masked keep:6:4")


# ---- 4. the county's data through an adapter --------------------------------------------------------
def _example_folder() -> Path:
    adapters = component("adapters", "adapters (shulian map)")
    folder = Path(adapters.__file__).resolve().parent / "examples" / "county-household"
    if not (folder / "mapping.toml").is_file():
        raise Skip(f"adapters installed without examples/county-household ({folder})")
    return folder


async def map_step(ctx: Context, r: StepResult) -> None:
    component("adapters.cli", "adapters (shulian map)")
    source = ctx.out / "county" / "source"
    shutil.copytree(_example_folder(), source, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("expected*", "__pycache__"))
    raw = (source / "households.csv").read_bytes()
    ctx.say.say(f"{COUNTY.name} exports its household register as CSV ({len(raw)} bytes, GB18030, pinyin columns "
                "xm sfzh xb csrq mz hjdz) and maps it onto the standard's Person with a declarative mapping.")
    out = ctx.out / "county"
    run = await ctx.cli(["map", "--mapping", ctx.rel(source / "mapping.toml"), ctx.rel(source / "households.csv"),
                         "-o", ctx.rel(out / "people.jsonl"), "--rejects", ctx.rel(out / "rejects.csv"),
                         "--report", ctx.rel(out / "map-report.json"), "--standard", ctx.rel(ctx.world.standard)])
    ctx.say.output(run.stdout or run.stderr, limit=6)
    if run.code not in (0, 1):
        raise StepFailed(f"shulian map exited {run.code}: {run.stderr.strip()[-500:]}")
    report = json.loads((out / "map-report.json").read_text(encoding="utf-8"))
    with (out / "rejects.csv").open(encoding="utf-8-sig", newline="") as fh:
        rejects = list(csv.DictReader(fh))
    ctx.say.table(f"rejected rows ({report['rows_rejected']} of {report['rows_in']}; every row ends in the "
                  "records or here)", ["行 row", "列 column", "值 value", "stage", "原因 reason"],
                  [[x["row"], x["column"], x["value"], x["stage"], x["reason_zh"]] for x in rejects])
    records = [json.loads(line) for line in (out / "people.jsonl").read_text(encoding="utf-8").splitlines() if line]
    encoding = report.get("source", {}).get("encoding", "?")
    ctx.state["mapped"] = records
    r.facts = {"rows": report["rows_in"], "mapped": report["rows_out"], "rejected": report["rows_rejected"],
               "balanced": report["balanced"], "encoding": encoding}
    if not report["balanced"] or len(records) != report["rows_out"] or not records:
        raise StepFailed(f"the mapping report does not add up: {report['rows_in']} rows in, {report['rows_out']} "
                         f"out, {report['rows_rejected']} rejected, {len(records)} records written")
    reasons = sorted({x["constraint"] for x in rejects})
    r.detail = (f"{report['rows_in']} rows ({encoding}): {report['rows_out']} records, {report['rows_rejected']} "
                f"rejected with reasons ({', '.join(reasons)})")


# ---- 5. pushed up ------------------------------------------------------------------------------------
def _hand_edited(record: dict[str, Any]) -> dict[str, Any]:
    """The first mapped record, edited by hand after mapping: its check character is now wrong."""
    number = record["identityNumber"]
    wrong = "0" if number[-1] != "0" else "1"
    return {**record, "id": record["id"] + "-edited", "identityNumber": number[:-1] + wrong}


async def push_step(ctx: Context, r: StepResult) -> None:
    records: list[dict[str, Any]] | None = ctx.state.get("mapped")
    if not records:
        raise Skip("no mapped county records (step: county data mapped)")
    async with ctx.client(COUNTY, COUNTY) as own:
        local = await own.push("household-register", records)
    ctx.say.say(f"{COUNTY.short} stores them in its own node (household-register): {local.accepted} accepted, "
                f"{local.rejected} rejected.")
    edited = _hand_edited(records[0])
    ctx.say.say(f"It pushes them up to {PSB.name} (Records/Push into population), plus one record a clerk edited "
                f"after mapping ({edited['id']}: identity number {edited['identityNumber']}). "
                f"{PSB.short} validates every record at its boundary.")
    async with ctx.client(COUNTY, PSB) as city:
        summary = await city.push("population", [*records, edited], keep_ids=True)
    rows = [[x.id, "; ".join(f"{v['path']}: {v['constraint']} — {v['message_zh']}" for v in x.violations)
             or (x.error or "")] for x in summary.rejections]
    ctx.say.say(f"  {summary.batches} batch(es): {summary.accepted} accepted (stored with evidence, durable when "
                f"answered), {summary.rejected} rejected")
    ctx.say.table("rejected at 市公安局's boundary", ["record", "违规 violations"], rows)
    ctx.state["pushed"] = summary.accepted
    ctx.state["pushed_ids"] = list(summary.acknowledged)
    r.facts = {"accepted": summary.accepted, "rejected": summary.rejected, "local": local.accepted}
    if summary.accepted != len(records) or summary.rejected != 1:
        raise StepFailed(f"expected {len(records)} accepted and 1 rejected, got {summary.accepted} and "
                         f"{summary.rejected}")
    if not any(v["constraint"] == "GB11643Check" for x in summary.rejections for v in x.violations):
        raise StepFailed("the hand-edited record was not rejected for its check character")
    r.detail = (f"{summary.accepted} records accepted by {PSB.short}, 1 hand-edited record rejected "
                "(GB11643Check)")


# ---- 6. over gRPC ------------------------------------------------------------------------------------
def _originals() -> dict[str, dict[str, Any]]:
    return {p["id"]: p for p in seed_people()}


async def grpc_step(ctx: Context, r: StepResult) -> None:
    ctx.say.say(f"{HRSS.short} queries population (Records/Query) for 「{PURPOSE}」: {PSB.short} decides once "
                "with its responsibility list, validates each stored record, projects and masks it, signs the batch.")
    received: list[dict[str, Any]] = []
    verified = True
    delivery: dict[str, Any] | None = None
    async with ctx.client(HRSS, PSB) as peer:
        async for batch in peer.query("population", purpose=PURPOSE):
            verified &= batch.verified
            delivery = batch.delivery or delivery
            received.extend(x.data for x in batch.records if x.data is not None)
    _jsonl(ctx.out / "received" / "grpc-population.jsonl", received)
    originals = {**_originals(), **{p["id"]: p for p in ctx.state.get("mapped", [])}}
    sample = [x for x in received if x["id"].startswith("person-")][:2] + [x for x in received
                                                                           if x["id"].startswith("sjz-")][:2]
    ctx.say.table(f"received by {HRSS.short} over gRPC ({len(received)} records, saved in received/)",
                  ["record", "姓名 name", "公民身份号码 as stored at 市公安局", "as received", "出生日期", "户籍地",
                   "民族 ethnicity"],
                  [[x["id"], x.get("name", ""), originals.get(x["id"], {}).get("identityNumber", "?"),
                    x.get("identityNumber", "—"), x.get("birthDate", "—"), x.get("householdDivision", "—"),
                    x.get("ethnicity", "not granted")] for x in sample])
    if delivery:
        ctx.say.say(f"  delivery: {delivery['reason']}, grants {', '.join(delivery['grants'])}, items "
                    f"{', '.join(delivery['items'])}, masking {json.dumps(delivery['masking'], ensure_ascii=False)}; "
                    f"batch signatures {'verified' if verified else 'NOT verified'} with {PSB.short}'s key "
                    "from the federation directory")
    expected = len(seed_people()) + int(ctx.state.get("pushed", 0))
    masked = all("*" in x.get("identityNumber", "*") for x in received)
    r.facts = {"records": len(received), "expected": expected, "masked": masked, "verified": verified}
    if len(received) != expected:
        raise StepFailed(f"received {len(received)} records, expected {expected}")
    if not masked or any("ethnicity" in x for x in received) or not verified:
        raise StepFailed("the records were not projected, masked and signed as granted")
    r.detail = (f"{len(received)} records, projected to the granted items, identityNumber masked (keep:6:4), "
                "signatures verified")


# ---- 7. over Kafka ---------------------------------------------------------------------------------
async def kafka_step(ctx: Context, r: StepResult) -> None:
    kafka = component("node.transport.kafka", "Kafka exchange (node.transport.kafka)")
    if ctx.kafka_skip:
        raise Skip(ctx.kafka_skip)
    from node.store import Store

    basic = kafka.local_dataset_id(PSB.code, "population-basic")
    full = kafka.local_dataset_id(PSB.code, "population")
    want_basic, want_full = len(seed_people()), int(ctx.state.get("pushed", 0))
    ctx.say.say(f"{PSB.short}'s node publishes its outbox to Kafka as signed CloudEvents: population-basic to the "
                f"shared topic (everyone, identityNumber and birthDate withheld), population to {HRSS.short}'s own "
                f"topic (encrypted to its key, projected and masked as granted). {HRSS.short}'s node subscribes, "
                "validates at its boundary and stores.")
    store = Store(ctx.world.site(HRSS).store)
    try:
        deadline = time.monotonic() + 45
        counts = (0, 0)
        while time.monotonic() < deadline:
            counts = await asyncio.to_thread(_counts, store, basic, full)
            if counts[0] >= want_basic and counts[1] >= want_full:
                break
            await asyncio.sleep(0.25)
        got_basic = [x.data for x in store.iter_records(basic)] if counts[0] else []
        got_full = [x.data for x in store.iter_records(full)] if counts[1] else []
    finally:
        store.close()
    _jsonl(ctx.out / "received" / "kafka-population-basic.jsonl", [x for x in got_basic if x])
    _jsonl(ctx.out / "received" / "kafka-population.jsonl", [x for x in got_full if x])
    rows = [["population-basic (shared topic)", x["id"], x.get("name"), x.get("identityNumber", "withheld"),
             x.get("birthDate", "withheld"), x.get("householdDivision")] for x in got_basic[:2] if x]
    rows += [["population (to 市人社局, encrypted)", x["id"], x.get("name"), x.get("identityNumber"),
              x.get("birthDate"), x.get("householdDivision")] for x in got_full[:2] if x]
    ctx.say.table(f"stored by {HRSS.short} from Kafka", ["topic", "record", "姓名", "公民身份号码", "出生日期", "户籍地"],
                  rows)
    r.facts = {"basic": counts[0], "full": counts[1], "want_basic": want_basic, "want_full": want_full}
    if counts[0] < want_basic or counts[1] < want_full:
        raise StepFailed(f"after 45 s {HRSS.short} holds {counts[0]}/{want_basic} basic and {counts[1]}/{want_full} "
                         "full records from Kafka (logs/hrss.log)")
    clean = all("identityNumber" not in x and "birthDate" not in x for x in got_basic if x) and \
        all("*" in x.get("identityNumber", "") and "ethnicity" not in x for x in got_full if x)
    if not clean:
        raise StepFailed("records arrived over Kafka without their projection or masking")
    r.detail = (f"{counts[0]} basic records (identityNumber, birthDate withheld) and {counts[1]} county records "
                "(masked, encrypted topic) stored")


def _counts(store: Any, basic: str, full: str) -> tuple[int, int]:
    from node.errors import NotFound

    out = []
    for ds in (basic, full):
        try:
            out.append(store.count_records(ds))
        except NotFound:
            out.append(0)
    return out[0], out[1]
