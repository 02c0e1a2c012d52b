"""Administrative divisions (GB/T 2260): import an operator's list into the standard, read it back.

The standard does not hard-code the division list: an operator imports one (CSV files
``code,name,...`` with 2-digit province, 4-digit prefecture and 6-digit county codes, as
published by the National Bureau of Statistics) and :func:`import_divisions` writes

* ``codelists/divisions.ttl``: the SKOS scheme https://w3id.org/shulian/code/division, one
  concept per six-digit code with its notation, its name (skos:prefLabel@zh), its full name
  (skos:altLabel@zh, e.g. 北京市朝阳区) and skos:broader to its parent;
* ``shapes/divisions.ttl``: ``sls:DivisionCode``, a SHACL Core value shape accepting exactly the
  listed codes (one ``sh:pattern`` compiled from them); the record shapes use it as
  ``sh:node sls:DivisionCode`` on each division property.

Both files are generated deterministically (sorted, no timestamps) so ``git diff`` shows only
real changes. :func:`load_divisions` reads the code list back quickly (a line reader for the
generated layout, rdflib for anything else) and caches it per file version.
"""

from __future__ import annotations

import csv
import io
import logging
import os
import re
import tempfile
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from node.errors import InputError, StandardError
from node.standard._paths import resolve_standard_dir

if TYPE_CHECKING:
    from rdflib import Graph

__all__ = [
    "DIVISION_SCHEME",
    "DIVISION_BASE",
    "CODELIST_FILE",
    "SHAPE_FILE",
    "DivisionEntry",
    "read_division_csv",
    "import_divisions",
    "load_divisions",
]

log = logging.getLogger(__name__)

DIVISION_SCHEME = "https://w3id.org/shulian/code/division"
DIVISION_BASE = DIVISION_SCHEME + "/"
CODELIST_FILE = Path("codelists") / "divisions.ttl"
SHAPE_FILE = Path("shapes") / "divisions.ttl"

# Prefecture-level placeholders that are not part of a place's full name:
# 北京市 + 市辖区 + 朝阳区 -> 北京市朝阳区; 河南省 + 省直辖县级行政区划 + 济源市 -> 河南省济源市.
PLACEHOLDER_NAMES = frozenset({"市辖区", "县", "省直辖县级行政区划", "自治区直辖县级行政区划"})

_FORMAT_MARKER = "# shulian-divisions-format: 1"
_CODE_RE = re.compile(r"^[0-9]{2}(?:[0-9]{2}(?:[0-9]{2})?)?\Z")


@dataclass(frozen=True)
class DivisionEntry:
    """One division: six-digit ``code``, ``name`` (朝阳区), ``full_name`` (北京市朝阳区), ``parent`` code."""

    code: str
    name: str
    full_name: str
    parent: str | None


# ---------------------------------------------------------------------------
# Reading CSV lists
# ---------------------------------------------------------------------------


def _pad(code: str) -> str:
    return code + "0" * (6 - len(code))


def _decode(path: Path, data: bytes) -> str:
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise InputError(f"{path}: not UTF-8 or GB18030 text; save the division list as UTF-8 CSV")


def _read_one(path: Path, names: dict[str, tuple[str, str]]) -> None:
    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise InputError(f"{path}: division list not found") from exc
    except OSError as exc:
        raise InputError(f"{path}: cannot read the division list ({exc.strerror})") from exc
    reader = csv.reader(io.StringIO(_decode(path, data)))
    header = next(reader, None)
    if header is None:
        raise InputError(f"{path}: empty file; expected a header row 'code,name,...'")
    columns = [h.strip().lower() for h in header]
    if "code" not in columns or "name" not in columns:
        raise InputError(
            f"{path}: the header row must name the columns 'code' and 'name' (found: {', '.join(header)})"
        )
    i_code, i_name = columns.index("code"), columns.index("name")
    for line_no, row in enumerate(reader, start=2):
        if not row or all(not cell.strip() for cell in row):
            continue
        if len(row) <= max(i_code, i_name):
            raise InputError(f"{path}:{line_no}: expected at least {max(i_code, i_name) + 1} columns, got {len(row)}")
        raw, name = row[i_code].strip(), row[i_name].strip()
        if not _CODE_RE.match(raw):
            raise InputError(
                f"{path}:{line_no}: division code {raw!r} is not 2, 4 or 6 digits "
                "(province 11, prefecture 1101, county 110105)"
            )
        if not name:
            raise InputError(f"{path}:{line_no}: division {raw} has no name")
        code = _pad(raw)
        # a prefecture and a county may share a code (东莞市 4419 / 441900): same name, one entry
        previous = names.get(code)
        if previous is not None and previous[0] != name:
            raise InputError(
                f"{path}:{line_no}: division {code} is named {name!r} here but {previous[0]!r} in {previous[1]}"
            )
        if previous is None:
            names[code] = (name, f"{path}:{line_no}")


def _parent_of(code: str, names: Mapping[str, object]) -> str | None:
    candidates = []
    if code[4:] != "00":
        candidates.append(code[:4] + "00")
    if code[2:] != "0000":
        candidates.append(code[:2] + "0000")
    for c in candidates:
        if c != code and c in names:
            return c
    return None


def _resolve(names: Mapping[str, tuple[str, str]]) -> dict[str, DivisionEntry]:
    entries: dict[str, DivisionEntry] = {}
    for code in sorted(names):
        name = names[code][0]
        parent = _parent_of(code, names)
        if parent is None:
            full = name
        else:
            prefix = entries[parent].full_name if parent in entries else names[parent][0]
            parent_name = names[parent][0]
            if parent_name in PLACEHOLDER_NAMES and code[4:] != "00":
                # drop the placeholder from the prefix: use the grandparent's full name
                grand = _parent_of(parent, names)
                prefix = entries[grand].full_name if grand is not None else ""
            full = prefix + name
        entries[code] = DivisionEntry(code=code, name=name, full_name=full, parent=parent)
    return entries


def read_division_csv(csv_paths: Iterable[str | os.PathLike[str]]) -> dict[str, DivisionEntry]:
    """Read division CSV files (``code,name,...``) into entries keyed by six-digit code, sorted.

    Codes are padded to six digits (11 -> 110000, 1101 -> 110100); the parent is the nearest
    enclosing code present in the lists. The same code listed twice must carry the same name.
    Raises :class:`InputError` naming the file and line of anything it cannot read.
    """
    paths = [Path(p) for p in csv_paths]
    if not paths:
        raise InputError("no division list given; name one or more CSV files (code,name,...)")
    names: dict[str, tuple[str, str]] = {}
    for path in paths:
        _read_one(path, names)
    if not names:
        raise InputError(f"{', '.join(map(str, paths))}: no divisions found (only a header row?)")
    return _resolve(names)


# ---------------------------------------------------------------------------
# Writing the code list and the shape
# ---------------------------------------------------------------------------


def _lit(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _unlit(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def _source_note(paths: list[Path]) -> str:
    return ", ".join(sorted(p.name for p in paths))


def _render_codelist(entries: Mapping[str, DivisionEntry], sources: str) -> str:
    out = [
        "# 行政区划代码 / Administrative divisions (GB/T 2260)",
        "# GENERATED by `shulian standard import-divisions` (node/standard/divisions.py); do not edit.",
        f"# Source: {sources}; {len(entries)} divisions.",
        _FORMAT_MARKER,
        "",
        "@prefix code: <https://w3id.org/shulian/code/> .",
        f"@prefix division: <{DIVISION_BASE}> .",
        "@prefix dct: <http://purl.org/dc/terms/> .",
        "@prefix owl: <http://www.w3.org/2002/07/owl#> .",
        "@prefix skos: <http://www.w3.org/2004/02/skos/core#> .",
        "",
        "code:division a skos:ConceptScheme ;",
        '    skos:prefLabel "行政区划代码"@zh, "Administrative divisions"@en ;',
        '    dct:title "行政区划代码"@zh, "Administrative divisions"@en ;',
        '    skos:definition "GB/T 2260 六位行政区划代码：省（2位）、地级（2位）、县级（2位）。由运维人员导入。"@zh,',
        '        "Six-digit GB/T 2260 administrative division codes: province (2), prefecture (2), county (2). '
        'Imported by the operator."@en ;',
        '    dct:source "GB/T 2260 中华人民共和国行政区划代码" ;',
        '    owl:versionInfo "0.1.0" .',
    ]
    for e in entries.values():
        out.append("")
        out.append(f"division:{e.code} a skos:Concept ;")
        out.append(f"    skos:notation {_lit(e.code)} ;")
        out.append(f"    skos:prefLabel {_lit(e.name)}@zh ;")
        if e.full_name != e.name:
            out.append(f"    skos:altLabel {_lit(e.full_name)}@zh ;")
        if e.parent is not None:
            out.append(f"    skos:broader division:{e.parent} ;")
            out.append("    skos:inScheme code:division .")
        else:
            out.append("    skos:inScheme code:division ;")
            out.append("    skos:topConceptOf code:division .")
    return "\n".join(out) + "\n"


def _trie_regex(codes: list[str]) -> str:
    """A compact regex alternation of same-length digit codes (a trie, leaves as classes)."""

    def build(group: list[str]) -> str:
        if not group or not group[0]:
            return ""
        if len(group[0]) == 1:
            chars = sorted({c[0] for c in group})
            return chars[0] if len(chars) == 1 else "[" + "".join(chars) + "]"
        heads: dict[str, list[str]] = {}
        for c in group:
            heads.setdefault(c[0], []).append(c[1:])
        parts = [h + build(sorted(set(rest))) for h, rest in sorted(heads.items())]
        return parts[0] if len(parts) == 1 else "(" + "|".join(parts) + ")"

    return "^" + build(sorted(set(codes))) + "$"


def _render_shape(entries: Mapping[str, DivisionEntry], sources: str) -> str:
    """The division codes as a SHACL Core value shape, ``sls:DivisionCode``.

    The codes are one ``sh:pattern``: an alternation compiled from a trie of the
    codes. A 3,000-item ``sh:in`` list says the same, but pySHACL rebuilds an
    ``sh:in`` constraint for every focus node (~0.1 s per record with the full
    list); a pattern is compiled once and every SHACL engine evaluates it alike.
    """
    codes = list(entries)
    if not codes:
        raise InputError("the division list is empty: nothing to import")
    regex = _trie_regex(codes)
    out = [
        "# SHACL shape: the administrative division codes of the imported list.",
        "# GENERATED by `shulian standard import-divisions` (node/standard/divisions.py); do not edit.",
        f"# Source: {sources}; {len(codes)} codes. The record shapes use `sh:node sls:DivisionCode`.",
        "",
        "@prefix owl: <http://www.w3.org/2002/07/owl#> .",
        "@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .",
        "@prefix sh: <http://www.w3.org/ns/shacl#> .",
        "@prefix sls: <https://w3id.org/shulian/shapes#> .",
        "@prefix xsd: <http://www.w3.org/2001/XMLSchema#> .",
        "",
        "<https://w3id.org/shulian/shapes/divisions> a owl:Ontology ;",
        '    rdfs:label "数链标准：行政区划代码形状"@zh, "Shulian standard: division code shape"@en .',
        "",
        "sls:DivisionCode a sh:NodeShape ;",
        '    rdfs:label "行政区划代码"@zh, "Administrative division code"@en ;',
        f'    rdfs:comment "值必须是已导入行政区划代码表中的六位代码（共 {len(codes)} 个）。"@zh, '
        f'"The value must be one of the {len(codes)} six-digit codes of the imported division list."@en ;',
        "    sh:datatype xsd:string ;",
        f"    sh:pattern {_lit(regex)} .",
    ]
    return "\n".join(out) + "\n"


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        mode = path.stat().st_mode & 0o777  # keep the mode of the file being replaced
    except FileNotFoundError:
        mode = 0o644  # a shipped data file, readable by the node's service account
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def import_divisions(
    csv_paths: Iterable[str | os.PathLike[str]], standard_dir: str | os.PathLike[str] | None = None
) -> int:
    """Import division CSV lists into the standard at ``standard_dir`` (default: the shipped one).

    Replaces ``codelists/divisions.ttl`` and ``shapes/divisions.ttl`` (the whole list is
    replaced, not merged: import every level you need in one call) and returns the number of
    divisions written. Raises :class:`InputError` for unreadable or inconsistent lists.
    """
    paths = [Path(p) for p in csv_paths]
    root = resolve_standard_dir(standard_dir)
    if not root.is_dir():
        raise InputError(f"{root}: standard folder not found (expected the ontology folder of the standard)")
    entries = read_division_csv(paths)
    sources = _source_note(paths)
    try:
        _write_atomic(root / CODELIST_FILE, _render_codelist(entries, sources))
        _write_atomic(root / SHAPE_FILE, _render_shape(entries, sources))
    except OSError as exc:
        raise InputError(f"{root}: cannot write the division files ({exc})") from exc
    log.info("imported %d divisions from %s into %s", len(entries), sources, root)
    return len(entries)


# ---------------------------------------------------------------------------
# Reading the code list back
# ---------------------------------------------------------------------------

_START = re.compile(r"^division:([0-9]{6}) a skos:Concept ;$")
_PREF = re.compile(r'^\s+skos:prefLabel "((?:[^"\\]|\\.)*)"@zh ;$')
_ALT = re.compile(r'^\s+skos:altLabel "((?:[^"\\]|\\.)*)"@zh ;$')
_BROADER = re.compile(r"^\s+skos:broader division:([0-9]{6}) ;$")

# resolved path -> (mtime_ns, size, entries)
_cache: dict[str, tuple[int, int, dict[str, DivisionEntry]]] = {}
_cache_lock = threading.Lock()


def _parse_generated(text: str) -> dict[str, DivisionEntry]:
    entries: dict[str, DivisionEntry] = {}
    code: str | None = None
    name = full = ""
    parent: str | None = None

    def flush() -> None:
        if code is not None:
            if not name:
                raise ValueError(f"division {code} has no skos:prefLabel")
            entries[code] = DivisionEntry(code, name, full or name, parent)

    for line in text.splitlines():
        if line.startswith("division:"):
            m = _START.match(line)
            if m:
                flush()
                code, name, full, parent = m.group(1), "", "", None
            continue
        if code is None or not line.startswith("    skos:"):
            continue
        tag = line[9:13]
        if tag == "pref" and (m := _PREF.match(line)):
            name = _unlit(m.group(1)) if "\\" in m.group(1) else m.group(1)
        elif tag == "altL" and (m := _ALT.match(line)):
            full = _unlit(m.group(1)) if "\\" in m.group(1) else m.group(1)
        elif tag == "broa" and (m := _BROADER.match(line)):
            parent = m.group(1)
    flush()
    return entries


def _parse_rdf(path: Path) -> dict[str, DivisionEntry]:
    from rdflib import Graph

    g = Graph()
    try:
        g.parse(path, format="turtle")
    except Exception as exc:  # rdflib raises many parser exception types
        raise StandardError(f"{path}: not valid Turtle ({exc})") from exc
    return _entries_from_graph(g)


def _entries_from_graph(g: Graph) -> dict[str, DivisionEntry]:
    from rdflib import Literal, Namespace, URIRef

    skos = Namespace("http://www.w3.org/2004/02/skos/core#")
    entries: dict[str, DivisionEntry] = {}
    for concept in g.subjects(skos.inScheme, URIRef(DIVISION_SCHEME)):
        notation = g.value(concept, skos.notation)
        if notation is None:
            continue
        code = str(notation)
        labels = {str(lab.language): str(lab) for lab in g.objects(concept, skos.prefLabel) if isinstance(lab, Literal)}
        alts = [str(a) for a in g.objects(concept, skos.altLabel) if isinstance(a, Literal) and a.language == "zh"]
        name = labels.get("zh") or next(iter(labels.values()), code)
        broader = g.value(concept, skos.broader)
        parent = str(broader)[len(DIVISION_BASE) :] if broader is not None and str(broader).startswith(DIVISION_BASE) else None
        entries[code] = DivisionEntry(code, name, max(alts, key=len) if alts else name, parent)
    return dict(sorted(entries.items()))


def load_divisions(standard_dir: str | os.PathLike[str] | None = None) -> dict[str, DivisionEntry]:
    """The imported division list, keyed by six-digit code (sorted); empty if none was imported.

    Fast: the generated file is read with a line reader (tens of milliseconds for the full
    national list of ~3,300 codes, versus about a second with rdflib) and the result is cached until the file changes. A hand-written file without the
    generator's format marker is parsed with rdflib.
    """
    path = resolve_standard_dir(standard_dir) / CODELIST_FILE
    try:
        st = path.stat()
    except FileNotFoundError:
        return {}
    key = str(path.resolve())
    with _cache_lock:
        hit = _cache.get(key)
    cached = hit[2] if hit is not None and hit[:2] == (st.st_mtime_ns, st.st_size) else None
    if cached is None:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise StandardError(f"{path}: cannot read the division list ({exc})") from exc
        if _FORMAT_MARKER in text.splitlines()[:10]:
            try:
                cached = _parse_generated(text)
            except ValueError as exc:
                raise StandardError(f"{path}: {exc}; re-run `shulian standard import-divisions`") from exc
        else:
            cached = _parse_rdf(path)
        with _cache_lock:
            _cache[key] = (st.st_mtime_ns, st.st_size, cached)
    return dict(cached)
