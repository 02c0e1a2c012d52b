"""Length-prefixed pickle frames between the engine and its validation workers (trusted pipes)."""

from __future__ import annotations

import pickle
import struct
from typing import IO, Any

__all__ = ["END", "frame", "read_frame", "write_frame"]

END = b"\0" * 8  # an empty frame: the worker stops
_HEADER = struct.Struct(">Q")


def frame(obj: Any) -> bytes:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    return _HEADER.pack(len(data)) + data


def write_frame(stream: IO[bytes], obj: Any) -> None:
    stream.write(frame(obj))
    stream.flush()


def read_frame(stream: IO[bytes]) -> Any:
    """The next object, or None at the end of the stream or on an empty frame."""
    header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        return None
    (size,) = _HEADER.unpack(header)
    if size == 0:
        return None
    data = stream.read(size)
    if len(data) < size:
        return None
    return pickle.loads(data)  # noqa: S301 - frames from our own parent process
