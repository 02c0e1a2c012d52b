"""Running node cases: the target, the context a check receives, and the executor.

A check is a function ``check(ctx: NodeContext) -> None`` (or ``async def``).
It passes by returning; it fails by raising :class:`CaseFailed` (``ctx.fail``,
``ctx.check``) or ``AssertionError``. ``ctx.inapplicable(...)`` says the case
does not apply to this node; ``ctx.cant_tell(...)`` that it could not decide.
Raising :class:`node.errors.Unavailable` (or a gRPC error with status
UNAVAILABLE) marks the node unavailable, and the run exits 3.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import socket
import time
import traceback
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn, TypeVar

from conformance._model import Case, Outcome, Result, Subject
from conformance._registry import Registry
from conformance._vocab import SLT
from node.errors import InputError, ShulianError, Unavailable

__all__ = [
    "NodeTarget",
    "NodeContext",
    "Session",
    "CaseFailed",
    "CaseInapplicable",
    "CaseCannotTell",
    "run_node_cases",
    "NO_NODE",
]

log = logging.getLogger(__name__)
T = TypeVar("T")

NO_NODE = Subject("urn:shulian:conformance:no-node", "(no node given: --target HOST:PORT)", "node")


class CaseFailed(AssertionError):
    """The node does not do what the case requires."""


class CaseInapplicable(Exception):
    """The case does not apply to this node (e.g. a Kafka case on a node without Kafka)."""


class CaseCannotTell(Exception):
    """The check could not decide (e.g. a parameter it needs was not given)."""


@dataclass(frozen=True)
class NodeTarget:
    """The node under test and how to reach it.

    ``params`` carries what particular checks need to know about the node
    (``--param conditional_dataset=...``), so new checks need no new options.
    """

    address: str
    ca_cert: Path | None = None
    client_cert: Path | None = None
    client_key: Path | None = None
    kafka: str | None = None
    params: dict[str, str] = field(default_factory=dict, hash=False)
    timeout: float = 10.0

    def host_port(self) -> tuple[str, int]:
        host, sep, port = self.address.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise InputError(f"--target {self.address!r}: give HOST:PORT (e.g. node.example.gov.cn:7443)")
        return host.strip("[]"), int(port)

    @property
    def subject(self) -> Subject:
        return Subject(f"grpcs://{self.address}", f"node at {self.address}", "node")

    def probe(self) -> None:
        """Raise :class:`Unavailable` when nothing accepts a TCP connection at the address."""
        host, port = self.host_port()
        try:
            with socket.create_connection((host, port), timeout=self.timeout):
                pass
        except OSError as exc:
            raise Unavailable(f"the node at {self.address} is unavailable: {exc.strerror or exc}") from exc


class Session:
    """What checks share during one run: memoised resources (channels, clients), closed at the end."""

    def __init__(self) -> None:
        self.stack = ExitStack()
        self._memo: dict[str, Any] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    def shared(self, key: str, factory: Callable[[], T]) -> T:
        if key not in self._memo:
            self._memo[key] = factory()
        value: T = self._memo[key]
        return value

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """One event loop for every async check of the run (so async channels can be shared)."""
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
        return self._loop

    def close(self) -> None:
        try:
            self.stack.close()
        finally:
            if self._loop is not None:
                self._loop.run_until_complete(self._loop.shutdown_asyncgens())
                self._loop.close()
                self._loop = None


@dataclass
class NodeContext:
    """What a node check receives."""

    case: Case
    target: NodeTarget
    session: Session
    standard_dir: Path | None = None
    engine: str = "shacl"
    notes: list[str] = field(default_factory=list)

    def note(self, text: str) -> None:
        """Add a line to the case's details (shown in the reports)."""
        self.notes.append(text)

    def fail(self, message: str) -> NoReturn:
        raise CaseFailed(message)

    def check(self, condition: object, message: str) -> None:
        if not condition:
            raise CaseFailed(message)

    def inapplicable(self, message: str) -> NoReturn:
        raise CaseInapplicable(message)

    def cant_tell(self, message: str) -> NoReturn:
        raise CaseCannotTell(message)

    def param(self, name: str) -> str:
        """A ``--param NAME=VALUE`` given for the node; missing -> the case can't tell, saying what to pass."""
        value = self.target.params.get(name)
        if value is None:
            raise CaseCannotTell(f"{self.case.id} needs --param {name}=VALUE")
        return value

    def shared(self, key: str, factory: Callable[[], T]) -> T:
        """A resource created once per run (e.g. the gRPC channel); see :attr:`session`."""
        return self.session.shared(key, factory)


def _is_unavailable(exc: BaseException) -> bool:
    if isinstance(exc, Unavailable):
        return True
    code = getattr(exc, "code", None)
    if callable(code):  # grpc.RpcError
        try:
            return getattr(code(), "name", None) == "UNAVAILABLE"
        except Exception:  # a foreign exception's code() may need arguments
            return False
    return False


def _run_one(case: Case, func: Callable[..., Any], ctx: NodeContext, timeout: float) -> tuple[Outcome, str, bool]:
    try:
        if inspect.iscoroutinefunction(func):
            ctx.session.loop.run_until_complete(asyncio.wait_for(func(ctx), timeout))
        else:
            out = func(ctx)
            if inspect.isawaitable(out):
                ctx.session.loop.run_until_complete(asyncio.wait_for(out, timeout))
    except CaseInapplicable as exc:
        return Outcome.INAPPLICABLE, str(exc), False
    except CaseCannotTell as exc:
        return Outcome.CANT_TELL, str(exc), False
    except AssertionError as exc:
        return Outcome.FAILED, str(exc) or "an assertion of the check failed", False
    except TimeoutError:
        return Outcome.CANT_TELL, f"no answer within {timeout:g} s", False
    except Exception as exc:  # a check must never take the run down; say what happened
        if _is_unavailable(exc):
            return Outcome.CANT_TELL, f"the node is unavailable: {exc}", True
        if isinstance(exc, ShulianError):
            return Outcome.CANT_TELL, exc.message, False
        tb = traceback.format_exception(type(exc), exc, exc.__traceback__)
        ctx.notes.extend(line.rstrip() for line in tb[-3:])
        return Outcome.CANT_TELL, f"the check raised {type(exc).__name__}: {exc}", False
    return Outcome.PASSED, "; ".join(ctx.notes[:1]) or "as required", False


def run_node_cases(
    cases: Sequence[Case],
    registry: Registry,
    target: NodeTarget | None,
    *,
    standard_dir: Path | None = None,
    engine: str = "shacl",
    case_timeout: float = 60.0,
) -> list[Result]:
    """Run node cases against ``target``; a case without a registered check is reported not run."""
    subject = target.subject if target is not None else NO_NODE
    implemented = [c for c in cases if registry.get(c.id) is not None]
    down: str | None = None
    if target is not None and implemented:
        try:
            target.probe()
        except Unavailable as exc:
            down = exc.message
    results: list[Result] = []
    session = Session()
    try:
        for c in cases:
            check = registry.get(c.id)
            if check is None:
                results.append(Result(c, Outcome.UNTESTED, subject, f"not run: no check is implemented for {c.id} yet"))
                continue
            if target is None:
                results.append(Result(c, Outcome.UNTESTED, subject, "not run: no node given (--target HOST:PORT)"))
                continue
            if str(SLT.Kafka) in c.requires and not target.kafka:
                results.append(Result(c, Outcome.INAPPLICABLE, subject, "not run: the node was tested without --kafka"))
                continue
            if down is not None:
                results.append(Result(c, Outcome.CANT_TELL, subject, down, unavailable=True))
                continue
            ctx = NodeContext(c, target, session, standard_dir, engine)
            t0 = time.monotonic()
            outcome, message, unavailable = _run_one(c, check.func, ctx, case_timeout)
            results.append(
                Result(c, outcome, subject, message, tuple(ctx.notes), time.monotonic() - t0, unavailable)
            )
    finally:
        session.close()
    return results
