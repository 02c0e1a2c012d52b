"""Output files that appear whole or not at all (written beside the target, renamed at the end)."""

from __future__ import annotations

import os
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from node.errors import InputError

__all__ = ["AtomicText"]


class AtomicText:
    """A text file (or, with ``encoding=None``, a binary one) written beside ``path`` and renamed
    onto it when the ``with`` block ends without an error; removed otherwise."""

    def __init__(self, path: str | Path, *, encoding: str | None = "utf-8", newline: str | None = None) -> None:
        self.path = Path(path)
        self._tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.partial")
        self._encoding = encoding
        self._newline = newline
        self._fh: IO[Any] | None = None

    def __enter__(self) -> IO[Any]:
        try:
            if self._encoding is None:
                self._fh = self._tmp.open("wb", buffering=1 << 20)
            else:
                self._fh = self._tmp.open("w", encoding=self._encoding, newline=self._newline, buffering=1 << 20)
        except OSError as exc:
            raise InputError(f"cannot write {self.path}: {exc.strerror or exc}") from exc
        return self._fh

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._fh is not None
        try:
            self._fh.close()
        finally:
            if exc_type is None:
                try:
                    os.replace(self._tmp, self.path)
                except OSError as err:
                    self._tmp.unlink(missing_ok=True)
                    raise InputError(f"cannot write {self.path}: {err.strerror or err}") from err
            else:
                self._tmp.unlink(missing_ok=True)
