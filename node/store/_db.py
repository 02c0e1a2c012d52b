"""Connections, transactions and pragmas for the SQLite store."""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Self

from node.errors import InputError, IntegrityError, Unavailable
from node.store._schema import DDL, MIGRATIONS, SCHEMA_VERSION, views_ddl

__all__ = ["StoreBase", "DURABILITY", "PAGE_SIZE"]

log = logging.getLogger(__name__)

# full: every commit is fsynced (WAL + synchronous=FULL): durable against power loss.
# normal: WAL + synchronous=NORMAL: durable against a crashed or killed process, not power loss.
DURABILITY = {"full": "FULL", "normal": "NORMAL"}
#: the page size of a new store's file
PAGE_SIZE = 8192


def translate(exc: sqlite3.Error, path: Path) -> Exception:
    """A ShulianError for a sqlite3 error."""
    text = str(exc)
    if isinstance(exc, sqlite3.OperationalError) and ("locked" in text or "busy" in text):
        return Unavailable(f"store {path} is busy (another process holds the write lock): {text}")
    if isinstance(exc, sqlite3.OperationalError) and ("unable to open" in text or "readonly" in text
                                                       or "disk I/O" in text or "disk is full" in text):
        return Unavailable(f"store {path}: {text}")
    if isinstance(exc, sqlite3.DatabaseError) and ("not a database" in text or "malformed" in text):
        return IntegrityError(f"store {path} is damaged or not a Shulian store: {text}")
    return Unavailable(f"store {path}: {text}")


def _statements(script: str) -> list[str]:
    """Split a DDL script into statements (comments removed first)."""
    text = "\n".join(line.split("--", 1)[0] for line in script.splitlines())
    return [part.strip() for part in text.split(";") if part.strip()]


class _Local(threading.local):
    conn: sqlite3.Connection | None = None
    depth: int = 0


class StoreBase:
    """One SQLite database (WAL), one connection per thread, explicit write transactions.

    Several threads and several processes may use the same file: writes take
    SQLite's write lock with ``BEGIN IMMEDIATE`` and wait up to ``busy_timeout``
    seconds for it; readers never block writers (WAL).
    """

    def __init__(self, path: str | Path, *, durability: str = "full", busy_timeout: float = 30.0) -> None:
        if durability not in DURABILITY:
            raise InputError(f"unknown store durability {durability!r}; use full or normal")
        self.path = Path(path)
        self.durability = durability
        self.busy_timeout = busy_timeout
        self._local = _Local()
        self._conns: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._closed = False
        #: dataset id -> the number naming its tables (never changes once given: see RecordsMixin.dataset_num)
        self._nums: dict[str, int] = {}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise Unavailable(f"store {self.path}: cannot create its folder: {exc.strerror}") from exc
        try:
            self._init_schema()
        except BaseException:
            self.close()
            raise

    # ---- lifecycle --------------------------------------------------------------------
    def close(self) -> None:
        """Close every connection this store opened (from any thread)."""
        with self._lock:
            self._closed = True
            conns, self._conns = self._conns, []
        for conn in conns:
            try:
                conn.close()
            except sqlite3.Error:  # pragma: no cover - closing never matters
                log.debug("closing a store connection failed", exc_info=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        self.close()

    # ---- connections ------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(str(self.path), timeout=self.busy_timeout, isolation_level=None,
                                   check_same_thread=False)
        except sqlite3.Error as exc:
            raise translate(exc, self.path) from exc
        try:
            conn.execute(f"PRAGMA busy_timeout={int(self.busy_timeout * 1000)}")
            # a new store's page size (before WAL mode creates the file; an existing store keeps its own):
            # a 500-record batch commits in about 12% less time than with 4096-byte pages
            conn.execute(f"PRAGMA page_size={PAGE_SIZE}")
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise Unavailable(f"store {self.path}: cannot switch to WAL mode (got {mode})")
            conn.execute(f"PRAGMA synchronous={DURABILITY[self.durability]}")
            conn.execute("PRAGMA cache_size=-8000")  # 8 MB page cache per connection
            conn.execute("PRAGMA temp_store=MEMORY")
        except BaseException as exc:
            conn.close()
            if isinstance(exc, sqlite3.Error):
                raise translate(exc, self.path) from exc
            raise
        return conn

    def _conn(self) -> sqlite3.Connection:
        conn = self._local.conn
        if conn is None:
            if self._closed:
                raise Unavailable(f"store {self.path} is closed")
            conn = self._connect()
            with self._lock:
                self._conns.append(conn)
            self._local.conn = conn
        return conn

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction (``BEGIN IMMEDIATE`` ... ``COMMIT``) on this thread's connection.

        Nested calls on the same thread join the outer transaction (as a SAVEPOINT,
        so a failing inner block is undone alone), letting callers group work, e.g.
        ``upsert_many`` and an evidence entry, into one commit. When the outermost
        block returns, the commit is durable (see ``durability``).
        """
        conn = self._conn()
        depth = self._local.depth
        savepoint = f"sl_{depth}"
        try:
            conn.execute("BEGIN IMMEDIATE" if depth == 0 else f"SAVEPOINT {savepoint}")
        except sqlite3.Error as exc:
            raise translate(exc, self.path) from exc
        self._local.depth = depth + 1
        try:
            yield conn
        except BaseException as exc:
            self._local.depth = depth
            try:
                if depth == 0:
                    conn.execute("ROLLBACK")
                else:
                    conn.execute(f"ROLLBACK TO {savepoint}")
                    conn.execute(f"RELEASE {savepoint}")
            except sqlite3.Error:
                log.warning("rollback failed on %s", self.path, exc_info=True)
            if isinstance(exc, sqlite3.Error):
                raise translate(exc, self.path) from exc
            raise
        self._local.depth = depth
        try:
            conn.execute("COMMIT" if depth == 0 else f"RELEASE {savepoint}")
        except sqlite3.Error as exc:
            if depth == 0:
                try:
                    conn.execute("ROLLBACK")
                except sqlite3.Error:
                    log.debug("rollback after failed commit failed", exc_info=True)
            raise translate(exc, self.path) from exc

    @property
    def in_transaction(self) -> bool:
        return self._local.depth > 0

    @contextmanager
    def reader(self) -> Iterator[sqlite3.Connection]:
        """This thread's connection for reads (statements run in autocommit)."""
        conn = self._conn()
        try:
            yield conn
        except sqlite3.Error as exc:
            raise translate(exc, self.path) from exc

    def dataset_num(self, dataset: str) -> int | None:
        """The number that names a registered dataset's tables (``records_N``, ``changes_N``);
        None for a dataset that is not registered. A dataset keeps its number for good."""
        nums = self._nums
        num = nums.get(dataset)
        if num is None:
            with self.reader() as conn:
                row = conn.execute("SELECT num FROM datasets WHERE id = ?", (dataset,)).fetchone()
            if row is None or row[0] is None:
                return None
            num = nums[dataset] = int(row[0])
        return num

    # ---- schema -----------------------------------------------------------------------
    def _init_schema(self) -> None:
        with self.reader() as conn:  # already current: no write lock needed to open
            try:
                row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            except sqlite3.OperationalError:
                row = None
        if row is not None and int(row[0]) == SCHEMA_VERSION:
            return
        # an upgrade copies whole tables in single statements: their statement journals (kept in
        # memory or in files as temp_store says when the transaction begins) go to files; with
        # temp_store=MEMORY, upgrading a store of a million records took ~250 MB of memory, ~30 MB so
        with self.reader() as conn:
            conn.execute("PRAGMA temp_store=FILE")
        try:
            self._upgrade()
        finally:
            with self.reader() as conn:
                conn.execute("PRAGMA temp_store=MEMORY")

    def _upgrade(self) -> None:
        try:
            with self.transaction() as conn:
                found = conn.execute(
                    "SELECT 1 FROM sqlite_master WHERE type='table' AND name='meta'").fetchone()
                if found:
                    row = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
                    version = int(row[0]) if row else 0
                    if version > SCHEMA_VERSION:
                        raise IntegrityError(
                            f"store {self.path} has schema version {version}; this Shulian reads "
                            f"version {SCHEMA_VERSION}: upgrade Shulian")
                    if version:  # an older store: upgrade it in place, in this transaction
                        log.info("upgrading store %s from schema version %d to %d (this rewrites its records once)",
                                 self.path, version, SCHEMA_VERSION)
                        for old in range(version, SCHEMA_VERSION):
                            step = MIGRATIONS.get(old, ())
                            if callable(step):
                                step(conn)
                            else:
                                for statement in step:
                                    conn.execute(statement)
                        conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'",
                                     (str(SCHEMA_VERSION),))
                for statement in _statements(DDL):
                    conn.execute(statement)
                datasets = conn.execute("SELECT id, num FROM datasets WHERE num IS NOT NULL ORDER BY num").fetchall()
                for statement in views_ddl(datasets):
                    conn.execute(statement)
                conn.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)",
                             (str(SCHEMA_VERSION),))
        except sqlite3.Error as exc:
            raise translate(exc, self.path) from exc

    def checkpoint(self) -> None:
        """Fold the WAL into the database file (optional housekeeping)."""
        with self.reader() as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
