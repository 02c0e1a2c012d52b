"""Boundary checks in a helper process, so a consumer uses a second core.

CPython runs one thread of Python at a time, and a consumer's boundary checks
(hashing for the signatures, JSON, validation) are about half of its work; the
other half is reading from Kafka and storing. :class:`CheckPool` runs the checks of
batch N+1 in one helper process while this process stores batch N. The helper runs
the very same :class:`Checker` code on a copy of the inputs it needs (subscriptions,
the validator's standard and engine, the federation directory, the node's X25519
key), so its verdicts are those of checking here. The store, the evidence log, the
quarantine and the offsets stay in this process.

The helper is ``python -m node.transport.kafka._helper``, a fresh interpreter (it
inherits no threads, sockets or main module) that reads requests on its stdin and
answers on its stdout, in order: frames of an 8-byte big-endian length, a codec byte
and the data, ``m`` for :mod:`marshal` (batches of messages and their outcomes: plain
tuples, strings and bytes, the cheapest to write and read) or ``p`` for :mod:`pickle`
(anything else). Both sides are the same interpreter, and trust each other: the node
and its own child. It exits when its stdin closes, so
it never outlives the node. Without a helper (one core, a validator it cannot
rebuild, while it starts, or once it failed) the exchange checks in a thread.
"""

from __future__ import annotations

import collections
import concurrent.futures
import gc
import logging
import marshal
import os
import pickle
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import x25519

from node.config import Subscription
from node.federation import FederationDirectory
from node.transport.kafka._envelope import TYPE_DELETED
from node.transport.kafka._receiver import Accepted, CheckedBatch, Checker, Incoming, Rejected
from node.validation import Validator

__all__ = ["CheckPool", "HelperError", "Packed", "pack_outcomes", "unpack_outcomes"]

log = logging.getLogger(__name__)

#: a checked batch as it crosses the process boundary (marshal-ready: lists of plain values): the
#: columns of :class:`CheckedBatch` for the accepted messages (without the messages, which the caller
#: has, and without the decoded records: the canonical JSON is enough to store them), then the
#: rejections as (position, pickle of (code, detail, violations, provider, dataset))
Packed = tuple[Any, ...]
_COLUMNS = 11  # at, subjects, versions, deleted, checked, bodies, digests, locals, record_types, providers, datasets
_HEAD = 8
_GC_THRESHOLD = 50_000  # allocations between young collections in the helper (CPython's default: 700)
_new = tuple.__new__  # a NamedTuple from its fields, without its Python-level __new__


def pack_outcomes(outcomes: Sequence[Accepted | Rejected]) -> Packed:
    # column by column (a comprehension each): cheaper than appending to eleven lists per message
    acc = [o for o in outcomes if isinstance(o, Accepted)]
    rejections: list[tuple[int, bytes]] = []
    if len(acc) == len(outcomes):
        at = list(range(len(outcomes)))
    else:
        at = [i for i, o in enumerate(outcomes) if isinstance(o, Accepted)]
        rejections = [(i, pickle.dumps((o.code, o.detail, o.violations, o.provider, o.dataset),
                                       protocol=pickle.HIGHEST_PROTOCOL))
                      for i, o in enumerate(outcomes) if isinstance(o, Rejected)]
    envs = [a.env for a in acc]
    return (at, [e.subject for e in envs], [e.version for e in envs], [e.type == TYPE_DELETED for e in envs],
            [a.checked for a in acc], [a.body for a in acc], [a.digest for a in acc], [a.local_dataset for a in acc],
            [a.record_type for a in acc], [e.provider for e in envs], [e.dataset for e in envs], rejections)


def unpack_outcomes(msgs: Sequence[tuple[Any, ...]], packed: Packed) -> CheckedBatch:
    """The checked batch ``msgs`` (Incoming, or tuples of its fields) from the helper's answer."""
    if not isinstance(packed, tuple) or len(packed) != _COLUMNS + 1:
        raise RuntimeError("the check helper answered something that is not a checked batch")
    columns, rejections = packed[:_COLUMNS], packed[_COLUMNS]
    at = columns[0]
    n = len(at)
    if any(len(c) != n for c in columns) or n + len(rejections) != len(msgs) or \
            (rejections or at != list(range(n))) and sorted([*at, *(r[0] for r in rejections)]) != list(range(len(msgs))):
        raise RuntimeError(f"the check helper answered {n} accepted and {len(rejections)} refused messages "
                           f"that are not the {len(msgs)} messages asked")
    rejected = [Rejected(m if isinstance(m, Incoming) else _new(Incoming, m), *pickle.loads(p))
                for i, p in rejections for m in (msgs[i],)]
    (at, subjects, versions, deleted, checked, bodies, digests, locals_, types, providers, datasets) = columns
    return CheckedBatch(msgs, at, subjects, versions, deleted, checked, bodies, digests, locals_, types, providers,
                        datasets, rejected)


def _encode(obj: Any, fast: bool) -> bytes:
    if fast:
        try:
            return b"m" + marshal.dumps(obj)
        except ValueError:  # something marshal cannot write
            pass
    return b"p" + pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)


def _write_frame(out: IO[bytes], obj: Any, *, fast: bool = False) -> None:
    """``fast``: ``obj`` is (most likely) plain tuples, lists, strings, bytes and numbers."""
    data = _encode(obj, fast)
    out.write(len(data).to_bytes(_HEAD, "big"))
    out.write(data)
    out.flush()


def _read_frame(inp: IO[bytes]) -> Any:
    """The next frame, or EOFError when the other side is gone."""
    head = inp.read(_HEAD)
    if len(head) < _HEAD:
        raise EOFError
    size = int.from_bytes(head, "big")
    data = inp.read(size)
    if len(data) < size:
        raise EOFError
    body = memoryview(data)[1:]
    if data[:1] == b"m":
        return marshal.loads(body)
    return pickle.loads(body)


# ---- in the helper process -------------------------------------------------------------
class _Helper:
    def __init__(self, node_code: str, subscriptions: tuple[Subscription, ...], standard: Any, engine: str,
                 encryption_key: bytes | None) -> None:
        key = x25519.X25519PrivateKey.from_private_bytes(encryption_key) if encryption_key is not None else None
        self.directory: FederationDirectory | None = None
        self.checker = Checker(node_code=node_code, subscriptions=subscriptions,
                               validator=Validator(standard, engine), directory=self._directory, encryption_key=key)

    def _directory(self) -> FederationDirectory:
        if self.directory is None:
            raise RuntimeError("no federation directory was sent")
        return self.directory

    def check(self, msgs: list[tuple[Any, ...]]) -> Packed:
        return pack_outcomes(self.checker.check_batch([_new(Incoming, m) for m in msgs]))


def serve(inp: IO[bytes], out: IO[bytes]) -> None:
    """The helper's loop: ("init", args) first, then ("directory", directory) and ("check", msgs) ..."""
    helper: _Helper | None = None
    while True:
        try:
            kind, args = _read_frame(inp)
        except EOFError:
            return
        try:
            if kind == "init":
                helper = _Helper(*args)
                # what is loaded now lives as long as the helper: keep the collector off it, and let it
                # run less often (a batch's objects are freed by reference counting when it is answered)
                gc.freeze()
                gc.set_threshold(_GC_THRESHOLD, 20, 100)
                result: Any = os.getpid()
            elif helper is None:
                raise RuntimeError("the check helper was not initialised")
            elif kind == "directory":
                helper.directory = args
                result = None
            else:
                result = helper.check(args)
            answer: tuple[bool, Any] = (True, result)
        except Exception as exc:  # noqa: BLE001 - reported to the node, which then checks by itself
            log.exception("the Kafka check helper failed")
            answer = (False, f"{type(exc).__name__}: {exc}")
        _write_frame(out, answer, fast=kind == "check")


def helper_main() -> None:
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # anything printed by accident goes to stderr, not into the answers
    logging.basicConfig(level=logging.WARNING, format="kafka-check-helper %(levelname)s %(message)s")
    serve(sys.stdin.buffer, out)


# ---- in the node -----------------------------------------------------------------------
class HelperError(Exception):
    """The check helper failed or is gone; the batch is checked in the node instead."""


class CheckPool:
    """One helper process that checks batches; :meth:`submit` returns a future of packed outcomes.

    Batches are checked in the order submitted. :meth:`available` is False until the
    helper has started, and for good once it failed.
    """

    def __init__(self, *, node_code: str, subscriptions: Sequence[Subscription], validator: Validator,
                 encryption_key: x25519.X25519PrivateKey | None) -> None:
        raw_key = None
        if encryption_key is not None:
            raw_key = encryption_key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                                   serialization.NoEncryption())
        self._init = (node_code, tuple(subscriptions), validator.std, validator.engine, raw_key)
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        self._pending: collections.deque[concurrent.futures.Future[Any]] = collections.deque()
        self._outbox: collections.deque[tuple[str, Any] | None] = collections.deque()
        self._wake = threading.Condition(self._lock)
        self._started: concurrent.futures.Future[Any] | None = None
        self._threads: list[threading.Thread] = []
        self._sent: FederationDirectory | None = None
        self.failed = False
        self.submitted = 0  # batches sent to the helper

    @staticmethod
    def supported(validator: object) -> bool:
        """A helper helps only with a second core, and needs a validator it can rebuild."""
        return (os.cpu_count() or 1) > 1 and type(validator) is Validator

    def start(self) -> None:
        """Start the helper; it is usable once it answered its first request (see :meth:`available`)."""
        if self._proc is not None or self.failed:
            return
        import node

        root = str(Path(node.__file__).resolve().parents[1])
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([root, *filter(None, [env.get("PYTHONPATH")])])
        self._proc = subprocess.Popen([sys.executable, "-m", "node.transport.kafka._helper"], stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, env=env, close_fds=True)
        self._threads = [threading.Thread(target=self._writing, name="shulian-kafka-helper-w", daemon=True),
                         threading.Thread(target=self._reading, name="shulian-kafka-helper-r", daemon=True)]
        for thread in self._threads:
            thread.start()
        self._started = self._request("init", self._init)

    def _request(self, kind: str, args: Any) -> concurrent.futures.Future[Any]:
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        with self._lock:
            if self.failed:
                future.set_exception(HelperError("the check helper is not running"))
                return future
            self._pending.append(future)
            self._outbox.append((kind, args))
            self._wake.notify()
        return future

    def _writing(self) -> None:
        proc = self._proc
        assert proc is not None and proc.stdin is not None
        try:
            while True:
                with self._lock:
                    while not self._outbox:
                        self._wake.wait()
                    item = self._outbox.popleft()
                if item is None:
                    break
                _write_frame(proc.stdin, item, fast=item[0] == "check")  # encoded here, off the event loop
        except (OSError, ValueError, pickle.PicklingError, TypeError, AttributeError) as exc:
            self.fail(exc)
        finally:
            try:
                proc.stdin.close()  # the helper sees EOF and exits
            except OSError:
                pass

    def _reading(self) -> None:
        proc = self._proc
        assert proc is not None and proc.stdout is not None
        while True:
            try:
                ok, result = _read_frame(proc.stdout)
            except (EOFError, OSError, pickle.UnpicklingError, ValueError) as exc:
                self.fail(exc if not isinstance(exc, EOFError) else HelperError("the check helper exited"))
                return
            with self._lock:
                future = self._pending.popleft() if self._pending else None
            if future is None:
                self.fail(HelperError("the check helper answered a question not asked"))
                return
            if ok:
                future.set_result(result)
            else:
                future.set_exception(HelperError(result))

    def usable(self) -> bool:
        """True once the helper is spawned and until it fails: batches submitted while it starts
        wait for it (they are answered in order, after its start), which costs this process less
        than checking them here meanwhile. If it fails to start they fail too and are checked here."""
        return not self.failed and self._started is not None

    def available(self) -> bool:
        started = self._started
        if self.failed or started is None or not started.done():
            return False
        return started.exception() is None

    def submit(self, msgs: Sequence[tuple[Any, ...]], directory: FederationDirectory) -> concurrent.futures.Future[Any]:
        """Check a batch (Incoming, or tuples of its fields) in the helper; the result is for
        :func:`unpack_outcomes`."""
        if directory is not self._sent:  # a new directory goes first (requests are answered in order)
            self._request("directory", directory)
            self._sent = directory
        self.submitted += 1
        return self._request("check", [m if m.__class__ is tuple else tuple(m) for m in msgs])  # marshal-ready

    def fail(self, exc: BaseException | None) -> None:
        """Stop using the helper (the exchange checks in the node from now on)."""
        with self._lock:
            if self.failed:
                return
            self.failed = True
            pending = list(self._pending)
            self._pending.clear()
            self._outbox.clear()
            self._outbox.append(None)
            self._wake.notify()
        log.warning("the Kafka check helper process failed (%s); checking in this process from now on", exc)
        for future in pending:
            if not future.done():
                future.set_exception(HelperError(f"the check helper failed ({exc})"))
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.kill()

    def close(self, timeout: float = 5.0) -> None:
        """Let the helper finish what it has, then end it (it exits when its stdin closes)."""
        proc, self._proc = self._proc, None
        with self._lock:
            self.failed = True  # quietly: no new requests; answers to those in hand still arrive
            self._outbox.append(None)
            self._wake.notify()
        if proc is None:
            return
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)
        for thread in self._threads:
            thread.join(timeout)
        if proc.stdout is not None:
            proc.stdout.close()
        with self._lock:
            pending = list(self._pending)
            self._pending.clear()
        for future in pending:
            if not future.done():
                future.set_exception(HelperError("the check helper was stopped"))
