"""The standard's SKOS code lists and vocabulary terms as plain Python values.

Code lists live in ``ontology/codelists/<name>.ttl`` (scheme https://w3id.org/shulian/code/<name>,
concepts .../<name>/<notation>). Records carry a concept's ``skos:notation``; adapters use
:meth:`CodeList.find` to turn a local label (男, 汉, HA, daily, 每日) into the notation.

:func:`load_vocabulary` reads ``ontology/vocab/core.ttl`` into :class:`Term` values (labels,
definitions, synonyms, range, format, code list) for tools such as mapping suggestions and
documentation. Everything is cached per file version.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TypeVar

from rdflib import RDF, RDFS, Graph, Literal, Namespace, URIRef

from node.errors import NotFound, StandardError
from node.standard._paths import resolve_standard_dir
from node.standard.divisions import DIVISION_BASE, DIVISION_SCHEME, load_divisions

__all__ = [
    "CODE_BASE",
    "SL_NS",
    "Code",
    "CodeList",
    "Term",
    "codelist_names",
    "load_codelist",
    "load_codelists",
    "load_vocabulary",
]

log = logging.getLogger(__name__)

CODE_BASE = "https://w3id.org/shulian/code/"
SL_NS = "https://w3id.org/shulian/ns#"

SKOS = Namespace("http://www.w3.org/2004/02/skos/core#")
OWL = Namespace("http://www.w3.org/2002/07/owl#")
SCHEMA = Namespace("http://schema.org/")
SL = Namespace(SL_NS)

_T = TypeVar("_T")


@dataclass(frozen=True)
class Code:
    """One concept of a code list."""

    notation: str
    iri: str
    label_zh: str
    label_en: str
    alt_labels: tuple[str, ...] = ()
    hidden_labels: tuple[str, ...] = ()
    broader: str | None = None  # notation of the broader concept in the same list
    exact_match: tuple[str, ...] = ()
    close_match: tuple[str, ...] = ()


@dataclass(frozen=True)
class CodeList:
    """A SKOS concept scheme: ``codes`` maps notation -> :class:`Code` (sorted by notation)."""

    name: str
    iri: str
    label_zh: str
    label_en: str
    codes: Mapping[str, Code] = field(default_factory=dict)

    def __contains__(self, notation: object) -> bool:
        return notation in self.codes

    def __iter__(self) -> Iterator[Code]:
        return iter(self.codes.values())

    def __len__(self) -> int:
        return len(self.codes)

    def get(self, notation: str) -> Code | None:
        return self.codes.get(notation)

    def notations(self) -> tuple[str, ...]:
        return tuple(self.codes)

    def find(self, text: str) -> Code | None:
        """The code whose notation, IRI, pref/alt/hidden label equals ``text`` (trimmed, case-insensitive).

        Returns None when nothing or more than one code matches (an ambiguous label is not guessed).
        """
        wanted = text.strip().casefold()
        if not wanted:
            return None
        if text.strip() in self.codes:
            return self.codes[text.strip()]
        found = {
            c.notation
            for c in self.codes.values()
            if wanted
            in {c.iri.casefold(), c.label_zh.casefold(), c.label_en.casefold()}
            | {a.casefold() for a in c.alt_labels}
            | {h.casefold() for h in c.hidden_labels}
        }
        return self.codes[found.pop()] if len(found) == 1 else None


@dataclass(frozen=True)
class Term:
    """A class or property of the core vocabulary (``sl:<key>``)."""

    key: str  # local name, e.g. "identityNumber"
    iri: str
    kind: str  # "Class", "DatatypeProperty", "ObjectProperty", "AnnotationProperty"
    label_zh: str
    label_en: str
    definition_zh: str
    definition_en: str
    synonyms: tuple[str, ...] = ()  # skos:altLabel values, all languages (pinyin column names included)
    range: str | None = None
    domain_includes: tuple[str, ...] = ()
    data_format: str | None = None
    code_list: str | None = None  # scheme name, e.g. "sex"


# ---------------------------------------------------------------------------
# caching per file version
# ---------------------------------------------------------------------------

_cache: dict[tuple[str, str], tuple[tuple[tuple[str, int, int], ...], object]] = {}
_lock = threading.Lock()


def _stamp(paths: list[Path]) -> tuple[tuple[str, int, int], ...]:
    out = []
    for p in paths:
        st = p.stat()
        out.append((str(p), st.st_mtime_ns, st.st_size))
    return tuple(out)


def _cached(kind: str, paths: list[Path], build: Callable[[], _T]) -> _T:
    key = (kind, "|".join(str(p.resolve()) for p in paths))
    stamp = _stamp(paths)
    with _lock:
        hit = _cache.get(key)
    if hit is not None and hit[0] == stamp:
        return hit[1]  # type: ignore[return-value]
    value = build()
    with _lock:
        _cache[key] = (stamp, value)
    return value


def _parse(path: Path) -> Graph:
    g = Graph()
    try:
        g.parse(path, format="turtle")
    except Exception as exc:  # rdflib raises many parser exception types
        raise StandardError(f"{path}: not valid Turtle ({exc})") from exc
    return g


def _lang(g: Graph, node: URIRef, pred: URIRef, lang: str) -> str:
    for lit in g.objects(node, pred):
        if isinstance(lit, Literal) and lit.language == lang:
            return str(lit)
    return ""


def _strs(g: Graph, node: URIRef, pred: URIRef) -> tuple[str, ...]:
    return tuple(sorted(str(o) for o in g.objects(node, pred)))


# ---------------------------------------------------------------------------
# code lists
# ---------------------------------------------------------------------------


def _codelist_dir(standard_dir: str | os.PathLike[str] | None) -> Path:
    return resolve_standard_dir(standard_dir) / "codelists"


def codelist_names(standard_dir: str | os.PathLike[str] | None = None) -> tuple[str, ...]:
    """Names of the code lists in the standard (file stems: "sex", "ethnicity", ..., "divisions")."""
    d = _codelist_dir(standard_dir)
    if not d.is_dir():
        raise StandardError(f"{d}: the standard has no codelists folder")
    return tuple(sorted(p.stem for p in d.glob("*.ttl")))


def _sort_key(notation: str) -> tuple[int, int | str]:
    return (0, int(notation)) if notation.isdigit() else (1, notation)


def _build_codelist(name: str, path: Path) -> CodeList:
    g = _parse(path)
    schemes = list(g.subjects(RDF.type, SKOS.ConceptScheme))
    if len(schemes) != 1 or not isinstance(schemes[0], URIRef):
        raise StandardError(f"{path}: expected exactly one skos:ConceptScheme, found {len(schemes)}")
    scheme = schemes[0]
    base = str(scheme) + "/"
    codes: dict[str, Code] = {}
    for concept in g.subjects(SKOS.inScheme, scheme):
        if not isinstance(concept, URIRef):
            continue
        notation = g.value(concept, SKOS.notation)
        if notation is None:
            raise StandardError(f"{path}: concept {concept} has no skos:notation")
        broader = g.value(concept, SKOS.broader)
        codes[str(notation)] = Code(
            notation=str(notation),
            iri=str(concept),
            label_zh=_lang(g, concept, SKOS.prefLabel, "zh"),
            label_en=_lang(g, concept, SKOS.prefLabel, "en"),
            alt_labels=_strs(g, concept, SKOS.altLabel),
            hidden_labels=_strs(g, concept, SKOS.hiddenLabel),
            broader=str(broader)[len(base) :] if broader is not None and str(broader).startswith(base) else None,
            exact_match=_strs(g, concept, SKOS.exactMatch),
            close_match=_strs(g, concept, SKOS.closeMatch),
        )
    return CodeList(
        name=name,
        iri=str(scheme),
        label_zh=_lang(g, scheme, SKOS.prefLabel, "zh"),
        label_en=_lang(g, scheme, SKOS.prefLabel, "en"),
        codes=MappingProxyType({k: codes[k] for k in sorted(codes, key=_sort_key)}),
    )


def _division_codelist(standard_dir: str | os.PathLike[str] | None) -> CodeList:
    entries = load_divisions(standard_dir)
    codes = {
        e.code: Code(
            notation=e.code,
            iri=DIVISION_BASE + e.code,
            label_zh=e.name,
            label_en="",
            alt_labels=(e.full_name,) if e.full_name != e.name else (),
            broader=e.parent,
        )
        for e in entries.values()
    }
    return CodeList("division", DIVISION_SCHEME, "行政区划代码", "Administrative divisions", MappingProxyType(codes))


def load_codelist(name: str, standard_dir: str | os.PathLike[str] | None = None) -> CodeList:
    """One code list by name: the scheme's last path segment ("sex", "update-cycle", "division").

    "division" (file ``divisions.ttl``) is read through :func:`node.standard.divisions.load_divisions`.
    Raises :class:`NotFound` for an unknown name.
    """
    if name in ("division", "divisions"):
        return _division_codelist(standard_dir)
    path = _codelist_dir(standard_dir) / f"{name}.ttl"
    if not path.is_file():
        known = ", ".join(n for n in codelist_names(standard_dir) if n != "divisions")
        raise NotFound(f"no code list named {name!r} in {path.parent} (known: {known}, division)")
    return _cached("codelist", [path], lambda: _build_codelist(name, path))


def load_codelists(standard_dir: str | os.PathLike[str] | None = None) -> dict[str, CodeList]:
    """Every code list of the standard, keyed by name (the division list under "division")."""
    out: dict[str, CodeList] = {}
    for stem in codelist_names(standard_dir):
        name = "division" if stem == "divisions" else stem
        out[name] = load_codelist(name, standard_dir)
    return out


# ---------------------------------------------------------------------------
# vocabulary
# ---------------------------------------------------------------------------

_KINDS = ("Class", "DatatypeProperty", "ObjectProperty", "AnnotationProperty")


def _alt_key(label: object) -> tuple[str, str]:
    lang = label.language if isinstance(label, Literal) else None
    return (lang or "", str(label))


def _build_vocabulary(path: Path) -> dict[str, Term]:
    g = _parse(path)
    terms: dict[str, Term] = {}
    for kind in _KINDS:
        for s in g.subjects(RDF.type, OWL[kind]):
            if not isinstance(s, URIRef) or not str(s).startswith(SL_NS):
                continue
            key = str(s)[len(SL_NS) :]
            rng = g.value(s, RDFS.range)
            code_list = g.value(s, SL.codeList)
            fmt = g.value(s, SL.dataFormat)
            terms[key] = Term(
                key=key,
                iri=str(s),
                kind=kind,
                label_zh=_lang(g, s, RDFS.label, "zh"),
                label_en=_lang(g, s, RDFS.label, "en"),
                definition_zh=_lang(g, s, SKOS.definition, "zh"),
                definition_en=_lang(g, s, SKOS.definition, "en"),
                synonyms=tuple(str(a) for a in sorted(g.objects(s, SKOS.altLabel), key=_alt_key)),
                range=str(rng) if rng is not None else None,
                domain_includes=_strs(g, s, SCHEMA.domainIncludes),
                data_format=str(fmt) if fmt is not None else None,
                code_list=str(code_list)[len(CODE_BASE) :] if code_list is not None else None,
            )
    return dict(sorted(terms.items()))


def load_vocabulary(standard_dir: str | os.PathLike[str] | None = None) -> dict[str, Term]:
    """The classes and properties of ``vocab/core.ttl`` keyed by local name ("Person", "identityNumber")."""
    path = resolve_standard_dir(standard_dir) / "vocab" / "core.ttl"
    if not path.is_file():
        raise StandardError(f"{path}: the standard's core vocabulary is missing")
    return _cached("vocab", [path], lambda: _build_vocabulary(path))
