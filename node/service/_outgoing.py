"""Outgoing records: a page of stored rows becomes the encoded records of one batch.

:class:`RecordEncoder` (one per decision) turns raw store rows
(:meth:`node.store.Store.record_pages`) into an :class:`Encoded` batch:

- ``wire``: the records as the protobuf ``RecordBatch.records`` field (2), one
  ``Record`` per row (id, payload, version, deleted, modified_us), ready to be framed
  into a ``RecordBatch`` without building message objects;
- ``digest``: the batch digest that is signed (``schemas/proto/shulian/v1/common.proto``,
  :func:`node.service._signing.batch_digest`);
- ``evidence``: ``id@version\\n`` per record (stored ids), what the delivery evidence
  entry names or digests.

The payload of a record is its projection by the decision, as compact JSON:
``compact_bytes(decision.projector(record))`` (the stored body as it is when the
decision delivers every item unmasked). That is the general path, in Python. Where the
C accelerator ``node._fastread`` is built (``setup.py``), it does the same for
the records it can prove it handles identically (flat canonical bodies: see its
source) and calls the general path for the others; tests hold both to the same bytes.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import re
from collections.abc import Sequence
from types import ModuleType
from typing import Any, NamedTuple

import orjson

from node._generated.shulian.v1 import common_pb2
from node.jsonenc import compact_bytes
from node.policy import Decision, MaskMethod
from node.policy.decision import ProjectionPlan
from node.service._signing import digest_prefix, tail_digest
from node.store import RawRow
from node.store._reads import fast_module

__all__ = ["Encoded", "RecordEncoder", "load_body", "accelerated"]

log = logging.getLogger(__name__)

_fast: ModuleType | None = fast_module()
if _fast is None and importlib.util.find_spec("node._fastread") is not None:
    log.warning("node._fastread is stale or broken: rebuild it (pip install -e .); using the Python path")

# orjson turns an integer beyond 64 bits into a float; such bodies take the exact stdlib parser
_LONG_INTEGER = re.compile(rb"[0-9]{19}")
# a key the C path copies as it is must need no JSON escape
_PLAIN_KEY = re.compile(r'[^"\\\x00-\x1f]*')
_MASK_KINDS = {MaskMethod.REDACT: 1, MaskMethod.KEEP: 2}
_C_MAX_KEYS = 256  # MAX_KEYS in node/_fastread.c


class Encoded(NamedTuple):
    wire: bytes
    digest: bytes
    evidence: bytes


def accelerated() -> bool:
    """True when the C accelerator is built and current."""
    return _fast is not None


def load_body(body: bytes) -> Any:
    """Parse a stored (canonical, trusted) body exactly: orjson, or the stdlib for big integers."""
    if _LONG_INTEGER.search(body) is None:
        return orjson.loads(body)
    return json.loads(body)


def _c_plan(plan: ProjectionPlan) -> tuple[Any, ...] | None:
    """The plan in the C accelerator's terms, or None when it cannot carry it out."""
    names = [*(plan.keys or ()), *plan.withheld, *(k for k, _ in plan.masks)]
    if not all(_PLAIN_KEY.fullmatch(k) for k in names) or len(names) > _C_MAX_KEYS:
        return None
    masks = []
    try:
        for key, rule in plan.masks:
            kind = _MASK_KINDS.get(rule.method)
            if kind is None or key == "id":  # hashing, and a masked id, stay in Python
                return None
            masks.append((key.encode(), kind, rule.keep_first, rule.keep_last))
        keys = None if plan.keys is None else tuple(k.encode() for k in plan.keys)
        withheld = tuple(k.encode() for k in plan.withheld)
    except UnicodeEncodeError:
        return None
    return (keys, withheld, tuple(masks))


class RecordEncoder:
    """Encodes pages of rows for one decision (see the module docstring)."""

    def __init__(self, decision: Decision, *, accelerate: bool = True) -> None:
        self.decision = decision
        self.project = decision.projector
        self.digest_prefix = digest_prefix(decision.dataset_id)
        plan = decision.plan  # None: a projector that is not ours (a test double): call it on every record
        self.passthrough = plan is not None and plan.keys is None and not plan.withheld and not plan.masks
        self._plan: tuple[Any, ...] | None = None
        self._fast: ModuleType | None = None
        if accelerate and _fast is not None and plan is not None:
            if self.passthrough:
                self._fast = _fast
            else:
                self._plan = _c_plan(plan)
                self._fast = _fast if self._plan is not None else None

    @property
    def accelerated(self) -> bool:
        return self._fast is not None

    @property
    def plan(self) -> tuple[Any, ...] | None:
        """The plan in the accelerator's terms (None: the stored body as it is)."""
        return self._plan

    def general(self, row: RawRow) -> tuple[str, bytes]:
        """The id sent and the payload of one row, in Python."""
        rid, body = row[0], row[4]
        if row[3] or body is None:
            out: str = self.project({"id": rid}).get("id", rid)
            return out, b""
        if self.passthrough:
            return rid, body
        projected = self.project(load_body(body))
        return projected.get("id", rid), compact_bytes(projected)

    def encode(self, rows: Sequence[RawRow]) -> Encoded:
        if self._fast is not None:
            out = self._fast.encode_batch(list(rows), self._plan, self.general, self.digest_prefix)
            if out is not None:  # None: a row not as the store reads it (the Python path writes it, or raises)
                return Encoded(*out)
        return self.encode_python(rows)

    def encode_python(self, rows: Sequence[RawRow]) -> Encoded:
        """The general path for every row (what the accelerator is held to)."""
        batch = common_pb2.RecordBatch()
        add = batch.records.add
        tail: list[bytes] = []
        evidence: list[str] = []
        general = self.general
        for row in rows:
            rid, payload = general(row)
            version, modified_us = row[1], row[2]
            deleted = bool(row[3]) or row[4] is None
            if deleted:
                add(id=rid, version=version, modified_us=modified_us, deleted=True)
            else:
                add(id=rid, version=version, modified_us=modified_us, payload=payload)
            tail.append(b"%s\x00%d\x00%s\x00%d\x00%s" % (rid.encode("utf-8"), version, b"1" if deleted else b"0",
                                                         len(payload), payload))
            evidence.append(f"{row[0]}@{version}\n")
        return Encoded(batch.SerializeToString(), tail_digest(self.decision.dataset_id, b"".join(tail)),
                       "".join(evidence).encode("utf-8"))
