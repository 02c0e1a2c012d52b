"""Preparing pushed batches in a helper process, so a Push stream uses a second core.

CPython runs one thread of Python at a time. Storing a batch is mostly SQLite's work;
preparing the next one (decoding the JSON, checking ids, validating, encoding the
canonical bodies) is all Python. :class:`PreparePool` runs the preparation of batch N+1
in one helper process while this process stores batch N. The helper runs the very same
:func:`node.service._batch.prepare_records` (by columns for the common batch:
:func:`node.service._batch.prepare_packed`, which answers what ``pack(prepare_records(...))``
does, without a dict per record) with a validator rebuilt from the same
standard and engine (its fingerprint is checked against this process's at start), so
its verdicts and the bytes it hands back are those of preparing here.

The payload crosses as it came off the wire (one ``bytes``) with a module-level
function that splits it into ``(id, payload)`` pairs in the helper, and comes back
packed (:func:`node.service._batch.pack`), the bodies hashed, bodies and digests in one
``bytes`` each (:func:`node.service._batch.compact`): storing is the node's larger share
of the work, so the hashing is done here, and the node unpickles and binds a few objects
per batch rather than a few per record. A helper that fails is given up: batches are
prepared in this process from then on. The helper exits by itself when this process
goes away (even when it is killed).

The helper is a fresh interpreter (multiprocessing's "spawn"), which imports the
program's main module again, as ``__mp_main__``: a program that serves a node must keep
its start-up under ``if __name__ == "__main__":`` (``shulian-node`` does).
"""

from __future__ import annotations

import concurrent.futures
import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from node.service._batch import Packed, compact, prepare_packed
from node.validation import Validator

__all__ = ["PreparePool", "Splitter"]

log = logging.getLogger(__name__)

#: turns the bytes sent to the helper into the batch's (id, payload) pairs; must be a module-level function
Splitter = Callable[[bytes], Sequence[tuple[str, bytes | str | Mapping[str, Any]]]]

_PARENT_POLL_SECONDS = 0.5

# ---- in the helper process -------------------------------------------------------------
_VALIDATOR: Validator | None = None


def _watch_parent(parent: int) -> None:
    while True:
        time.sleep(_PARENT_POLL_SECONDS)
        if os.getppid() != parent:  # the node is gone (killed): nothing will ever read our answers
            os._exit(0)


def _init(std: Any, engine: str, fingerprint: str, parent: int) -> None:
    global _VALIDATOR
    validator = Validator(std, engine)
    if validator.fingerprint != fingerprint:
        raise RuntimeError(f"the prepare helper's validator is {validator.fingerprint}, the node's {fingerprint}")
    _VALIDATOR = validator
    threading.Thread(target=_watch_parent, args=(parent,), name="parent-watch", daemon=True).start()


def _ready(warm: Splitter | None) -> int:
    if warm is not None:
        warm(b"")  # loads the splitter's module now rather than with the first batch
    return os.getpid()


def _prepare(dataset: str, record_type: str, data: bytes, split: Splitter) -> Packed:
    if _VALIDATOR is None:
        raise RuntimeError("the prepare helper was not initialised")
    # pack(prepare_records(...)), its bodies and digests in one bytes each
    return compact(prepare_packed(_VALIDATOR, dataset, record_type, split(data)))


# ---- in the node -----------------------------------------------------------------------
class PreparePool:
    """One helper process that prepares batches; :meth:`submit` returns a future of a packed batch.

    Use :meth:`available` before submitting: False until the helper has started (and
    for good once it failed).
    """

    def __init__(self, validator: Validator) -> None:
        self._args = (validator.std, validator.engine, validator.fingerprint, os.getpid())
        self._executor: concurrent.futures.ProcessPoolExecutor | None = None
        self._started: concurrent.futures.Future[int] | None = None
        self._lock = threading.Lock()
        self.failed = False

    @staticmethod
    def supported(validator: object) -> bool:
        """A helper helps only with a second core, and needs a validator it can rebuild."""
        return (os.cpu_count() or 1) > 1 and type(validator) is Validator

    def start(self, warm: Splitter | None = None) -> None:
        """Start the helper in the background (a fresh interpreter: no threads or sockets inherited)."""
        with self._lock:
            if self._executor is not None or self.failed:
                return
            self._executor = concurrent.futures.ProcessPoolExecutor(
                1, mp_context=multiprocessing.get_context("spawn"), initializer=_init, initargs=self._args)
            self._started = self._executor.submit(_ready, warm)

    def available(self) -> bool:
        started = self._started
        if self.failed or started is None or not started.done():
            return False
        if started.exception() is not None:
            self.fail(started.exception())
            return False
        return True

    def submit(self, dataset: str, record_type: str, data: bytes,
               split: Splitter) -> concurrent.futures.Future[Packed]:
        """Prepare the batch ``split(data)`` in the helper (call :meth:`available` first)."""
        executor = self._executor
        if executor is None:
            raise RuntimeError("the prepare helper is not running")
        return executor.submit(_prepare, dataset, record_type, data, split)

    def fail(self, exc: BaseException | None) -> None:
        """Stop using the helper (batches are prepared in this process from now on)."""
        with self._lock:
            if not self.failed:
                log.warning("the prepare helper process failed (%r); preparing batches in this process from now on",
                            exc)
            self.failed = True
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        """Stop the helper. Nothing waits for it: it holds no state, and one still starting exits
        once it is up (or with this process)."""
        with self._lock:
            executor, self._executor = self._executor, None
            self.failed = True  # no new start
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)
