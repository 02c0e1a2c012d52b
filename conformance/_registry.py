"""Node checks: Python functions registered by case id, found by discovery.

A node case's metadata (titles, clause, level) lives in the manifest
(``manifests/node.ttl``); its implementation is a function registered under
the same id. Adding a case never touches the framework: put a module in
``conformance/node_cases/`` (or expose one through the ``shulian.conformance.cases``
entry-point group) that does::

    from conformance import NodeContext, case

    @case("CAT-01")
    def catalog_served(ctx: NodeContext) -> None:
        ...  # raise CaseFailed / ctx.fail("...") when the node does not conform

A case in the manifest with no registered function is reported "not run"
(``earl:untested``), never passed.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import logging
import pkgutil
import re
from collections.abc import Awaitable, Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from node.errors import StandardError

if TYPE_CHECKING:
    from conformance._node import NodeContext

__all__ = [
    "CASE_PACKAGE",
    "ENTRY_POINT_GROUP",
    "CheckFunction",
    "NodeCheck",
    "Registry",
    "case",
    "default_registry",
    "discover",
    "isolated_registry",
]

log = logging.getLogger(__name__)

CASE_PACKAGE = "conformance.node_cases"
ENTRY_POINT_GROUP = "shulian.conformance.cases"
_ID = re.compile(r"^[A-Z][A-Z0-9]*(?:-[A-Z0-9]+)+$")

CheckFunction = Callable[["NodeContext"], "None | Awaitable[None]"]


@dataclass(frozen=True)
class NodeCheck:
    """A registered check: the case id, the function and where it was defined."""

    case_id: str
    func: CheckFunction
    where: str


class Registry:
    """Case id -> check function."""

    def __init__(self) -> None:
        self._checks: dict[str, NodeCheck] = {}

    def case(self, case_id: str) -> Callable[[CheckFunction], CheckFunction]:
        """Decorator: register the function as the implementation of ``case_id`` (``"CAT-01"``)."""
        if not _ID.match(case_id):
            raise StandardError(f"conformance case id {case_id!r} must look like CAT-01 (capitals, digits, hyphens)")

        def register(func: CheckFunction) -> CheckFunction:
            where = f"{getattr(func, '__module__', '?')}.{getattr(func, '__qualname__', repr(func))}"
            old = self._checks.get(case_id)
            if old is not None and old.where != where:
                raise StandardError(f"conformance case {case_id} is implemented twice: {old.where} and {where}")
            self._checks[case_id] = NodeCheck(case_id, func, where)
            return func

        return register

    def get(self, case_id: str) -> NodeCheck | None:
        return self._checks.get(case_id)

    def ids(self) -> list[str]:
        return sorted(self._checks)

    def __contains__(self, case_id: object) -> bool:
        return case_id in self._checks

    def __len__(self) -> int:
        return len(self._checks)


_default = Registry()


def default_registry() -> Registry:
    """The registry ``@case`` writes to and the runner reads."""
    return _default


def case(case_id: str) -> Callable[[CheckFunction], CheckFunction]:
    """Register a node check under ``case_id`` in the default registry (see the module docstring)."""
    return _default.case(case_id)


@contextmanager
def isolated_registry() -> Iterator[Registry]:
    """Swap in an empty default registry for the duration (for tests of case modules)."""
    global _default
    saved = _default
    _default = Registry()
    try:
        yield _default
    finally:
        _default = saved


def _import(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except Exception as exc:  # a broken case module must be named, whatever it raised
        raise StandardError(f"conformance case module {name} cannot be imported: {type(exc).__name__}: {exc}") from exc


def discover(packages: Iterable[str] = (CASE_PACKAGE,), *, entry_points: bool = True) -> Registry:
    """Import every module below ``packages`` and every ``shulian.conformance.cases`` entry point.

    Importing a case module registers its checks; the default registry is returned.
    """
    for package in packages:
        pkg = _import(package)
        for info in pkgutil.walk_packages(getattr(pkg, "__path__", []), prefix=f"{package}."):
            _import(info.name)
    if entry_points:
        for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            try:
                ep.load()
            except Exception as exc:  # same: name the broken plug-in
                raise StandardError(f"conformance case entry point {ep.name} ({ep.value}) cannot be loaded: {exc}") from exc
    log.debug("node checks registered: %s", ", ".join(_default.ids()) or "none")
    return _default
