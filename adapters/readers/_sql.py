"""A SQL query over SQLite or any DB-API 2.0 connection (``connect = "module:callable"``)."""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

from adapters.readers._base import BadRow, ReaderOptions, Row
from adapters.readers._cells import cell_text
from node.errors import ConfigError, InputError

__all__ = ["SqlSource", "redact_dsn"]

_FETCH = 1000
_USERINFO = re.compile(r"(?<=://)[^/@]*@")
_PASSWORD = re.compile(r"(?i)(password|pwd)\s*=\s*[^;\s]+")


def redact_dsn(dsn: str) -> str:
    """A DSN without credentials, fit for messages and reports."""
    return _PASSWORD.sub(r"\1=***", _USERINFO.sub("***@", dsn))


def _connector(spec: str) -> Callable[..., Any]:
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ConfigError(f"connect must be 'module:callable', not {spec!r}", key="source.connect")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"cannot import {module_name!r} for connect: {exc}", key="source.connect") from exc
    found = getattr(module, attr, None)
    if not callable(found):
        raise ConfigError(f"{module_name} has no callable {attr!r}", key="source.connect")
    return found  # type: ignore[no-any-return]


class SqlSource:
    def __init__(self, dsn: str, options: ReaderOptions) -> None:
        if not options.query:
            raise ConfigError("a sql source needs a query", key="source.query")
        connect = _connector(options.connect)
        self.dsn = redact_dsn(dsn)
        args: tuple[Any, ...] = (dsn, *options.args)
        kwargs = dict(options.kwargs)
        if options.connect == "sqlite3:connect" and not kwargs and dsn != ":memory:":
            path = Path(dsn)
            if not path.is_file():
                raise InputError(f"SQLite database not found: {dsn}")
            # read-only: mapping never writes to the source, and a typo never creates an empty database
            args = (f"file:{quote(str(path.resolve()))}?mode=ro", *options.args)
            kwargs = {"uri": True}
        try:
            self._conn = connect(*args, **kwargs)
        except Exception as exc:  # DB-API errors are driver-specific classes
            raise InputError(f"cannot connect to {self.dsn}: {exc}") from exc
        try:
            self._cursor = self._conn.cursor()
            if options.params:
                self._cursor.execute(options.query, options.params)
            else:
                self._cursor.execute(options.query)
            description = self._cursor.description
        except Exception as exc:
            self._conn.close()
            raise InputError(f"{self.dsn}: the query in source.query failed: {exc}") from exc
        if not description:
            self._conn.close()
            raise ConfigError("the query returns no columns (is it a SELECT?)", key="source.query")
        self.columns: tuple[str, ...] | None = tuple(str(d[0]) for d in description)
        self.details: dict[str, Any] = {"format": "sql", "dsn": self.dsn, "columns": list(self.columns)}
        self._done = 0

    def rows(self) -> Iterator[tuple[int, Row | BadRow]]:
        number = 0
        while True:
            try:
                batch = self._cursor.fetchmany(_FETCH)
            except Exception as exc:
                raise InputError(f"{self.dsn}: reading the query result failed after row {number}: {exc}") from exc
            if not batch:
                return
            for record in batch:
                number += 1
                self._done = number
                try:
                    texts: Row | BadRow = [cell_text(v) for v in record]
                except TypeError:
                    texts = BadRow("a column holds binary data", "某列含二进制数据")
                yield number, texts

    def progress(self) -> tuple[int, int | None]:
        return self._done, None

    def close(self) -> None:
        try:
            self._conn.close()
        except Exception:  # pragma: no cover - closing a broken connection
            pass
