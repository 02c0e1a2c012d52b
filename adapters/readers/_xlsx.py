"""Excel .xlsx through openpyxl in read-only mode (streams rows, never loads the sheet whole)."""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from adapters.readers._base import BadRow, ReaderOptions, Row
from adapters.readers._cells import cell_text
from node.errors import ConfigError, InputError

__all__ = ["XlsxSource"]


class XlsxSource:
    def __init__(self, path: Path, options: ReaderOptions) -> None:
        import openpyxl
        from openpyxl.utils.exceptions import InvalidFileException

        self.path = path
        if not path.is_file():
            raise InputError(f"cannot read input {path}: no such file")
        try:
            self._wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
        except (InvalidFileException, zipfile.BadZipFile, KeyError, OSError) as exc:
            raise InputError(f"cannot read {path} as an .xlsx workbook: {exc}") from exc
        try:
            self._ws = self._sheet(options.sheet)
            if options.header_row < 1:
                raise ConfigError("header_row is 1-based", key="source.header_row")
            self._header_row = options.header_row
            self._rows = self._ws.iter_rows(min_row=options.header_row, values_only=True)
            header_cells = next(self._rows, None)
            if header_cells is None:
                raise InputError(f"{path}: sheet {self._ws.title!r} has no row {options.header_row} (the header)")
            header = [(cell_text(c) or "").strip() for c in header_cells]
            while header and not header[-1]:
                header.pop()
            if not header:
                raise InputError(f"{path}: row {options.header_row} of sheet {self._ws.title!r} is empty")
        except BaseException:
            self._wb.close()
            raise
        self.columns: tuple[str, ...] | None = tuple(header)
        self._total = self._ws.max_row
        self._done = 0
        self.details: dict[str, Any] = {"format": "xlsx", "sheet": self._ws.title, "columns": list(header)}

    def _sheet(self, sheet: str | int | None) -> Any:
        names = self._wb.sheetnames
        if sheet is None:
            return self._wb[names[0]]
        if isinstance(sheet, int):
            if not 1 <= sheet <= len(names):
                raise ConfigError(f"the workbook has {len(names)} sheet(s), no sheet {sheet}", key="source.sheet")
            return self._wb[names[sheet - 1]]
        if sheet not in names:
            raise ConfigError(f"no sheet named {sheet!r} in {self.path} (sheets: {', '.join(names)})", key="source.sheet")
        return self._wb[sheet]

    def rows(self) -> Iterator[tuple[int, Row | BadRow]]:
        assert self.columns is not None
        width = len(self.columns)
        for offset, cells in enumerate(self._rows, start=1):
            number = self._header_row + offset
            self._done = number
            if all(c is None or (isinstance(c, str) and not c.strip()) for c in cells):
                continue  # an empty sheet row is not a record
            try:
                texts = [cell_text(c) for c in cells[:width]]
            except TypeError:
                yield number, BadRow("a cell holds binary data", "单元格含二进制数据")
                continue
            if len(texts) < width:
                texts.extend([None] * (width - len(texts)))
            yield number, texts

    def progress(self) -> tuple[int, int | None]:
        return self._done, self._total

    def close(self) -> None:
        self._wb.close()
