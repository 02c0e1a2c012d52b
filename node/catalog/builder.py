"""The node's catalog: DCAT 3 plus the resource-catalog terms (政务信息资源目录), built from the
configuration and the store, and checked against the standard's catalog profile before it is served.

    from node.catalog import build_catalog, serialize_catalog
    graph = build_catalog(cfg, store, base_url="https://node.example:7443/")
    text = serialize_catalog(graph, "turtle")        # or "json-ld"

What comes from where:

- the department (``[department]``) is the publisher (提供方): ``foaf:Agent`` with its name,
  ``sl:creditCode`` (提供方代码) and ``sl:administrativeLevel``; its division is ``dct:spatial``;
- each ``[[datasets]]`` with its ``[datasets.catalog]`` table is a ``dcat:Dataset``: resource code
  (``dct:identifier``), titles, abstract, classification (``dcat:theme``, from the code's first
  digits), sharing type, conditions, basis and method, open type, update cycle, keywords;
- the record type gives the information items (信息项): one per property of its shape, named
  with the vocabulary's labels;
- the store gives the record count (``void:entities``), the latest change (``dct:modified``) and
  the date the dataset was registered (``dct:issued``; the configuration file's date when the
  store does not know the dataset yet);
- every dataset that is shared gets a ``dcat:Distribution`` served by the node's
  ``dcat:DataService`` (its gRPC endpoint: ``base_url``, else ``https://<node.listen>/``).

IRIs: the publisher is ``https://w3id.org/shulian/dept/<credit code>`` (as in responsibility
lists); everything else lives under ``base_url``, else ``https://w3id.org/shulian/node/<credit
code>/``: ``catalog``, ``service``, ``contact``, ``dataset/<id>``, ``dataset/<id>/item/<key>``,
``dataset/<id>/distribution``. The graph has no blank nodes, so equal catalogs serialise equally.
"""

from __future__ import annotations

import collections
import datetime as dt
import hashlib
import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING
from urllib.parse import quote, urlsplit

from rdflib import RDF, Graph, Literal, Namespace, URIRef
from rdflib.namespace import DCAT, DCTERMS, FOAF, XSD

from node.catalog._items import information_items
from node.catalog._stats import DatasetStats, dataset_stats
from node.errors import EXIT_FINDINGS, ConfigError, InputError, NotFound

if TYPE_CHECKING:
    from node.catalog.profile import CatalogReport
    from node.config import DatasetConfig, NodeConfig
    from node.store import Store

__all__ = [
    "CatalogProfileError",
    "JSONLD_CONTEXT",
    "build_catalog",
    "serialize_catalog",
    "catalog_base",
    "dataset_iri",
    "find_dataset",
    "sharing_label",
    "CHINA_TZ",
]

log = logging.getLogger(__name__)

SL = Namespace("https://w3id.org/shulian/ns#")
VCARD = Namespace("http://www.w3.org/2006/vcard/ns#")
VOID = Namespace("http://rdfs.org/ns/void#")
CODE = "https://w3id.org/shulian/code/"
DEPT_BASE = "https://w3id.org/shulian/dept/"
NODE_BASE = "https://w3id.org/shulian/node/"
EU = "http://publications.europa.eu/resource/authority/"
LANGUAGE_ZHO = URIRef(EU + "language/ZHO")
FILE_TYPE_JSON = URIRef(EU + "file-type/JSON")
# update cycles the code list lacks, as EU frequency IRIs (the profile accepts those)
_EU_CYCLES = {"irregular": EU + "frequency/IRREG"}
_PUBLISHER_TYPES = {
    "national": "http://purl.org/adms/publishertype/NationalAuthority",
    "provincial": "http://purl.org/adms/publishertype/RegionalAuthority",
    "city": "http://purl.org/adms/publishertype/LocalAuthority",
    "county": "http://purl.org/adms/publishertype/LocalAuthority",
}
#: How a node's datasets are held (信息资源格式分类): in the node's database, served by its interface.
RESOURCE_FORMAT = "database"
#: Calendar dates in the catalog (issued) are dates in China Standard Time.
CHINA_TZ = dt.timezone(dt.timedelta(hours=8), "CST")

_PREFIXES: dict[str, str] = {
    "dcat": str(DCAT),
    "dct": str(DCTERMS),
    "foaf": str(FOAF),
    "vcard": str(VCARD),
    "void": str(VOID),
    "xsd": str(XSD),
    "sl": str(SL),
    "code": CODE,
    "st": CODE + "sharing-type/",
    "sm": CODE + "sharing-method/",
    "uc": CODE + "update-cycle/",
    "ot": CODE + "open-type/",
    "rc": CODE + "resource-class/",
    "rf": CODE + "resource-format/",
    "al": CODE + "administrative-level/",
    "division": CODE + "division/",
    "dept": DEPT_BASE,
}
#: The JSON-LD context of the exported catalog (prefixes only: every term stays an IRI).
JSONLD_CONTEXT: Mapping[str, str] = MappingProxyType(_PREFIXES)


class CatalogProfileError(ConfigError):
    """The catalog built from the configuration breaks the catalog profile.

    The message names each dataset and rule; ``report`` holds the full
    :class:`~node.catalog.profile.CatalogReport`. Exit code 1 (a failed check); gRPC
    ``FAILED_PRECONDITION`` (the node's configuration must be fixed, not the request).
    """

    exit_code = EXIT_FINDINGS
    reason = "CATALOG_INVALID"

    def __init__(self, message: str, *, report: CatalogReport, file: str | None = None) -> None:
        super().__init__(message, file=file)
        self.report = report


# ---------------------------------------------------------------------------------------------
# IRIs and lookups
# ---------------------------------------------------------------------------------------------


def catalog_base(cfg: NodeConfig, base_url: str | None = None) -> str:
    """The IRI every catalog node lives under (ends with "/")."""
    if base_url is None:
        return f"{NODE_BASE}{cfg.department.code}/"
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InputError(f"base URL {base_url!r} must be an absolute http(s) URL, e.g. https://node.example:7443/")
    return base_url if base_url.endswith("/") else base_url + "/"


def dataset_iri(cfg: NodeConfig, dataset_id: str, base_url: str | None = None) -> str:
    return f"{catalog_base(cfg, base_url)}dataset/{quote(dataset_id, safe='-._~')}"


def find_dataset(cfg: NodeConfig, name: str) -> DatasetConfig:
    """A configured dataset by its id, else by its resource code. :class:`NotFound` names the known ids."""
    for ds in cfg.datasets:
        if ds.id == name:
            return ds
    for ds in cfg.datasets:
        if ds.catalog.resource_code == name:
            return ds
    known = ", ".join(ds.id for ds in cfg.datasets) or "none"
    raise NotFound(f"dataset {name!r} is not configured in {cfg.path} (configured: {known})")


def sharing_label(token: str) -> str:
    """The Chinese name of a configured sharing type token (unconditional -> 无条件共享)."""
    from node.config import SHARING_TYPES

    return SHARING_TYPES[token][0]


@dataclass(frozen=True)
class _Codes:
    """Code-list lookups for one standard directory."""

    standard_dir: str | Path | None

    def iri(self, scheme: str, text: str) -> str | None:
        from node.standard.codelists import load_codelist

        code = load_codelist(scheme, self.standard_dir).find(text)
        return code.iri if code is not None else None

    def themes(self, resource_code: str) -> list[str]:
        """The resource-class concepts a code starts with: 类 (1 digit), and 类+项 (3) when listed."""
        from node.standard.codelists import load_codelist

        classes = load_codelist("resource-class", self.standard_dir)
        return [classes.codes[n].iri for n in (resource_code[:1], resource_code[:3]) if n in classes]


# ---------------------------------------------------------------------------------------------
# building
# ---------------------------------------------------------------------------------------------


def _literal_lang(text: str) -> str:
    return "zh" if any("\u3400" <= ch <= "\u9fff" for ch in text) else "en"


def _config_date(cfg: NodeConfig) -> dt.date:
    """The date the configuration file was last written (the fallback publication date)."""
    try:
        mtime = cfg.path.stat().st_mtime
    except OSError:
        return dt.datetime.now(CHINA_TZ).date()
    return dt.datetime.fromtimestamp(mtime, CHINA_TZ).date()


def _fail(cfg: NodeConfig, index: int, key: str, message: str) -> ConfigError:
    return ConfigError(message, file=str(cfg.path), key=f"datasets[{index}].catalog.{key}")


def _add_dataset(g: Graph, cfg: NodeConfig, index: int, ds: DatasetConfig, stats: DatasetStats, issued: dt.date,
                 *, base: str, publisher: URIRef, contact: URIRef, service: URIRef, endpoint: URIRef,
                 codes: _Codes, standard_dir: str | Path | None) -> URIRef:
    meta = ds.catalog
    node = URIRef(f"{base}dataset/{quote(ds.id, safe='-._~')}")
    add = g.add
    add((node, RDF.type, DCAT.Dataset))
    add((node, DCTERMS.identifier, Literal(meta.resource_code)))
    add((node, DCTERMS.title, Literal(meta.title_zh, lang="zh")))
    if meta.title_en.strip():
        add((node, DCTERMS.title, Literal(meta.title_en, lang="en")))
    add((node, DCTERMS.description, Literal(meta.description, lang=_literal_lang(meta.description))))
    if meta.description_en.strip():
        add((node, DCTERMS.description, Literal(meta.description_en, lang="en")))
    themes = codes.themes(meta.resource_code)
    if not themes:
        raise _fail(cfg, index, "resource_code",
                    f"resource code {meta.resource_code!r} starts with no class of the resource-class code list "
                    "(1 基础, 2 主题, 3 部门)")
    for theme in themes:
        add((node, DCAT.theme, URIRef(theme)))
    for keyword in meta.keywords:
        if keyword.strip():
            add((node, DCAT.keyword, Literal(keyword.strip(), lang=_literal_lang(keyword))))
    add((node, DCTERMS.publisher, publisher))
    add((node, DCAT.contactPoint, contact))
    add((node, DCTERMS.spatial, URIRef(f"{CODE}division/{cfg.department.division}")))
    add((node, DCTERMS.language, LANGUAGE_ZHO))
    add((node, DCTERMS.issued, Literal(issued, datatype=XSD.date)))
    if stats.modified is not None:
        add((node, DCTERMS.modified, Literal(stats.modified, datatype=XSD.dateTime)))
    add((node, VOID.entities, Literal(stats.records, datatype=XSD.integer)))

    cycle = codes.iri("update-cycle", meta.update_cycle) or _EU_CYCLES.get(meta.update_cycle)
    if cycle is None:
        raise _fail(cfg, index, "update_cycle", f"update cycle {meta.update_cycle!r} has no code in the standard")
    add((node, DCTERMS.accrualPeriodicity, URIRef(cycle)))
    add((node, SL.recordType, SL[ds.record_type]))
    add((node, SL.resourceFormat, URIRef(f"{CODE}resource-format/{RESOURCE_FORMAT}")))
    sharing = codes.iri("sharing-type", sharing_label(meta.sharing_type))
    if sharing is None:
        raise _fail(cfg, index, "sharing_type", f"sharing type {meta.sharing_type!r} has no code in the standard")
    add((node, SL.sharingType, URIRef(sharing)))
    if meta.sharing_conditions.strip():
        add((node, SL.sharingCondition, Literal(meta.sharing_conditions.strip())))
    if meta.sharing_basis.strip():
        add((node, SL.legalBasis, Literal(meta.sharing_basis.strip())))
    shared = meta.sharing_type != "not_shared"
    if shared:
        method = codes.iri("sharing-method", meta.sharing_method)
        if method is None:
            raise _fail(cfg, index, "sharing_method",
                        f"sharing method {meta.sharing_method!r} is not in the sharing-method code list "
                        "(系统对接, 共享平台, 邮件, 拷盘, 介质交换, 其他)")
        add((node, SL.sharingMethod, URIRef(method)))
    add((node, SL.openType, URIRef(f"{CODE}open-type/{'1' if meta.open_to_public else '3'}")))

    for item in information_items(ds.record_type, standard_dir):
        inode = URIRef(f"{node}/item/{item.key}")
        add((node, SL.informationItem, inode))
        add((inode, RDF.type, SL.InformationItem))
        add((inode, DCTERMS.title, Literal(item.title_zh, lang="zh")))
        add((inode, DCTERMS.title, Literal(item.title_en, lang="en")))
        add((inode, SL.itemProperty, URIRef(item.property_iri)))
        add((inode, SL.itemDataType, URIRef(item.datatype)))
        if item.length is not None:
            add((inode, SL.itemLength, Literal(item.length, datatype=XSD.integer)))

    if shared:
        dist = URIRef(f"{node}/distribution")
        add((node, DCAT.distribution, dist))
        add((dist, RDF.type, DCAT.Distribution))
        add((dist, DCTERMS.title, Literal("数链节点接口", lang="zh")))
        add((dist, DCTERMS.title, Literal("Shulian node interface", lang="en")))
        add((dist, DCAT.accessURL, endpoint))
        add((dist, DCAT.accessService, service))
        add((dist, DCTERMS.format, FILE_TYPE_JSON))
        add((service, DCAT.servesDataset, node))
    return node


def _endpoint(cfg: NodeConfig, base_url: str | None) -> URIRef:
    if base_url is not None:
        return URIRef(catalog_base(cfg, base_url))
    return URIRef(f"https://{cfg.listen}/")


def _graph(cfg: NodeConfig, store: Store | None, base_url: str | None,
           standard_dir: str | Path | None) -> tuple[Graph, dict[str, str]]:
    base = catalog_base(cfg, base_url)
    codes = _Codes(standard_dir)
    dept = cfg.department
    g = Graph()
    for prefix, ns in _PREFIXES.items():
        g.bind(prefix, ns, override=True)
    catalog = URIRef(base + "catalog")
    publisher = URIRef(DEPT_BASE + dept.code)
    contact = URIRef(base + "contact")
    service = URIRef(base + "service")
    endpoint = _endpoint(cfg, base_url)

    g.add((catalog, RDF.type, DCAT.Catalog))
    g.add((catalog, DCTERMS.title, Literal(f"{dept.name}政务信息资源目录", lang="zh")))
    g.add((catalog, DCTERMS.title, Literal(f"Government information resource catalog of department {dept.code}",
                                           lang="en")))
    g.add((catalog, DCTERMS.description, Literal(f"{dept.name}通过数链节点提供共享的政务信息资源。", lang="zh")))
    g.add((catalog, DCTERMS.description, Literal(
        f"Government information resources that department {dept.code} shares through its Shulian node.",
        lang="en")))
    g.add((catalog, DCTERMS.publisher, publisher))
    g.add((catalog, DCTERMS.language, LANGUAGE_ZHO))
    g.add((catalog, DCTERMS.spatial, URIRef(f"{CODE}division/{dept.division}")))
    g.add((catalog, DCAT.themeTaxonomy, URIRef(CODE + "resource-class")))

    g.add((publisher, RDF.type, FOAF.Agent))
    g.add((publisher, RDF.type, FOAF.Organization))
    g.add((publisher, FOAF.name, Literal(dept.name, lang="zh")))
    g.add((publisher, SL.creditCode, Literal(dept.code)))
    level = codes.iri("administrative-level", dept.level)
    if level is not None:
        g.add((publisher, SL.administrativeLevel, URIRef(level)))
    g.add((publisher, DCTERMS.type, URIRef(_PUBLISHER_TYPES[dept.level])))

    g.add((contact, RDF.type, VCARD.Organization))
    g.add((contact, VCARD.fn, Literal(dept.name, lang="zh")))

    g.add((service, RDF.type, DCAT.DataService))
    g.add((service, DCTERMS.title, Literal(f"{dept.name}数链交换节点", lang="zh")))
    g.add((service, DCTERMS.title, Literal("Shulian exchange node", lang="en")))
    g.add((service, DCAT.endpointURL, endpoint))
    g.add((service, DCTERMS.publisher, publisher))
    g.add((catalog, DCAT.service, service))

    owners: dict[str, str] = {}  # dataset IRI -> dataset id (to name datasets in errors)
    issued: list[dt.date] = []
    modified: list[dt.datetime] = []
    for index, ds in enumerate(cfg.datasets):
        stats = dataset_stats(store, ds.id)
        # published when the store registered it, else when the configuration listed it
        day = stats.registered.astimezone(CHINA_TZ).date() if stats.registered else _config_date(cfg)
        node = _add_dataset(g, cfg, index, ds, stats, day, base=base, publisher=publisher, contact=contact,
                            service=service, endpoint=endpoint, codes=codes, standard_dir=standard_dir)
        g.add((catalog, DCAT.dataset, node))
        owners[str(node)] = ds.id
        issued.append(day)
        if stats.modified is not None:
            modified.append(stats.modified)
    g.add((catalog, DCTERMS.issued, Literal(min(issued) if issued else _config_date(cfg), datatype=XSD.date)))
    if modified:
        g.add((catalog, DCTERMS.modified, Literal(max(modified), datatype=XSD.dateTime)))
    return g, owners


# ---------------------------------------------------------------------------------------------
# checking
# ---------------------------------------------------------------------------------------------

_CONFORMING: collections.OrderedDict[tuple[str, str], None] = collections.OrderedDict()
_CONFORMING_MAX = 32
_lock = threading.Lock()


def _digest(g: Graph) -> str:
    """A digest of the graph's content (it has no blank nodes, so sorted N-Triples are canonical)."""
    lines = sorted(g.serialize(format="nt", encoding="utf-8").splitlines())
    return hashlib.sha256(b"\n".join(lines)).hexdigest()


def _where(focus: str, owners: Mapping[str, str]) -> str:
    subject = focus.split(" ", 1)[0].strip("<>")
    for iri, ds_id in owners.items():
        if subject == iri or subject.startswith(iri + "/"):
            return f"dataset {ds_id!r}"
    if subject.startswith(DEPT_BASE):
        return "the publisher ([department])"
    return f"<{subject}>"


def _check(g: Graph, cfg: NodeConfig, owners: Mapping[str, str],
           standard_dir: str | Path | None) -> None:
    from node.catalog.profile import validate_catalog

    key = (_digest(g), str(Path(standard_dir).resolve()) if standard_dir is not None else "")
    with _lock:
        if key in _CONFORMING:
            _CONFORMING.move_to_end(key)
            return
    report = validate_catalog(g, standard_dir=standard_dir)
    if not report.conforms:
        found = "; ".join(f"{_where(v.focus, owners)}: {v.shape or v.component}"
                          f"{f' ({v.path})' if v.path else ''}: {v.message_en} / {v.message_zh}"
                          for v in report.violations)
        raise CatalogProfileError(
            f"the catalog built from this configuration breaks the catalog profile; fix the [[datasets]] "
            f"metadata: {found}", report=report, file=str(cfg.path))
    with _lock:
        _CONFORMING[key] = None
        while len(_CONFORMING) > _CONFORMING_MAX:
            _CONFORMING.popitem(last=False)


def build_catalog(cfg: NodeConfig, store: Store | None, *, base_url: str | None = None,
                  standard_dir: str | Path | None = None) -> Graph:
    """The node's catalog as an rdflib Graph, checked against the catalog profile.

    ``store`` may be None (a node whose store does not exist yet: no counts, no dates from it).
    Raises :class:`CatalogProfileError` (naming each dataset and rule) when the catalog does not
    pass the profile, :class:`ConfigError` for metadata no code list knows, and
    :class:`InputError` for a bad ``base_url``. The profile check runs once per distinct
    catalog content (cached), so serving an unchanged catalog again costs only the build.
    """
    if standard_dir is None:
        standard_dir = cfg.standard
    g, owners = _graph(cfg, store, base_url, standard_dir)
    _check(g, cfg, owners, standard_dir)
    log.debug("catalog of %s: %d datasets, %d triples", cfg.department.code, len(cfg.datasets), len(g))
    return g


def serialize_catalog(graph: Graph, format: str = "turtle") -> str:
    """The catalog as text: ``turtle`` (``ttl``) or ``json-ld`` (``jsonld``, compacted with
    :data:`JSONLD_CONTEXT`). Both parse back into the same graph with rdflib."""
    fmt = format.strip().lower()
    if fmt in ("turtle", "ttl"):
        return graph.serialize(format="turtle")
    if fmt in ("json-ld", "jsonld"):
        return graph.serialize(format="json-ld", context=dict(JSONLD_CONTEXT), indent=2, sort_keys=True)
    raise InputError(f"unknown catalog format {format!r}; use turtle or json-ld")
