"""A batch's bodies and digests packed in one ``bytes`` each (read as sequences).

The prepare helper process hands a Push batch back to the node as one pickle. As lists,
its 500 bodies and 500 digests are a thousand objects to unpickle and, for the store, a
thousand values to copy and bind, all while holding the node's GIL. Packed, they are
two ``bytes`` and an offsets table, and the store inserts a batch of new records with
one statement that cuts each row's values out of them in SQLite
(:meth:`node.store.RecordsMixin.upsert_encoded`), without the GIL.

Both read as ``Sequence[bytes]`` (an item is cut when it is read), so every other path
takes them as it takes lists.
"""

from __future__ import annotations

import itertools
from abc import abstractmethod
from collections.abc import Iterator, Sequence
from typing import overload

__all__ = ["PackedBodies", "PackedDigests", "DIGEST_SIZE", "END_WIDTH"]

#: a content hash's size (blake2b-128)
DIGEST_SIZE = 16
#: the offsets table: the end of every body, as this many ASCII digits each, after a first 0
END_WIDTH = 10
_MAX_TOTAL = 10**END_WIDTH - 1


class _Packed(Sequence[bytes]):
    """Items cut out of one ``bytes`` on reading: a subclass gives their number and :meth:`_at`."""

    __slots__ = ()

    @abstractmethod
    def _at(self, i: int) -> bytes:
        """Item ``i`` (0 <= i < len(self))."""

    @overload
    def __getitem__(self, index: int) -> bytes: ...

    @overload
    def __getitem__(self, index: slice) -> list[bytes]: ...

    def __getitem__(self, index: int | slice) -> bytes | list[bytes]:
        n = len(self)
        if isinstance(index, slice):
            return [self._at(i) for i in range(*index.indices(n))]
        i = index.__index__()
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"{type(self).__name__} index out of range")
        return self._at(i)

    def __iter__(self) -> Iterator[bytes]:
        return map(self._at, range(len(self)))


class PackedBodies(_Packed):
    """Bodies one after the other in ``data``; ``ends`` holds 0 and then the end offset of
    each body, every number ``END_WIDTH`` ASCII digits (what SQLite's ``CAST(substr(...) AS
    INTEGER)`` reads). Make one with :meth:`of`."""

    __slots__ = ("data", "ends")

    def __init__(self, data: bytes, ends: bytes) -> None:
        if len(ends) < END_WIDTH or len(ends) % END_WIDTH or int(ends[-END_WIDTH:]) != len(data):
            raise ValueError("PackedBodies: the offsets table does not fit the data")
        self.data = data
        self.ends = ends

    @classmethod
    def of(cls, bodies: Sequence[bytes]) -> PackedBodies | None:
        """``bodies`` packed; None if one is not ``bytes`` or they hold more than the table can address."""
        if set(map(type, bodies)) - {bytes}:
            return None
        data = b"".join(bodies)
        if len(data) > _MAX_TOTAL:
            return None
        fmt = f"{{:0{END_WIDTH}d}}".format
        ends = "".join(map(fmt, itertools.accumulate(map(len, bodies), initial=0))).encode("ascii")
        return cls(data, ends)

    def __len__(self) -> int:
        return len(self.ends) // END_WIDTH - 1

    def _at(self, i: int) -> bytes:
        w = END_WIDTH
        return self.data[int(self.ends[i * w:i * w + w]):int(self.ends[i * w + w:i * w + 2 * w])]

    def __reduce__(self) -> tuple[type[PackedBodies], tuple[bytes, bytes]]:
        return PackedBodies, (self.data, self.ends)


class PackedDigests(_Packed):
    """``DIGEST_SIZE``-byte digests one after the other in ``data``. Make one with :meth:`of`."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        if len(data) % DIGEST_SIZE:
            raise ValueError(f"PackedDigests: {len(data)} bytes is not a whole number of {DIGEST_SIZE}-byte digests")
        self.data = data

    @classmethod
    def of(cls, digests: Sequence[bytes]) -> PackedDigests | None:
        """``digests`` packed; None unless every one is ``bytes`` of ``DIGEST_SIZE``."""
        if set(map(type, digests)) - {bytes} or set(map(len, digests)) - {DIGEST_SIZE}:
            return None
        return cls(b"".join(digests))

    def __len__(self) -> int:
        return len(self.data) // DIGEST_SIZE

    def _at(self, i: int) -> bytes:
        return self.data[i * DIGEST_SIZE:(i + 1) * DIGEST_SIZE]

    def __reduce__(self) -> tuple[type[PackedDigests], tuple[bytes]]:
        return PackedDigests, (self.data,)
