"""Types of the optional C module node._fastprep (node/_fastprep.c; built by setup.py)."""

from collections.abc import Sequence
from typing import Any

def flat_batch(
    pairs: Sequence[tuple[str, Any]], limit: int, hash_bodies: bool, /
) -> tuple[list[dict[str, Any]], list[bytes], list[bytes] | None] | None: ...
def blake2b_16(data: bytes, /) -> bytes: ...
