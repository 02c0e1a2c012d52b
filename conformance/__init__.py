"""The Shulian conformance kit: test manifests, a runner and reports.

Data, catalogs and nodes are checked against the standard; results come out as a
terminal summary, JUnit XML, EARL 1.0 (Turtle) and a signed conformance statement.
The command is ``shulian-conform`` (:mod:`conformance.cli`); in Python::

    from conformance import load_manifests, run_cases, RunOptions
    run = run_cases(load_manifests(), RunOptions(standard_dir=full_standard))
    assert run.conforms, [r for r in run.results if r.outcome.value != "passed"]

Node cases are check functions registered by case id; their metadata is in
``manifests/node.ttl``::

    from conformance import NodeContext, case

    @case("CAT-01")
    def catalog_served(ctx: NodeContext) -> None:
        ctx.check(..., "the catalog does not conform to the profile")

Put such a module in ``conformance/node_cases/``; see ``conformance/README.md``.
"""

from __future__ import annotations

from conformance._build import build_manifests, stale_manifests, write_manifests
from conformance._catalogs import check_catalog_files
from conformance._earl import earl_graph
from conformance._junit import junit_xml
from conformance._manifest import default_manifest, load_manifests, manifests_dir
from conformance._model import Case, Expectation, Outcome, Result, Run, StandardInfo, Subject
from conformance._node import (
    CaseCannotTell,
    CaseFailed,
    CaseInapplicable,
    NodeContext,
    NodeTarget,
    Session,
    run_node_cases,
)
from conformance._records import check_record_files
from conformance._registry import NodeCheck, Registry, case, default_registry, discover, isolated_registry
from conformance._runner import RunOptions, run_cases, select_cases
from conformance._statement import VerifiedStatement, canonical_bytes, sign_statement, verify_statement

__all__ = [
    # manifests
    "load_manifests",
    "default_manifest",
    "manifests_dir",
    "build_manifests",
    "stale_manifests",
    "write_manifests",
    # values
    "Case",
    "Expectation",
    "Outcome",
    "Result",
    "Run",
    "StandardInfo",
    "Subject",
    # running
    "RunOptions",
    "run_cases",
    "select_cases",
    "check_record_files",
    "check_catalog_files",
    # node cases
    "case",
    "NodeContext",
    "NodeTarget",
    "NodeCheck",
    "Session",
    "Registry",
    "default_registry",
    "discover",
    "isolated_registry",
    "run_node_cases",
    "CaseFailed",
    "CaseInapplicable",
    "CaseCannotTell",
    # reports
    "junit_xml",
    "earl_graph",
    "sign_statement",
    "verify_statement",
    "canonical_bytes",
    "VerifiedStatement",
]
