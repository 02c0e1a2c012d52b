"""``shulian demo``: the main job.

Until the node's exchange lands, the demo shows the standard at work: it builds
a working copy of the standard with the full division list (from
``../shared/data/divisions`` when present), validates every example record with
both engines, checks the example catalogs against the catalog profile, and
writes the reports to a folder it names.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path

import click

from node.cli._common import fail_cleanly
from node.errors import EXIT_FINDINGS, EXIT_OK


def _shared_divisions() -> list[Path]:
    here = Path.cwd()
    for base in (here, *here.parents):
        d = base / ".." / "shared" / "data" / "divisions"
        if d.is_dir():
            return [d / n for n in ("provinces.csv", "cities.csv", "areas.csv") if (d / n).is_file()]
    return []


@click.command()
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="demo-out", show_default=True,
              help="Folder for the demo's artifacts (reports, the standard copy).")
@fail_cleanly
def demo(out_dir: str) -> None:
    """Run the demo: the standard validating its own examples, both engines, with a report.

    \b
    Example:
      shulian demo --out demo-out
    """
    from rich.console import Console
    from rich.table import Table

    from node.catalog.profile import validate_catalog
    from node.standard._paths import ontology_dir
    from node.standard.divisions import import_divisions
    from node.validation import get_validator

    console = Console()
    started = time.perf_counter()
    out = Path(out_dir).resolve()
    std_dir = out / "standard"
    if std_dir.exists():
        shutil.rmtree(std_dir)
    out.mkdir(parents=True, exist_ok=True)
    console.print(f"[bold]数链 Shulian demo[/bold] — artifacts in {out}")
    shutil.copytree(ontology_dir(), std_dir, ignore=shutil.ignore_patterns("__pycache__", "__init__.py"))
    csvs = _shared_divisions()
    if csvs:
        n = import_divisions(csvs, std_dir)
        console.print(f"1. standard copied; imported {n} division codes from {csvs[0].parent}")
    else:
        console.print("1. standard copied; no shared division list found, using the shipped provinces only")

    examples = ontology_dir() / "examples"
    fast = get_validator("fast", std_dir)
    ref = get_validator("shacl", std_dir)
    table = Table(title="2. example records, both engines")
    for col in ("type", "example", "expected", "fast", "shacl", "violations"):
        table.add_column(col)
    report_lines = []
    mismatches = 0
    for t in fast.types:
        for kind in ("valid", "invalid"):
            for path in sorted((examples / t / kind).glob("*.json")):
                rec = json.loads(path.read_text(encoding="utf-8"))
                a = fast.validate(rec, t)
                b = ref.validate(rec, t)
                ok = a.valid == (kind == "valid") and a.keys == b.keys and a.valid == b.valid
                mismatches += not ok
                table.add_row(t, path.stem, kind, "valid" if a.valid else "invalid",
                              "valid" if b.valid else "invalid",
                              ", ".join(f"{p}:{c}" for p, c in sorted(a.keys)) or "-",
                              style=None if ok else "red")
                report_lines.append({"type": t, "example": path.name, "expected": kind, **a.to_json(),
                                     "engines_agree": a.keys == b.keys and a.valid == b.valid})
    console.print(table)
    (out / "examples-report.jsonl").write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in report_lines), encoding="utf-8")

    cat_rows = []
    for path in sorted((examples / "catalog").glob("*/*.ttl")):
        rep = validate_catalog(path, standard_dir=std_dir)
        expected = path.parent.name == "valid"
        mismatches += rep.conforms != expected
        cat_rows.append((path.parent.name, path.name, rep.conforms))
    conforming = sum(1 for _k, _n, c in cat_rows if c)
    console.print(f"3. catalogs: {len(cat_rows)} examples checked against the catalog profile, "
                  f"{conforming} conform (all valid ones, none of the invalid ones: "
                  f"{'yes' if all(c == (k == 'valid') for k, _n, c in cat_rows) else 'NO'})")
    elapsed = time.perf_counter() - started
    summary = {"records": len(report_lines), "catalogs": len(cat_rows), "mismatches": mismatches,
               "seconds": round(elapsed, 1), "artifacts": str(out)}
    (out / "summary.json").write_text(json.dumps(summary, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    console.print(f"done in {elapsed:.1f} s: {summary}")
    sys.exit(EXIT_OK if mismatches == 0 else EXIT_FINDINGS)
