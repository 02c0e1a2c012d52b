"""Benchmark: the fast engine against the strongest baselines, in one run.

Generated Person records (10% invalid in varied ways):
  * fast engine over N records (default 50,000);
  * pyshacl-turbo (Rust SHACL engine) over the same records as one graph;
  * pySHACL (the reference engine, oxigraph data graph) over a 1,000-record sample;
  * jsonschema Draft202012Validator with format checking against the generated schema.
Prints one JSON line: records/s per engine, ratios, targets, and verdict agreement.
jsonschema cannot express check characters or cross-field rules, so its verdicts
are compared with the fast engine's verdict on the constraints JSON Schema can say.
"""

from __future__ import annotations

import json
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from node.standard._paths import ontology_dir  # noqa: E402
from node.standard.build import json_schema  # noqa: E402
from node.standard.divisions import import_divisions  # noqa: E402
from node.validation import get_validator  # noqa: E402
from node.validation._native import gb11643_check_char  # noqa: E402
from node.validation._shacl import normalised_shapes  # noqa: E402
from node.validation._terms import record_triples  # noqa: E402

N = int(sys.argv[1]) if len(sys.argv) > 1 else 50_000
SAMPLE = 1_000
DIVISIONS = REPO / ".." / "shared" / "data" / "divisions"
SPARQL_ONLY = {"GB11643Check", "BirthDateMatchesId", "SexMatchesId"}


def make_records(n: int, divisions: list[str], seed: int = 7) -> list[dict[str, Any]]:
    rnd = random.Random(seed)
    names = ["王秀英", "李明", "张伟", "刘洋", "陈静", "杨帆", "赵磊", "黄敏"]
    out = []
    for i in range(n):
        div = rnd.choice(divisions)
        y, m, d = rnd.randint(1940, 2010), rnd.randint(1, 12), rnd.randint(1, 28)
        seq = rnd.randint(0, 999)
        body = f"{div}{y:04d}{m:02d}{d:02d}{seq:03d}"
        rec: dict[str, Any] = {
            "id": f"person-{i}", "identityNumber": body + gb11643_check_char(body), "name": rnd.choice(names),
            "sex": "1" if seq % 2 else "2", "ethnicity": f"{rnd.randint(1, 56):02d}",
            "birthDate": f"{y:04d}-{m:02d}-{d:02d}", "householdDivision": div,
        }
        if rnd.random() < 0.10:  # 10% invalid, in varied ways
            kind = rnd.randrange(8)
            if kind == 0:
                rec["identityNumber"] = body + ("0" if rec["identityNumber"][-1] != "0" else "1")
            elif kind == 1:
                rec["birthDate"] = f"{y:04d}-{m:02d}-{d + 1:02d}"
            elif kind == 2:
                rec["sex"] = "男"
            elif kind == 3:
                rec["householdDivision"] = "999999"
            elif kind == 4:
                del rec["name"]
            elif kind == 5:
                rec["nickname"] = "x"
            elif kind == 6:
                rec["birthDate"] = f"{y:04d}-02-30"
            else:
                rec["ethnicity"] = 1
        out.append(rec)
    return out


def main() -> int:
    tmp = Path(tempfile.mkdtemp(prefix="shulian-bench-"))
    try:
        std_dir = tmp / "ontology"
        shutil.copytree(ontology_dir(), std_dir, ignore=shutil.ignore_patterns("__pycache__", "__init__.py"))
        import_divisions([DIVISIONS / n for n in ("provinces.csv", "cities.csv", "areas.csv")], std_dir)
        import csv

        with open(DIVISIONS / "areas.csv", encoding="utf-8") as fh:
            divisions = [row["code"] for row in csv.DictReader(fh)][:500]
        records = make_records(N, divisions)

        fast = get_validator("fast", std_dir)
        fast.validate_many(records[:1000], "Person")  # warm up
        t = time.perf_counter()
        fast_reports = fast.validate_many(records, "Person")
        fast_s = time.perf_counter() - t
        fast_rps = N / fast_s
        invalid = sum(not r.valid for r in fast_reports)

        # pyshacl-turbo over the same records as one graph
        import pyshacl_turbo
        from rdflib import Graph

        std = fast.std
        g = Graph()
        rt = std.types["Person"]
        for rec in records:
            _s, triples = record_triples(rec, rt, std.keys, std.coercions)
            for tr in triples:
                g.add(tr)
        shapes = normalised_shapes(std)
        t = time.perf_counter()
        _conf, turbo_graph, _txt = pyshacl_turbo.validate(g, shacl_graph=shapes)
        turbo_s = time.perf_counter() - t
        turbo_rps = N / turbo_s
        from rdflib import RDF, Namespace

        SH = Namespace("http://www.w3.org/ns/shacl#")
        turbo_bad: set[str] = set()
        for res in turbo_graph.subjects(RDF.type, SH.ValidationResult):
            if turbo_graph.value(res, SH.resultSeverity) == SH.Violation:
                turbo_bad.add(str(turbo_graph.value(res, SH.focusNode)).rsplit("/", 1)[-1])
        turbo_agree = sum((r.id in turbo_bad) == (not r.valid) for r in fast_reports)

        # pySHACL (reference) over a sample
        sample = records[:SAMPLE]
        ref = get_validator("shacl", std_dir)
        t = time.perf_counter()
        ref_reports = ref.validate_many(sample, "Person")
        ref_s = time.perf_counter() - t
        ref_rps = SAMPLE / ref_s
        ref_agree = sum((a.valid, a.keys) == (b.valid, b.keys) for a, b in zip(fast_reports, ref_reports, strict=False))

        # jsonschema with format checking against the generated schema
        from jsonschema import Draft202012Validator, FormatChecker

        js = Draft202012Validator(json_schema(std.types["Person"]), format_checker=FormatChecker())
        t = time.perf_counter()
        js_valid = [js.is_valid(r) for r in records]
        js_s = time.perf_counter() - t
        js_rps = N / js_s
        expressible = [not any(v.severity == "Violation" and v.constraint not in SPARQL_ONLY for v in r.violations)
                       for r in fast_reports]
        js_agree = sum(a == b for a, b in zip(js_valid, expressible, strict=False))

        out = {
            "bench": "validation",
            "records": N,
            "invalid": invalid,
            "fast_rps": round(fast_rps),
            "pyshacl_turbo_rps": round(turbo_rps),
            "pyshacl_rps": round(ref_rps, 1),
            "pyshacl_sample": SAMPLE,
            "jsonschema_rps": round(js_rps),
            "ratio_fast_vs_turbo": round(fast_rps / turbo_rps, 2),
            "ratio_fast_vs_jsonschema": round(fast_rps / js_rps, 2),
            "ratio_fast_vs_pyshacl": round(fast_rps / ref_rps, 1),
            "target_vs_turbo": 10,
            "target_vs_jsonschema": 5,
            "agree_turbo": f"{turbo_agree}/{N}",
            "agree_pyshacl": f"{ref_agree}/{SAMPLE}",
            "agree_jsonschema_expressible": f"{js_agree}/{N}",
            "pass": fast_rps / turbo_rps >= 10 and fast_rps / js_rps >= 5
            and turbo_agree == N and ref_agree == SAMPLE and js_agree == N,
        }
        print(json.dumps(out))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0 if out["pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
