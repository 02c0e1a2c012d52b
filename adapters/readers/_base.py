"""What every reader yields: numbered rows, or a marker for a row that could not be read."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, Literal, Protocol

__all__ = ["BadRow", "Block", "FlatRows", "ReaderOptions", "Row", "Source", "FORMATS", "iter_blocks"]

FORMATS = ("csv", "jsonl", "xlsx", "sql")

# A row is a sequence of cell texts (csv, xlsx, sql: positions match Source.columns)
# or a mapping of key -> JSON value (jsonl). None is an empty cell.
Row = Sequence[str | None] | Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class BadRow:
    """A row that exists in the input but cannot be read as one (ragged, not JSON ...)."""

    reason: str
    reason_zh: str
    value: str = ""
    column: str = ""


@dataclass(frozen=True)
class ReaderOptions:
    """Reader configuration (the ``[source]`` table of a mapping file)."""

    format: str | None = None  # csv | jsonl | xlsx | sql; None: from the input's suffix
    encoding: str = "auto"  # csv/jsonl
    delimiter: str = ","  # csv; "auto" sniffs , \t ; |
    quotechar: str = '"'
    header: bool = True  # csv: the first row names the columns
    columns: tuple[str, ...] = ()  # csv without a header: the column names
    sheet: str | int | None = None  # xlsx: name or 1-based index; None: the first sheet
    header_row: int = 1  # xlsx: the row with the column names
    connect: str = "sqlite3:connect"  # sql: "module:callable" returning a DB-API connection
    query: str | None = None  # sql
    params: tuple[Any, ...] = ()  # sql: query parameters
    args: tuple[Any, ...] = ()  # sql: more positional args to connect() after the DSN
    kwargs: Mapping[str, Any] = field(default_factory=dict)  # sql: keyword args to connect()


class Source(Protocol):
    """An open input. ``columns`` is None for keyed rows (JSON Lines)."""

    columns: tuple[str, ...] | None
    details: dict[str, Any]  # what was detected or used (encoding, delimiter, sheet ...)

    def rows(self) -> Iterator[tuple[int, Row | BadRow]]: ...

    def progress(self) -> tuple[int, int | None]:
        """(done, total) in the reader's own unit (bytes or rows); total None if unknown."""
        ...

    def close(self) -> None: ...


Kind = Literal["list", "dict"]


class FlatRows(Sequence[list[str]]):
    """A block of equal-width rows kept as one flat list of cells (how the CSV reader's fast path
    splits a block of lines in one go). Rows are made on demand; ``columns`` are extended slices."""

    __slots__ = ("flat", "width", "rows")

    def __init__(self, flat: list[str], width: int) -> None:
        self.flat = flat
        self.width = width
        self.rows = len(flat) // width

    def __len__(self) -> int:
        return self.rows

    def __getitem__(self, i: int) -> list[str]:  # type: ignore[override]
        if not -self.rows <= i < self.rows:
            raise IndexError(i)
        i %= self.rows
        return self.flat[i * self.width : (i + 1) * self.width]

    def __iter__(self) -> Iterator[list[str]]:
        flat, width = self.flat, self.width
        return (flat[k : k + width] for k in range(0, self.rows * width, width))

    @property
    def columns(self) -> list[list[str]]:
        return [self.flat[k :: self.width] for k in range(self.width)]


# A block of rows: their numbers, the rows, and whether any of them is a BadRow.
Block = tuple[Sequence[int], "Sequence[Row | BadRow]", bool]


def iter_blocks(source: Source, size: int) -> Iterator[Block]:
    """The source's rows in blocks (a reader may provide a faster ``blocks(size)`` of its own)."""
    own = getattr(source, "blocks", None)
    if own is not None:
        yield from own(size)
        return
    rows = source.rows()
    while True:
        chunk = list(islice(rows, size))
        if not chunk:
            return
        numbers = [n for n, _ in chunk]
        items = [r for _, r in chunk]
        yield numbers, items, any(isinstance(r, BadRow) for r in items)
