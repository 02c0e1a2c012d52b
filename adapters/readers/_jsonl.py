"""JSON Lines: one JSON object per line; numbers are read as Decimal, never float."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any, BinaryIO

from adapters.readers._base import BadRow, ReaderOptions, Row
from adapters.readers._encoding import SAMPLE_BYTES, resolve_encoding
from node.errors import InputError

__all__ = ["JsonLinesSource"]


class JsonLinesSource:
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
        except BaseException:
            self._raw.close()
            raise
        self.columns: tuple[str, ...] | None = None
        self.details: dict[str, Any] = {"format": "jsonl", "encoding": self.encoding}
        self._text = io.TextIOWrapper(self._raw, encoding=self.encoding)

    def rows(self) -> Iterator[tuple[int, Row | BadRow]]:
        loads = json.loads
        number = 0
        lines = iter(self._text)
        while True:
            try:
                line = next(lines)
            except StopIteration:
                return
            except UnicodeDecodeError as exc:
                raise InputError(
                    f"{self.path}: line {number + 1} is not valid {self.encoding} ({exc.reason}); "
                    "set source.encoding in the mapping"
                ) from exc
            number += 1
            if not line.strip():
                continue
            text = line.strip()
            try:
                obj = loads(text, parse_float=Decimal)
            except json.JSONDecodeError as exc:
                yield number, BadRow(
                    f"not valid JSON: {exc.msg} at character {exc.pos + 1}",
                    f"不是有效的JSON：第{exc.pos + 1}个字符处 {exc.msg}",
                    text[:200],
                )
                continue
            except ValueError as exc:  # e.g. a number too large to convert
                yield number, BadRow(f"not valid JSON: {exc}", f"不是有效的JSON：{exc}", text[:200])
                continue
            if not isinstance(obj, dict):
                yield number, BadRow(
                    f"a line must hold a JSON object, not {type(obj).__name__}",
                    "每行必须是一个JSON对象",
                    text[:200],
                )
                continue
            yield number, obj

    def progress(self) -> tuple[int, int | None]:
        try:
            return self._raw.tell(), self._total
        except (OSError, ValueError):
            return 0, self._total

    def close(self) -> None:
        self._raw.close()
