"""Record pages for the outgoing hot path (queries and subscriptions).

:meth:`ReadsMixin.record_pages` walks the same records in the same order as
:meth:`~node.store.RecordsMixin.iter_records` and yields each page as a list of plain
tuples ``(id, version, modified_us, deleted, body, checked)``: ``body`` is the
canonical JSON as UTF-8 bytes (None for a tombstone), ``checked`` is 1 when the record
passed the validator whose fingerprint the caller names. No
:class:`~node.store.StoredRecord` objects, no hash conversions, no text decoding.

:meth:`ReadsMixin.encoded_pages` goes further where the C accelerator
``node._fastread`` is built: each page is read AND encoded by one call on a read
connection of its own (one per thread), which steps SQLite and encodes the records
without the GIL and without a Python object per row (see
:mod:`node.service._outgoing`). A page with a record that did not pass the named
validator is read again as rows, for the caller to validate.
"""

from __future__ import annotations

import datetime as dt
import importlib
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from types import ModuleType
from typing import Any, NamedTuple

from node.errors import InputError, Unavailable
from node.store._db import StoreBase, translate
from node.store._schema import records_table
from node.store._types import datetime_to_us

__all__ = ["ReadsMixin", "RawRow", "EncodedPage", "fast_module"]

#: (id, version, modified_us, deleted, body or None, checked by the named validator)
RawRow = tuple[str, int, int, int, bytes | None, int]

_CHUNK = 500  # ids per IN (...) query
_ROW_COLS = "id, version, modified_us, deleted, CAST(body AS BLOB), checked IS ?"
_FAST_COLS = "id, version, modified_us, deleted, body, checked"
_READER_CACHE_KIB = 2048

_fast: ModuleType | None
try:
    _fast = importlib.import_module("node._fastread")
except ImportError:  # not built: every page is read as rows
    _fast = None
_ABI = 2
if _fast is not None and (getattr(_fast, "ABI", None) != _ABI
                          or not _fast.shares_sqlite(getattr(sys.modules.get("_sqlite3"), "__file__", None))):
    _fast = None  # stale build, or linked to another copy of SQLite: node.service._outgoing says so in the log


def fast_module() -> ModuleType | None:
    """The C accelerator, when it is built and current."""
    return _fast


class EncodedPage(NamedTuple):
    """A page read and encoded in C (see :class:`node.service._outgoing.Encoded`)."""

    size: int  # records
    wire: bytes
    digest: bytes
    evidence: bytes


class _Readers(threading.local):
    reader: Any = None


class ReadsMixin(StoreBase):
    def record_pages(
        self,
        dataset: str,
        *,
        fingerprint: str,
        ids: Iterable[str] | None = None,
        modified_since: dt.datetime | None = None,
        include_deleted: bool = False,
        limit: int | None = None,
        page_size: int = 1000,
    ) -> Iterator[list[RawRow]]:
        """Current records of a dataset as pages of raw rows (see the module docstring).

        The arguments and the order are those of ``iter_records``: by id, or by
        (modified, id) with ``modified_since``; each page is its own short read.
        ``fingerprint``: the validator whose records count as checked. A page holds at
        most ``page_size`` rows (with ``ids``, at most 500); empty pages are not yielded.
        """
        if page_size < 1:
            raise InputError("page_size must be at least 1")
        if limit is not None and limit <= 0:
            return
        num = self.dataset_num(dataset)
        if num is None:  # not registered: no records
            return
        table = records_table(num)
        deleted = "" if include_deleted else " AND deleted = 0"
        if ids is not None:
            remaining = limit
            wanted = sorted(set(ids))
            step = min(page_size, _CHUNK)
            for i in range(0, len(wanted), step):
                chunk = wanted[i:i + step]
                marks = ",".join("?" * len(chunk))
                rows = self._rows(f"SELECT {_ROW_COLS} FROM {table} WHERE id IN ({marks}){deleted} "
                                  "ORDER BY id", (fingerprint, *chunk))
                if remaining is not None:
                    rows = rows[:remaining]
                    remaining -= len(rows)
                if rows:
                    yield rows
                if remaining == 0:
                    return
            return
        walk = _Walk(table, deleted, modified_since, limit, page_size)
        while (page := walk.next()) is not None:
            rows = self._rows(page[0].format(cols=_ROW_COLS), (fingerprint, *page[1]))
            if rows:
                yield rows
            walk.read(len(rows), rows[-1][0] if rows else "", rows[-1][2] if rows else 0)

    def encoded_pages(
        self,
        dataset: str,
        *,
        fingerprint: str,
        plan: object,
        fallback: Callable[[RawRow], tuple[str, bytes]],
        digest_prefix: bytes,
        modified_since: dt.datetime | None = None,
        limit: int | None = None,
        page_size: int = 1000,
    ) -> Iterator[EncodedPage | list[RawRow]]:
        """The current records as pages encoded by the C accelerator (``plan``, ``fallback``
        and ``digest_prefix`` as :func:`node._fastread.encode_batch` takes them), in the order of
        :meth:`record_pages`; a page with a record that did not pass the validator
        ``fingerprint`` comes as rows. Without the accelerator every page comes as rows.
        """
        if _fast is None or self.in_transaction:  # C reads its own connection: not this thread's open transaction
            yield from self.record_pages(dataset, fingerprint=fingerprint, modified_since=modified_since, limit=limit,
                                         page_size=page_size)
            return
        if page_size < 1:
            raise InputError("page_size must be at least 1")
        if limit is not None and limit <= 0:
            return
        num = self.dataset_num(dataset)
        if num is None:  # not registered: no records
            return
        walk = _Walk(records_table(num), " AND deleted = 0", modified_since, limit, page_size)
        while (page := walk.next()) is not None:
            query, params = page
            reader = self._reader()  # per page: the store may be closed, a generator resumed on another thread
            try:
                out = reader.encode(query.format(cols=_FAST_COLS), params, fingerprint, plan, fallback, digest_prefix)
            except _fast.SQLiteError as exc:  # sqlite3's exceptions: the Python path's errors
                raise translate(exc, self.path) from exc
            if out is None:  # a record to validate: the caller gets this page as rows
                rows = self._rows(query.format(cols=_ROW_COLS), (fingerprint, *params))
                if rows:
                    yield rows
                walk.read(len(rows), rows[-1][0] if rows else "", rows[-1][2] if rows else 0)
            else:
                count, (wire, digest, evidence), last_id, last_modified = out
                if count:
                    yield EncodedPage(count, wire, digest, evidence)
                walk.read(count, last_id or "", last_modified)

    # ---- internals ------------------------------------------------------------------------
    def _rows(self, sql: str, params: tuple[Any, ...]) -> list[RawRow]:
        with self.reader() as conn:
            rows: list[RawRow] = conn.execute(sql, params).fetchall()
        return rows

    def _reader(self) -> Any:
        """This thread's C read connection (created on first use, closed with the store)."""
        assert _fast is not None
        with self._lock:
            local = self.__dict__.get("_fast_readers")
            if local is None:
                local = self.__dict__["_fast_readers"] = _Readers()
                self.__dict__["_fast_reader_list"] = []
            if self._closed:
                raise Unavailable(f"store {self.path} is closed")
        if local.reader is None:
            try:
                reader = _fast.Reader(str(self.path), int(self.busy_timeout * 1000), _READER_CACHE_KIB)
            except _fast.SQLiteError as exc:
                raise translate(exc, self.path) from exc
            with self._lock:
                readers = self.__dict__.get("_fast_reader_list")
                if readers is not None:
                    readers.append(reader)
            if readers is None:  # the store was closed meanwhile
                reader.close()
                raise Unavailable(f"store {self.path} is closed")
            local.reader = reader
        return local.reader

    def close(self) -> None:
        with self._lock:
            readers = self.__dict__.pop("_fast_reader_list", [])
            self.__dict__.pop("_fast_readers", None)
        for reader in readers:
            try:
                reader.close()
            except RuntimeError:  # pragma: no cover - in use by a thread that is still reading: it goes with it
                pass
        super().close()


class _Walk:
    """The page queries of a keyset walk, by id or by (modified_us, id): :meth:`next` gives the
    next page's query (``{cols}`` to fill in) and parameters, :meth:`read` is told what it held."""

    def __init__(self, table: str, deleted: str, modified_since: dt.datetime | None, limit: int | None,
                 page_size: int) -> None:
        self.table = table
        self.deleted = deleted
        self.since = datetime_to_us(modified_since) if modified_since is not None else None
        self.remaining = limit
        self.page_size = page_size
        self.size = 0
        self.after: tuple[int, str] | None = None
        self.finished = False

    def next(self) -> tuple[str, tuple[Any, ...]] | None:
        if self.finished:
            return None
        self.size = size = self.page_size if self.remaining is None else min(self.page_size, self.remaining)
        where, order = f"1{self.deleted}", "id"
        params: tuple[Any, ...] = ()
        if self.since is not None:
            order = "modified_us, id"
            if self.after is None:
                where, params = f"{where} AND modified_us >= ?", (*params, self.since)
            else:
                where, params = f"{where} AND (modified_us, id) > (?, ?)", (*params, *self.after)
        elif self.after is not None:
            where, params = f"{where} AND id > ?", (*params, self.after[1])
        return f"SELECT {{cols}} FROM {self.table} WHERE {where} ORDER BY {order} LIMIT ?", (*params, size)

    def read(self, count: int, last_id: str, last_modified_us: int) -> None:
        if self.remaining is not None:
            self.remaining -= count
        self.finished = count < self.size or self.remaining == 0
        self.after = (last_modified_us, last_id)
