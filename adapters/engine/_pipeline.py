"""Validation in worker processes, pipelined with mapping.

Mapping a block and validating it are independent stages: while a worker process
validates block k with the standard's fast validator, the main process maps block
k+1. Each worker loads its own validator (``node.validation.get_validator("fast",
standard_dir=...)``); records go to it pickled, and only what the engine needs comes
back: for each record whose report is not a clean "valid", its verdict and violations.
Results are identical to validating in-process; on a machine with two or more cores
the run is faster by about the validator's share.
"""

from __future__ import annotations

import logging
import queue
import subprocess
import sys
import threading
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adapters.engine._frames import END, frame, read_frame
from node.errors import StandardError

__all__ = ["Verdict", "ViolationRecord", "ValidatorPool"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ViolationRecord:
    path: str
    constraint: str
    severity: str
    message_zh: str
    message_en: str


@dataclass(frozen=True, slots=True)
class Verdict:
    """What a worker says of one record (the shape of the validator's report the engine reads)."""

    valid: bool
    violations: tuple[ViolationRecord, ...] = ()
    error: str | None = None


_CLEAN = Verdict(True)


def _send(proc: subprocess.Popen[bytes], outbox: queue.SimpleQueue[bytes | None]) -> None:
    """A sender thread: write queued frames to a worker until told to stop (None)."""
    stdin = proc.stdin
    assert stdin is not None
    try:
        while True:
            data = outbox.get()
            if data is None:
                stdin.write(END)
                break
            stdin.write(data)
            stdin.flush()
    except (OSError, ValueError):  # the worker ended; the reader side reports it
        pass
    finally:
        try:
            stdin.close()
        except OSError:
            pass


@dataclass
class ValidatorPool:
    """``workers`` processes validating batches of records, each batch's verdicts in order.

    A worker is ``python -m adapters.engine._worker`` talking pickled frames over its stdin
    and stdout: no multiprocessing start method, so nothing depends on how the calling
    program was started.
    """

    workers: int
    standard_dir: str | Path | None
    record_type: str
    _procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    # one sender thread a worker, so that the main thread never blocks writing a batch while
    # the worker blocks writing a result (two full pipes would deadlock)
    _outboxes: list[queue.SimpleQueue[bytes | None]] = field(default_factory=list)
    _senders: list[threading.Thread] = field(default_factory=list)
    _queue: deque[tuple[int, int]] = field(default_factory=deque)  # (worker, batch size) in submission order
    _next: int = 0

    def __enter__(self) -> ValidatorPool:
        standard = str(self.standard_dir) if self.standard_dir is not None else ""
        command = [sys.executable, "-m", "adapters.engine._worker", standard, self.record_type]
        try:
            for _ in range(self.workers):
                proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
                self._procs.append(proc)
                outbox: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
                sender = threading.Thread(target=_send, args=(proc, outbox), daemon=True)
                sender.start()
                self._outboxes.append(outbox)
                self._senders.append(sender)
            for worker in range(self.workers):
                self._receive(worker)  # "ready", or the reason the worker could not load the validator
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        for outbox in self._outboxes:
            outbox.put(None)  # the sender writes the end frame and closes the pipe
        for sender in self._senders:
            sender.join(timeout=10)
        for proc in self._procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:  # pragma: no cover - a stuck worker
                proc.kill()
                proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()
        self._procs.clear()
        self._outboxes.clear()
        self._senders.clear()

    def _receive(self, worker: int) -> Any:
        stdout = self._procs[worker].stdout
        assert stdout is not None
        message = read_frame(stdout)
        if message is None:
            raise StandardError("a validation worker process ended unexpectedly")
        kind, payload = message
        if kind == "error":
            raise StandardError(f"validation worker: {payload}")
        return payload

    @property
    def in_flight(self) -> int:
        return len(self._queue)

    def submit(self, records: list[dict[str, str]]) -> None:
        worker = self._next
        self._next = (self._next + 1) % self.workers
        self._outboxes[worker].put(frame(records))
        self._queue.append((worker, len(records)))

    def collect(self) -> list[Verdict]:
        """The verdicts of the oldest batch still out, one per record."""
        worker, size = self._queue.popleft()
        count, special = self._receive(worker)
        if count != size:
            raise StandardError(f"validation worker returned {count} verdicts for {size} records")
        verdicts = [_CLEAN] * size
        for i, valid, violations, error in special:
            verdicts[i] = Verdict(valid, tuple(ViolationRecord(*v) for v in violations), error)
        return verdicts
