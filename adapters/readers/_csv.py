"""CSV (and TSV) in GB18030/GBK or UTF-8 with or without BOM."""

from __future__ import annotations

import codecs
import csv
import io
import logging
from collections.abc import Iterator, Sequence
from itertools import chain, islice, repeat
from pathlib import Path
from typing import Any, BinaryIO

from adapters.readers._base import BadRow, Block, FlatRows, ReaderOptions, Row
from adapters.readers._encoding import SAMPLE_BYTES, resolve_encoding
from node.errors import ConfigError, InputError

__all__ = ["CsvSource"]

log = logging.getLogger(__name__)

_SNIFF_DELIMITERS = ",\t;|"


class CsvSource:
    def __init__(self, path: Path, options: ReaderOptions) -> None:
        self.path = path
        try:
            self._raw: BinaryIO = path.open("rb")
        except OSError as exc:
            raise InputError(f"cannot read input {path}: {exc.strerror or exc}") from exc
        try:
            self._total = path.stat().st_size
            head = self._raw.read(SAMPLE_BYTES)
            self._raw.seek(0)
            self.encoding = resolve_encoding(options.encoding, head)
            try:
                sample = head.decode(self.encoding, errors="ignore")
            except LookupError as exc:  # pragma: no cover - resolve_encoding checked it
                raise ConfigError(str(exc), key="source.encoding") from exc
            self.delimiter = self._delimiter(options, sample)
            if len(options.quotechar) != 1:
                raise ConfigError("quotechar must be one character", key="source.quotechar")
            self.quotechar = options.quotechar
            self._text = io.TextIOWrapper(self._raw, encoding=self.encoding, newline="")
            self._reader = csv.reader(self._text, delimiter=self.delimiter, quotechar=options.quotechar)
            self._header_line = 0
            if options.header:
                header = self._read_header()
                if options.columns:
                    raise ConfigError(
                        "source.columns names the columns of a file without a header; set header = false",
                        key="source.columns",
                    )
            else:
                if not options.columns:
                    raise ConfigError("a CSV without a header row needs source.columns", key="source.columns")
                header = list(options.columns)
        except BaseException:
            self._raw.close()
            raise
        self.columns: tuple[str, ...] | None = tuple(header)
        self.details: dict[str, Any] = {
            "format": "csv",
            "encoding": self.encoding,
            "delimiter": self.delimiter,
            "columns": list(header),
        }

    def _delimiter(self, options: ReaderOptions, sample: str) -> str:
        if options.delimiter != "auto":
            if len(options.delimiter) != 1:
                raise ConfigError(
                    f"delimiter must be one character or 'auto', not {options.delimiter!r}", key="source.delimiter"
                )
            return options.delimiter
        try:
            return csv.Sniffer().sniff(sample[:8192], delimiters=_SNIFF_DELIMITERS).delimiter
        except csv.Error:
            log.info("%s: could not sniff the delimiter; using ','", self.path)
            return ","

    def _read_header(self) -> list[str]:
        try:
            for cells in self._reader:
                if any(c.strip() for c in cells):
                    self._header_line = self._reader.line_num
                    return [c.strip().lstrip("\ufeff") for c in cells]
        except UnicodeDecodeError as exc:
            raise self._decode_error(exc) from exc
        except csv.Error as exc:
            raise InputError(f"{self.path}: line {self._reader.line_num}: {exc}") from exc
        raise InputError(f"{self.path}: the file is empty (no header row)")

    def rows(self) -> Iterator[tuple[int, Row | BadRow]]:
        assert self.columns is not None
        width = len(self.columns)
        reader = self._reader
        prev = reader.line_num
        try:
            for cells in reader:
                start = prev + 1
                prev = reader.line_num
                if not cells:
                    continue  # an empty line is not a record
                yield start, self._checked(cells, width) if len(cells) != width else cells
        except UnicodeDecodeError as exc:
            raise self._decode_error(exc) from exc
        except csv.Error as exc:
            raise InputError(f"{self.path}: line {reader.line_num}: {exc}") from exc

    def blocks(self, size: int) -> Iterator[Block]:
        """Rows a block of lines at a time.

        A block of lines without the quote character is, by the CSV grammar, just lines split
        on the delimiter (a NUL is an ordinary character to the csv module since Python 3.11):
        that is done in C (``str.split`` mapped over the lines), several times faster than the
        csv module. A block with a quote goes through the csv
        module, which may read on past the block to finish a quoted field that spans lines.
        Row numbers are line numbers either way.
        """
        assert self.columns is not None
        width = len(self.columns)
        text = self._text
        delimiter, quote = self.delimiter, self.quotechar
        line = self._reader.line_num  # lines consumed so far (the header and anything before it)
        try:
            while True:
                lines = list(islice(text, size))
                if not lines:
                    return
                joined = "".join(lines)
                numbers: Sequence[int]
                if quote not in joined:
                    # every line exactly `width` cells (no empty line, no ragged row): one split
                    # of the whole block into a flat list of cells, in C
                    counts = list(map(str.count, lines, repeat(delimiter)))
                    crlf = "\r" in joined
                    if crlf and joined.count("\r") == joined.count("\r\n"):
                        joined, crlf = joined.replace("\r\n", "\n"), False
                    if min(counts) == max(counts) == width - 1 and not crlf:
                        flat = joined.replace("\n", delimiter).split(delimiter)
                        if flat[-1] == "" and len(flat) == len(lines) * width + 1:
                            flat.pop()  # after the last line's newline
                        if len(flat) == len(lines) * width:
                            numbers = range(line + 1, line + 1 + len(lines))
                            line += len(lines)
                            yield numbers, FlatRows(flat, width), False
                            continue
                    stripped = list(map(str.rstrip, lines, repeat("\r\n")))
                    chunk = list(map(str.split, stripped, repeat(delimiter)))
                    numbers = range(line + 1, line + 1 + len(lines))
                    line += len(lines)
                    if "" in stripped:  # empty lines are not records
                        numbers = [n for n, t in zip(numbers, stripped, strict=True) if t]
                        chunk = [c for c, t in zip(chunk, stripped, strict=True) if t]
                else:
                    numbers, chunk, line = self._quoted(lines, line)
                if not chunk:
                    continue
                if min(map(len, chunk)) == width == max(map(len, chunk)):
                    yield numbers, chunk, False
                    continue
                checked = [self._checked(cells, width) for cells in chunk]
                yield numbers, checked, any(isinstance(r, BadRow) for r in checked)
        except UnicodeDecodeError as exc:
            raise self._decode_error(exc) from exc

    def _quoted(self, lines: list[str], line: int) -> tuple[list[int], list[list[str]], int]:
        """The records of a block of lines with quotes, by the csv module; a quoted field may go
        on past the block's last line, and the reader then reads on from the file."""
        reader = csv.reader(chain(lines, self._text), delimiter=self.delimiter, quotechar=self.quotechar)
        numbers: list[int] = []
        records: list[list[str]] = []
        try:
            while reader.line_num < len(lines):
                start = line + reader.line_num + 1
                cells = next(reader, None)
                if cells is None:
                    break
                if cells:  # an empty line is not a record
                    numbers.append(start)
                    records.append(cells)
        except csv.Error as exc:
            raise InputError(f"{self.path}: line {line + reader.line_num}: {exc}") from exc
        return numbers, records, line + reader.line_num

    def _checked(self, cells: list[str], width: int) -> Row | BadRow:
        if len(cells) == width:
            return cells
        if len(cells) > width and not any(c.strip() for c in cells[width:]):
            return cells[:width]
        return BadRow(
            f"row has {len(cells)} fields, the header has {width} (a delimiter or quote inside a value?)",
            f"该行有{len(cells)}个字段，表头有{width}个（值中含分隔符或引号？）",
            self.delimiter.join(cells)[:200],
        )

    def _decode_error(self, exc: UnicodeDecodeError) -> InputError:
        """Find the first line that does not decode (text is decoded in chunks, so the
        exception alone does not say which line) and name it."""
        line = 0
        try:
            decoder = codecs.getincrementaldecoder(self.encoding)("strict")
            with self.path.open("rb") as fh:
                for raw in fh:
                    line += 1
                    decoder.decode(raw)
        except UnicodeDecodeError:
            pass
        except OSError:  # pragma: no cover - it was readable a moment ago
            line = 0
        where = f"line {line}" if line else "a line"
        return InputError(
            f"{self.path}: {where} is not valid {self.encoding} ({exc.reason}); "
            "set source.encoding in the mapping (e.g. gb18030 or utf-8)"
        )

    def progress(self) -> tuple[int, int | None]:
        try:
            return self._raw.tell(), self._total
        except (OSError, ValueError):
            return 0, self._total

    def close(self) -> None:
        self._raw.close()
