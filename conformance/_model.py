"""Values of the kit: cases, expected results, outcomes, results and a whole run."""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from node.errors import EXIT_FINDINGS, EXIT_OK, EXIT_UNAVAILABLE

__all__ = [
    "Outcome",
    "Expectation",
    "Case",
    "Subject",
    "Result",
    "StandardInfo",
    "Run",
]


class Outcome(enum.Enum):
    """The EARL 1.0 outcome values (the enum value is the term's local name in ``earl:``)."""

    PASSED = "passed"
    FAILED = "failed"
    CANT_TELL = "cantTell"
    INAPPLICABLE = "inapplicable"
    UNTESTED = "untested"

    @property
    def label(self) -> str:
        """How the terminal and JUnit name it: a case not run is never shown as passed."""
        return {
            "passed": "passed",
            "failed": "FAILED",
            "cantTell": "can't tell",
            "inapplicable": "not applicable",
            "untested": "not run",
        }[self.value]


@dataclass(frozen=True)
class Expectation:
    """The expected result of a case (``mf:result``).

    ``violations`` must all be reported; with ``exhaustive`` nothing else may be
    (a record example names one violation in its file name and may trigger
    related ones; a catalog example breaks exactly the rules it names).
    For records a violation is ``(path, constraint)`` (``("sex", "In")``); for
    catalogs ``(shape IRI, component IRI)``.
    """

    conforms: bool
    violations: frozenset[tuple[str, str]] = frozenset()
    exhaustive: bool = False


@dataclass(frozen=True)
class Case:
    """One test case: a manifest entry, or one record / catalog file being checked.

    ``id`` is the case's stable identifier (``CAT-01``, ``DAT-07``, ``people.jsonl:3``);
    ``iri`` the ``earl:test``; ``clauses`` what the case checks (shape IRIs, clause IRIs);
    ``action`` the input (a file IRI) when there is one; ``requires`` features the
    subject must have for the case to apply (``slt:Kafka``); ``divisions`` division
    codes the standard under test must list for the case to be run.
    """

    id: str
    iri: str
    name_zh: str
    name_en: str
    test_type: str
    mandatory: bool = True
    clauses: tuple[str, ...] = ()
    suite: str = ""
    action: str | None = None
    expected: Expectation | None = None
    record_type: str | None = None
    requires: tuple[str, ...] = ()
    divisions: tuple[str, ...] = ()
    comment: str | None = None

    @property
    def level(self) -> str:
        return "mandatory" if self.mandatory else "optional"


@dataclass(frozen=True)
class Subject:
    """What was tested (``earl:subject``): a data file, a catalog, a validator, a node."""

    iri: str
    title: str
    kind: str  # "data" | "catalog" | "software" | "node"
    version: str | None = None
    sha256: str | None = None


@dataclass(frozen=True)
class Result:
    """The outcome of one case; ``unavailable`` marks a node that could not be reached."""

    case: Case
    outcome: Outcome
    subject: Subject
    message: str = ""
    details: tuple[str, ...] = ()
    duration: float = 0.0
    unavailable: bool = False


@dataclass(frozen=True)
class StandardInfo:
    """Which standard the run used: its folder and the ``owl:versionInfo`` of each shapes file."""

    directory: str
    versions: dict[str, str] = field(default_factory=dict)  # shapes IRI -> owl:versionInfo

    @property
    def version(self) -> str:
        found = sorted(set(self.versions.values()))
        return " ".join(found) if found else "unknown"


@dataclass(frozen=True)
class Run:
    """A finished run: what a report or a statement is written from."""

    mode: str  # "data" | "catalog" | "manifest"
    results: tuple[Result, ...]
    started: datetime
    finished: datetime
    standard: StandardInfo
    engine: str | None = None
    tool_version: str = "unknown"

    @property
    def subjects(self) -> list[Subject]:
        seen: dict[str, Subject] = {}
        for r in self.results:
            seen.setdefault(r.subject.iri, r.subject)
        return list(seen.values())

    def counts(self, results: Sequence[Result] | None = None) -> dict[str, int]:
        """Cases per outcome (every outcome present, zero or not)."""
        c = Counter(r.outcome for r in (self.results if results is None else results))
        return {o.value: c.get(o, 0) for o in Outcome}

    @property
    def mandatory(self) -> list[Result]:
        return [r for r in self.results if r.case.mandatory]

    @property
    def mandatory_passed(self) -> int:
        return sum(1 for r in self.mandatory if r.outcome is Outcome.PASSED)

    @property
    def conforms(self) -> bool:
        """True when every mandatory case passed (a mandatory case not run does not pass)."""
        return all(r.outcome is Outcome.PASSED for r in self.mandatory)

    @property
    def exit_code(self) -> int:
        """0 every mandatory case passed; 3 a node was unavailable; 1 otherwise."""
        if any(r.unavailable for r in self.results):
            return EXIT_UNAVAILABLE
        return EXIT_OK if self.conforms else EXIT_FINDINGS
