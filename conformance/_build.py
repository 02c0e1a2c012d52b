"""``shulian-conform manifest build``: the data manifests, generated from the standard's examples.

One case per example file:

* ``records.ttl`` — ``ontology/examples/<Type>/{valid,invalid}/*.json``: a valid example
  must be accepted; an invalid one ``<path>__<Constraint>.json`` rejected with that
  (path, constraint) among its violations;
* ``catalogs.ttl`` — ``ontology/examples/catalog/{valid,invalid}/*.ttl``: a valid
  catalog conforms; an invalid one breaks exactly the rules its ``# breaks:`` lines name.

A case keeps its id across rebuilds (ids are read back from the manifest being
replaced); a new example gets the next free number. The output is deterministic,
so ``--check`` (and the tests) can prove the shipped manifests are current.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from rdflib import Graph, Literal, URIRef

from conformance._manifest import file_of, manifests_dir
from conformance._shacl_report import type_shape
from conformance._vocab import CATALOG_SHAPES_IRI, DCT, MF, SH, SLS
from node.errors import InputError, StandardError
from node.standard.model import Standard, load_standard

__all__ = ["RECORDS_MANIFEST", "CATALOGS_MANIFEST", "build_manifests", "stale_manifests", "write_manifests"]

log = logging.getLogger(__name__)

RECORDS_MANIFEST = "records.ttl"
CATALOGS_MANIFEST = "catalogs.ttl"
RECORD_PREFIX = "DAT"
CATALOG_PREFIX = "CTL"

_BREAKS = re.compile(r"^# breaks: (sls:\S+) \((sh:\w+)\)\s*$")
_WHAT = re.compile(r"^# what: (.+?)\s*$")
_SIMPLE_LOCAL = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")
_DIVISION_SHAPE = str(SLS.DivisionCode)

_PREFIXES = """@prefix dct: <http://purl.org/dc/terms/> .
@prefix mf: <http://www.w3.org/2001/sw/DataAccess/tests/test-manifest#> .
@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
@prefix sh: <http://www.w3.org/ns/shacl#> .
@prefix sls: <https://w3id.org/shulian/shapes#> .
@prefix slt: <https://w3id.org/shulian/conformance#> .
@prefix t: <https://w3id.org/shulian/conformance/test#> .
"""


@dataclass(frozen=True)
class _Entry:
    key: str  # the example's path below the examples folder (posix): what keeps its id
    test_type: str
    name_zh: str
    name_en: str
    sources: tuple[str, ...]
    action: Path
    conforms: bool
    violations: tuple[tuple[str, str], ...] = ()
    record_type: str | None = None
    divisions: tuple[str, ...] = ()
    exhaustive: bool = False


def _lit(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r") + '"'


def _iri(iri: str) -> str:
    for prefix, ns in (("sls", str(SLS)), ("sh", str(SH))):
        if iri.startswith(ns) and _SIMPLE_LOCAL.match(iri[len(ns):]):
            return f"{prefix}:{iri[len(ns):]}"
    return f"<{iri}>"


def _rel(target: Path, base: Path) -> str:
    return quote(Path(os.path.relpath(target.resolve(), base.resolve())).as_posix(), safe="/._-~")


# ---------------------------------------------------------------------------
# records
# ---------------------------------------------------------------------------


def _record_entries(std: Standard, examples: Path) -> list[_Entry]:
    out: list[_Entry] = []
    for name, rt in std.types.items():
        label = rt.label
        division_keys = {r.path for r in rt.rules if r.kind == "Node" and r.path and r.param.iri == _DIVISION_SHAPE}
        for kind in ("valid", "invalid"):
            for path in sorted((examples / name / kind).glob("*.json")):
                key = path.relative_to(examples).as_posix()
                if kind == "valid":
                    try:
                        record = json.loads(path.read_text(encoding="utf-8"))
                    except ValueError as exc:
                        raise StandardError(f"{path}: the example is not JSON ({exc})") from exc
                    codes = sorted({str(record[k]) for k in division_keys if isinstance(record, dict) and k in record})
                    out.append(_Entry(
                        key, "RecordExampleTest",
                        f"{label.zh}：有效示例 {path.stem} 被接受",
                        f"{label.en}: valid example {path.stem} is accepted",
                        (type_shape(std, name),), path, True, record_type=name, divisions=tuple(codes)))
                    continue
                field, sep, constraint = path.stem.partition("__")
                rule = next((r for r in rt.rules if r.kind == constraint
                             and (r.report_path == field or r.kind == "Closed")), None)
                if not sep or rule is None:
                    raise StandardError(
                        f"{path}: an invalid example is named <path>__<Constraint>.json after a rule of {name}; "
                        f"{path.stem!r} names none")
                out.append(_Entry(
                    key, "RecordExampleTest",
                    f"{label.zh}：无效示例 {path.stem} 被拒绝：{field} 违反 {constraint}（{rule.message.zh}）",
                    f"{label.en}: invalid example {path.stem} is rejected: {field} breaks {constraint} "
                    f"({rule.message.en})",
                    (rule.shape,), path, False, ((field, constraint),), record_type=name))
    return out


# ---------------------------------------------------------------------------
# catalogs
# ---------------------------------------------------------------------------


def _message(shapes: Graph, shape: URIRef, lang: str) -> str | None:
    for holder in (shape, shapes.value(shape, SH.sparql)):
        if holder is None:
            continue
        for m in shapes.objects(holder, SH.message):
            if isinstance(m, Literal) and m.language == lang:
                return str(m)
    return None


def _catalog_entries(shapes: Graph, examples: Path) -> list[_Entry]:
    folder = examples / "catalog"
    out: list[_Entry] = []
    for path in sorted((folder / "valid").glob("*.ttl")):
        out.append(_Entry(
            path.relative_to(examples).as_posix(), "CatalogExampleTest",
            f"目录：有效示例 {path.stem} 符合目录规范",
            f"Catalog: valid example {path.stem} conforms to the catalog profile",
            (CATALOG_SHAPES_IRI,), path, True))
    for path in sorted((folder / "invalid").glob("*.ttl")):
        breaks: list[tuple[str, str]] = []
        what = None
        for line in path.read_text(encoding="utf-8").splitlines():
            if m := _BREAKS.match(line):
                breaks.append((str(SLS) + m.group(1)[4:], str(SH) + m.group(2)[3:]))
            elif m := _WHAT.match(line):
                what = m.group(1).rstrip(".")
        if not breaks:
            raise StandardError(f"{path}: an invalid catalog example needs '# breaks: sls:Shape (sh:Component)' lines")
        zh: list[str] = []
        for shape, _component in breaks:
            if (URIRef(shape), None, None) not in shapes:
                raise StandardError(f"{path}: breaks {shape}, which is not in the catalog shapes")
            zh.append(_message(shapes, URIRef(shape), "zh") or shape)
        en = what or "; ".join(_message(shapes, URIRef(s), "en") or s for s, _c in breaks)
        out.append(_Entry(
            path.relative_to(examples).as_posix(), "CatalogExampleTest",
            f"目录：无效示例 {path.stem} 被拒绝：{'；'.join(dict.fromkeys(zh))}",
            f"Catalog: invalid example {path.stem} is rejected: {en}",
            tuple(sorted({s for s, _c in breaks})), path, False, tuple(sorted(set(breaks))), exhaustive=True))
    return out


# ---------------------------------------------------------------------------
# ids and text
# ---------------------------------------------------------------------------


def _existing_ids(manifest: Path, examples: Path) -> dict[str, str]:
    """example key -> case id, from the manifest about to be replaced."""
    if not manifest.is_file():
        return {}
    g = Graph()
    try:
        g.parse(manifest, format="turtle")
    except Exception as exc:  # rdflib raises many parser exception types
        raise InputError(f"{manifest}: cannot read the manifest to keep its ids ({exc}); fix or delete it") from exc
    out: dict[str, str] = {}
    ex = examples.resolve()
    for entry, cid in g.subject_objects(DCT.identifier):
        action = g.value(entry, MF.action)
        path = file_of(str(action)) if action is not None else None
        if path is None:
            continue
        try:
            out[path.resolve().relative_to(ex).as_posix()] = str(cid)
        except ValueError:
            continue
    return out


def _assign(entries: list[_Entry], old: dict[str, str], prefix: str) -> list[tuple[str, _Entry]]:
    pattern = re.compile(rf"^{prefix}-(\d+)$")
    used = {int(m.group(1)) for cid in old.values() if (m := pattern.match(cid))}
    nxt = max(used, default=0) + 1
    out: list[tuple[str, _Entry]] = []
    for e in entries:
        cid = old.get(e.key)
        if cid is None or not pattern.match(cid):
            cid = f"{prefix}-{nxt:02d}"
            nxt += 1
        out.append((cid, e))
    return out


def _render(title_zh: str, title_en: str, comment: str, source: str, cases: Iterable[tuple[str, _Entry]],
            out_dir: Path) -> str:
    cases = list(cases)
    lines = [
        f"# GENERATED by `shulian-conform manifest build` from {source}; do not edit.",
        "# Add or change an example and rebuild; a case keeps its id across rebuilds.",
        "",
        _PREFIXES,
        "<> a mf:Manifest ;",
        f"    rdfs:label {_lit(title_zh)}@zh, {_lit(title_en)}@en ;",
        f"    rdfs:comment {_lit(comment)}@en ;",
        "    mf:entries (",
        *[f"        t:{cid}" for cid, _e in cases],
        "    ) .",
    ]
    for cid, e in cases:
        lines += [
            "",
            f"t:{cid} a slt:{e.test_type} ;",
            f"    dct:identifier {_lit(cid)} ;",
            f"    mf:name {_lit(e.name_zh)}@zh, {_lit(e.name_en)}@en ;",
            f"    dct:source {', '.join(_iri(s) for s in e.sources)} ;",
            "    slt:level slt:Mandatory ;",
        ]
        if e.record_type:
            lines.append(f"    slt:recordType {_lit(e.record_type)} ;")
        if e.divisions:
            lines.append(f"    slt:requiresDivision {', '.join(_lit(d) for d in e.divisions)} ;")
        lines.append(f"    mf:action <{_rel(e.action, out_dir)}> ;")
        result = [f"slt:conforms {'true' if e.conforms else 'false'}"]
        if e.exhaustive:
            result.append("slt:exhaustive true")
        for a, b in e.violations:
            if e.test_type == "RecordExampleTest":
                result.append(f"slt:violation [ slt:path {_lit(a)} ; slt:constraint {_lit(b)} ]")
            else:
                result.append(f"slt:violation [ slt:shape {_iri(a)} ; slt:component {_iri(b)} ]")
        if len(result) == 1:
            lines.append(f"    mf:result [ {result[0]} ] .")
        else:
            lines.append("    mf:result [")
            lines += [f"        {r} ;" for r in result[:-1]]
            lines += [f"        {result[-1]}", "    ] ."]
    return "\n".join(lines) + "\n"


def build_manifests(examples_dir: Path | None = None, out_dir: Path | None = None,
                    standard_dir: Path | None = None) -> dict[str, str]:
    """The text of each generated manifest (file name -> Turtle) for ``out_dir`` (default: the kit's)."""
    from node.catalog.profile import catalog_shapes
    from node.standard._paths import ontology_dir

    examples = (examples_dir or ontology_dir() / "examples").resolve()
    out = (out_dir or manifests_dir()).resolve()
    if not examples.is_dir():
        raise InputError(f"{examples}: no examples folder")
    std = load_standard(standard_dir)
    records = _assign(_record_entries(std, examples), _existing_ids(out / RECORDS_MANIFEST, examples), RECORD_PREFIX)
    catalogs = _assign(_catalog_entries(catalog_shapes(standard_dir), examples),
                       _existing_ids(out / CATALOGS_MANIFEST, examples), CATALOG_PREFIX)
    return {
        RECORDS_MANIFEST: _render(
            "数据符合性：记录示例", "Data conformance: record examples",
            "Every record example beside the standard: valid ones are accepted; each invalid one is rejected "
            "with the (path, constraint) its file name gives among its violations.",
            "ontology/examples/<Type>/{valid,invalid}/*.json", records, out),
        CATALOGS_MANIFEST: _render(
            "数据符合性：目录示例", "Data conformance: catalog examples",
            "Every catalog example beside the standard: valid ones conform to the catalog profile; each invalid "
            "one breaks exactly the rules its '# breaks:' lines name.",
            "ontology/examples/catalog/{valid,invalid}/*.ttl", catalogs, out),
    }


def stale_manifests(texts: dict[str, str], out_dir: Path | None = None) -> list[str]:
    """The generated manifests whose file in ``out_dir`` differs from ``texts`` (or is missing)."""
    out = out_dir or manifests_dir()
    stale = []
    for name, text in texts.items():
        path = out / name
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            stale.append(name)
    return stale


def write_manifests(texts: dict[str, str], out_dir: Path | None = None) -> list[Path]:
    """Write the manifests that changed; return their paths."""
    out = out_dir or manifests_dir()
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name in stale_manifests(texts, out):
        path = out / name
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(texts[name], encoding="utf-8")
        os.replace(tmp, path)
        written.append(path)
    return written
