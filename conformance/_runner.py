"""Running manifest cases: each test type has an executor; results come back in manifest order.

=========================  ==============================================
test type                  executor
=========================  ==============================================
``slt:RecordExampleTest``  validate the example record, compare ``mf:result``
``slt:CatalogExampleTest`` check the example catalog against the profile
``slt:NodeTest``           the check registered under the case id (``@case``)
anything else              reported not run (``earl:untested``)
=========================  ==============================================
"""

from __future__ import annotations

import importlib.metadata
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from conformance._catalogs import catalog_version, run_catalog_examples
from conformance._model import Case, Outcome, Result, Run, StandardInfo, Subject
from conformance._node import NodeTarget, run_node_cases
from conformance._records import run_record_examples
from conformance._registry import Registry, discover
from conformance._vocab import CATALOG_SHAPES_IRI, RECORD_SHAPES_IRI, SLT
from node.errors import InputError

__all__ = ["RunOptions", "run_cases", "select_cases", "standard_info", "tool_version", "finish_run", "now"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunOptions:
    """How to run: the validation engine, the standard, and the node under test (if any).

    ``registry`` defaults to the discovered node checks (:func:`conformance.discover`).
    """

    engine: str = "shacl"
    standard_dir: Path | None = None
    target: NodeTarget | None = None
    registry: Registry | None = None
    case_timeout: float = 60.0


def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def tool_version() -> str:
    try:
        return importlib.metadata.version("shulian")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def standard_info(standard_dir: Path | None, *, records: bool = True, catalog: bool = True) -> StandardInfo:
    """The standard's folder and the ``owl:versionInfo`` of its record and catalog shapes."""
    from node.standard._paths import resolve_standard_dir
    from node.standard.model import load_standard

    versions: dict[str, str] = {}
    if records:
        versions[RECORD_SHAPES_IRI] = load_standard(standard_dir).version
    if catalog:
        v = catalog_version(standard_dir)
        if v is not None:
            versions[CATALOG_SHAPES_IRI] = v
    return StandardInfo(str(resolve_standard_dir(standard_dir).resolve()), versions)


def finish_run(mode: str, results: Sequence[Result], started: datetime, standard: StandardInfo,
               engine: str | None) -> Run:
    return Run(mode, tuple(results), started, now(), standard, engine, tool_version())


def select_cases(cases: Sequence[Case], only: Sequence[str]) -> list[Case]:
    """The cases whose id is in ``only`` or starts with one of its entries followed by ``-`` (``DAT``, ``ACC``)."""
    if not only:
        return list(cases)
    picked = [c for c in cases if any(c.id == o or c.id.startswith(o.rstrip("-") + "-") for o in only)]
    unknown = [o for o in only if not any(c.id == o or c.id.startswith(o.rstrip("-") + "-") for c in cases)]
    if unknown:
        raise InputError(f"--only {', '.join(unknown)}: no such case in the manifests (see `shulian-conform manifest list`)")
    return picked


def run_cases(cases: Sequence[Case], options: RunOptions | None = None) -> Run:
    """Run manifest cases and return the :class:`Run` (results in the order of ``cases``)."""
    opts = options or RunOptions()
    started = now()
    by_type: dict[str, list[int]] = {}
    for i, c in enumerate(cases):
        by_type.setdefault(c.test_type, []).append(i)
    results: dict[int, Result] = {}
    executors: dict[str, Callable[[list[Case]], list[Result]]] = {
        str(SLT.RecordExampleTest): lambda cs: run_record_examples(cs, engine=opts.engine,
                                                                   standard_dir=opts.standard_dir),
        str(SLT.CatalogExampleTest): lambda cs: run_catalog_examples(cs, standard_dir=opts.standard_dir),
        str(SLT.NodeTest): lambda cs: run_node_cases(
            cs, opts.registry if opts.registry is not None else discover(), opts.target,
            standard_dir=opts.standard_dir, engine=opts.engine, case_timeout=opts.case_timeout),
    }
    for test_type, idx in by_type.items():
        selected = [cases[i] for i in idx]
        run = executors.get(test_type)
        if run is None:
            unknown = Subject("urn:shulian:conformance:unknown", "(unknown test type)", "software")
            found = [Result(c, Outcome.UNTESTED, unknown, f"not run: this kit does not implement test type {test_type}")
                     for c in selected]
        else:
            found = run(selected)
        results.update(zip(idx, found, strict=True))
    types = set(by_type)
    info = standard_info(opts.standard_dir, records=str(SLT.RecordExampleTest) in types or str(SLT.NodeTest) in types,
                         catalog=str(SLT.CatalogExampleTest) in types or str(SLT.NodeTest) in types)
    return finish_run("manifest", [results[i] for i in range(len(cases))], started, info, opts.engine)
