"""Readers: CSV (GB18030/GBK/UTF-8), JSON Lines, Excel .xlsx and SQL queries, yielding numbered rows.

Row numbers are what a person looking at the source sees: the line number in
a CSV or JSON Lines file (the header is line 1), the sheet row in Excel, the
1-based result row of a query.
"""

from __future__ import annotations

from pathlib import Path

from adapters.readers._base import FORMATS, BadRow, Block, FlatRows, ReaderOptions, Row, Source, iter_blocks
from adapters.readers._encoding import detect_encoding, resolve_encoding
from adapters.readers._sql import redact_dsn
from node.errors import ConfigError

__all__ = [
    "FORMATS",
    "BadRow",
    "Block",
    "FlatRows",
    "ReaderOptions",
    "Row",
    "Source",
    "detect_encoding",
    "format_for",
    "iter_blocks",
    "open_source",
    "redact_dsn",
    "resolve_encoding",
]

_SUFFIXES = {
    ".csv": "csv",
    ".tsv": "csv",
    ".txt": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".xlsx": "xlsx",
    ".xlsm": "xlsx",
    ".db": "sql",
    ".sqlite": "sql",
    ".sqlite3": "sql",
}


def format_for(input_name: str, options: ReaderOptions) -> str:
    """The reader format: the mapping's ``source.format``, else the input's suffix."""
    if options.format is not None:
        if options.format not in FORMATS:
            raise ConfigError(f"format must be one of {', '.join(FORMATS)}, not {options.format!r}", key="source.format")
        return options.format
    found = _SUFFIXES.get(Path(input_name).suffix.lower())
    if found is None:
        raise ConfigError(
            f"cannot tell the format of {input_name!r} from its name; set source.format "
            f"({', '.join(FORMATS)})",
            key="source.format",
        )
    return found


def open_source(input_name: str, options: ReaderOptions) -> Source:
    """Open an input (a file path, or a DSN for ``sql``). The caller closes it."""
    fmt = format_for(input_name, options)
    if fmt == "csv":
        from adapters.readers._csv import CsvSource

        return CsvSource(Path(input_name), options)
    if fmt == "jsonl":
        from adapters.readers._jsonl import JsonLinesSource

        return JsonLinesSource(Path(input_name), options)
    if fmt == "xlsx":
        from adapters.readers._xlsx import XlsxSource

        return XlsxSource(Path(input_name), options)
    from adapters.readers._sql import SqlSource

    return SqlSource(input_name, options)
