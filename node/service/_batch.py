"""A pushed batch on its way into the store: decoded, checked, validated and encoded.

:func:`prepare_records` is the first stage of :meth:`NodeCore.ingest` (no store access).
It runs in the node's process (:meth:`NodeCore.prepare`) or, for the gRPC Push stream,
in a helper process (:mod:`node.service._prepare_pool`) that hands the result back with
:func:`pack` / :func:`unpack`. Either way the verdicts and the bytes stored are the same:
the good records leave this stage with their canonical JSON (as the store writes it,
:func:`node.store.canonical_body`) and its content hash, so the store's stage only writes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, overload

import orjson

from node.errors import InputError
from node.jsonenc import canonical_bytes
from node.store import RECORD_ID_RE, PackedBodies, PackedDigests
from node.validation import MAX_RECORD_BYTES, Validator, Violation, decode_flat, decode_record

try:  # the common batch's decoding, checks, bodies and digests in one C call (optional: setup.py)
    from node import _fastprep
except ImportError:  # not built: _prepare_flat does it in Python
    _fastprep = None  # type: ignore[assignment]

__all__ = ["RecordOutcome", "PreparedBatch", "EncodedRecords", "prepare_records", "prepare_packed", "pack", "compact", "unpack",
           "Packed", "STORED", "UNCHANGED", "REJECTED"]

STORED, UNCHANGED, REJECTED = "stored", "unchanged", "rejected"

_dumps = orjson.dumps
_loads = orjson.loads
_SORTED = orjson.OPT_SORT_KEYS
_blake2b = hashlib.blake2b
_JSONDecodeError = orjson.JSONDecodeError


@dataclass(frozen=True, slots=True)
class RecordOutcome:
    """What happened to one pushed record."""

    id: str
    status: str  # stored | unchanged | rejected
    version: int = 0
    violations: tuple[Violation, ...] = ()  # the violations (rejected) or warnings (accepted)
    error: str | None = None  # why the record could not be validated at all

    @property
    def accepted(self) -> bool:
        return self.status != REJECTED


class EncodedRecords(Sequence[tuple[str, Mapping[str, Any]]]):
    """The good records of a batch prepared in another process: their ids and canonical bodies.

    Reads as a sequence of ``(id, record)`` pairs like :attr:`PreparedBatch.good`; a
    record is decoded from its body only when it is read (the store takes the bodies).
    """

    __slots__ = ("ids", "bodies")

    def __init__(self, ids: list[str], bodies: Sequence[bytes]) -> None:
        self.ids = ids
        self.bodies = bodies

    def __len__(self) -> int:
        return len(self.ids)

    @overload
    def __getitem__(self, index: int) -> tuple[str, Mapping[str, Any]]: ...

    @overload
    def __getitem__(self, index: slice) -> list[tuple[str, Mapping[str, Any]]]: ...

    def __getitem__(self, index: int | slice) -> tuple[str, Mapping[str, Any]] | list[tuple[str, Mapping[str, Any]]]:
        if isinstance(index, slice):
            return [(i, _loads(b)) for i, b in zip(self.ids[index], self.bodies[index], strict=True)]
        return self.ids[index], _loads(self.bodies[index])

    def __iter__(self) -> Iterator[tuple[str, Mapping[str, Any]]]:
        for i, b in zip(self.ids, self.bodies, strict=True):
            yield i, _loads(b)


@dataclass(frozen=True, slots=True)
class PreparedBatch:
    """A decoded and validated batch, ready for :meth:`NodeCore.commit`."""

    dataset: str
    outcomes: list[RecordOutcome | None]  # the rejections, by position; None where the record is good
    good: Sequence[tuple[str, Mapping[str, Any]]]
    good_at: list[int]
    warnings: dict[int, tuple[Violation, ...]]
    #: the canonical JSON (UTF-8) of each good record and its content hash, when this stage made them
    #: (None: the store encodes ``good`` itself)
    bodies: Sequence[bytes] | None = None  # a list, or node.store.PackedBodies from the prepare helper
    digests: Sequence[bytes] | None = None  # None with bodies: the store's stage hashes them

    def good_ids(self) -> list[str]:
        good = self.good
        if isinstance(good, EncodedRecords):
            return good.ids
        return [g[0] for g in good]


def _encode(data: Mapping[str, Any], decoded: bool) -> bytes:
    """The canonical JSON of a record (:func:`node.jsonenc.canonical_bytes`).

    A record decoded from JSON holds no NaN or infinity and only string keys, so orjson's
    sorted output is the canonical form as it is (an integer beyond 64 bits makes orjson
    refuse: canonical_bytes then takes the stdlib encoder).
    """
    if decoded:
        try:
            return _dumps(data, option=_SORTED)
        except TypeError:
            pass
    return canonical_bytes(data)


_FLAT_TYPES = frozenset({str, int, bool, type(None)})


def _prepare_flat(validator: Validator, dataset_id: str, rtype: str,
                  records: Sequence[tuple[str, bytes | str | Mapping[str, Any]]],
                  hash_bodies: bool, datas: list[dict[str, Any]]) -> PreparedBatch | None:
    """:func:`prepare_records` of the common batch, in fewer steps; None for any other batch.

    ``datas`` (empty) receives the records decoded on the way, in order: when this returns
    None, the first ``len(datas)`` records are what :func:`decode_flat` gives for them, so
    the general path need not decode them again.

    The common batch: every payload is bytes that :func:`decode_flat` decodes (a flat
    JSON object, see there why that equals decode_record) and carries the record id it is
    pushed under, which is a good id. Each record then takes the general path's steps
    with the same results: the ids need no other check, validation reports come only for
    the records that are not clean (:meth:`Validator.unclear`), and bodies and digests
    are those the general path writes for decoded records.

    With node._fastprep built, one C call decodes, checks, encodes and hashes the batch when
    its records are of a narrower form still (see node/_fastprep.c); otherwise it answers
    None and the loop below runs. Its bodies and digests are made before validating (the
    validator reads the records, it does not change them).
    """
    fast = _fastprep.flat_batch(records, MAX_RECORD_BYTES, hash_bodies) if _fastprep is not None else None
    if fast is not None:
        datas.extend(fast[0])
    else:
        loads, flat, limit, match_id = _loads, _FLAT_TYPES, MAX_RECORD_BYTES, RECORD_ID_RE.match
        append = datas.append
        try:
            for rid, payload in records:
                if payload.__class__ is not bytes or len(payload) > limit:
                    return None
                data = loads(payload)
                if data.__class__ is not dict or not flat.issuperset(map(type, data.values())) or \
                        data.get("id") != rid or not match_id(rid):
                    return None
                append(data)
        except _JSONDecodeError:
            return None
    unclear = validator.unclear(datas, rtype)
    if unclear is None:
        return None
    n = len(datas)
    outcomes: list[RecordOutcome | None] = [None] * n
    warnings: dict[int, tuple[Violation, ...]] = {}
    if unclear:
        for i, report in unclear.items():
            if not report.valid:
                outcomes[i] = RecordOutcome(records[i][0], REJECTED, violations=report.violations, error=report.error)
            elif report.violations:
                warnings[i] = report.violations
        good_at = [i for i in range(n) if outcomes[i] is None]
        good = [(records[i][0], datas[i]) for i in good_at]
    else:
        good_at = list(range(n))
        good = [(rid, data) for (rid, _p), data in zip(records, datas, strict=True)]
    if fast is not None:
        bodies, digests = fast[1], fast[2]
        if len(good_at) != n:
            bodies = [bodies[i] for i in good_at]
            if digests is not None:
                digests = [digests[i] for i in good_at]
        return PreparedBatch(dataset_id, outcomes, good, good_at, warnings, bodies, digests)
    dumps, sort = _dumps, _SORTED
    try:
        bodies = [dumps(data, option=sort) for _rid, data in good]
    except TypeError:  # an integer beyond 64 bits: the general path encodes it with the stdlib
        return None
    digests = [_blake2b(body, digest_size=16).digest() for body in bodies] if hash_bodies else None
    return PreparedBatch(dataset_id, outcomes, good, good_at, warnings, bodies, digests)


def prepare_records(validator: Validator, dataset_id: str, rtype: str,
                    records: Sequence[tuple[str, bytes | str | Mapping[str, Any]]], *,
                    hash_bodies: bool = True) -> PreparedBatch:
    """Decode, check ids, validate and encode a batch: :meth:`NodeCore.prepare` without the lookups.

    ``hash_bodies`` False: ``digests`` is left None (the store's stage hashes the bodies).
    """
    flat_prefix: list[dict[str, Any]] = []
    fast = _prepare_flat(validator, dataset_id, rtype, records, hash_bodies, flat_prefix)
    if fast is not None:
        return fast
    decoded_already = len(flat_prefix)
    match_id = RECORD_ID_RE.match
    n = len(records)
    outcomes: list[RecordOutcome | None] = [None] * n
    # records that decode and carry a good id, then validated in one call
    candidates: list[tuple[str, Mapping[str, Any]]] = []
    at: list[int] = []
    decoded_flags: list[bool] = []
    for i, (rid, payload) in enumerate(records):
        data: Mapping[str, Any]
        cls = payload.__class__
        decoded = cls is bytes or cls is str or isinstance(payload, bytes | str)
        if decoded:
            flat: dict[str, Any] | None = None
            if i < decoded_already:
                flat = flat_prefix[i]
            elif cls is bytes:
                flat = decode_flat(payload)  # type: ignore[arg-type]
            if flat is not None:
                data = flat
            else:
                try:
                    data = decode_record(payload)  # type: ignore[arg-type]
                except InputError as exc:
                    outcomes[i] = RecordOutcome(rid, REJECTED, error=f"payload: {exc.message}")
                    continue
        else:
            data = payload  # type: ignore[assignment]
        inner = data.get("id")
        if not rid:
            rid = inner if isinstance(inner, str) else ""
        if not match_id(rid):
            outcomes[i] = RecordOutcome(rid, REJECTED, error=f"bad record id {rid!r}: it must match "
                                        f"{RECORD_ID_RE.pattern}")
            continue
        if inner is not None and inner != rid:
            outcomes[i] = RecordOutcome(rid, REJECTED, error=f"the payload's id {inner!r} differs from the "
                                        f"record id {rid!r}")
            continue
        candidates.append((rid, data))
        at.append(i)
        decoded_flags.append(decoded)
    reports = validator.validate_many([c[1] for c in candidates], rtype)
    good: list[tuple[str, Mapping[str, Any]]] = []
    good_at: list[int] = []
    bodies: list[bytes] = []
    digests: list[bytes] = []
    warnings: dict[int, tuple[Violation, ...]] = {}
    for (rid, data), i, decoded, report in zip(candidates, at, decoded_flags, reports, strict=True):
        if not report.valid:
            outcomes[i] = RecordOutcome(rid, REJECTED, violations=report.violations, error=report.error)
            continue
        if report.violations:
            warnings[i] = report.violations
        try:
            body = _encode(data, decoded)
        except (TypeError, ValueError) as exc:
            raise InputError(f"record {rid!r}: not JSON-serialisable ({exc})") from exc
        good.append((rid, data))
        good_at.append(i)
        bodies.append(body)
        if hash_bodies:
            digests.append(_blake2b(body, digest_size=16).digest())
    return PreparedBatch(dataset_id, outcomes, good, good_at, warnings, bodies, digests if hash_bodies else None)


#: a prepared batch as it crosses a process boundary (without the decoded records):
#: (dataset, size, rejections {position: outcome}, ids, bodies, good_at or None for 0..n-1, warnings,
#: digests or None when the batch was prepared without hashing); bodies and digests are lists, or
#: packed in one bytes each (node.store.PackedBodies, PackedDigests: see :func:`compact`)
Packed = tuple[str, int, dict[int, RecordOutcome], list[str], Sequence[bytes], list[int] | None,
               dict[int, tuple[Violation, ...]], Sequence[bytes] | None]


def pack(prepared: PreparedBatch) -> Packed:
    assert prepared.bodies is not None
    n = len(prepared.outcomes)
    rejections = {i: o for i, o in enumerate(prepared.outcomes) if o is not None}
    good_at = None if len(prepared.good_at) == n else prepared.good_at
    return (prepared.dataset, n, rejections, prepared.good_ids(), prepared.bodies, good_at, prepared.warnings,
            prepared.digests)


def _prepare_columns(validator: Validator, dataset_id: str, rtype: str,
                     records: Sequence[tuple[str, bytes | str | Mapping[str, Any]]]) -> Packed | None:
    """``pack(prepare_records(...))`` of the common batch without a dict per record; None for any other.

    The batch :func:`_prepare_flat` takes with node._fastprep's ``flat_batch`` (the same pairs,
    bodies and digests), read by ``flat_columns`` into columns that
    :meth:`Validator.unclear_rows` checks. The records it names, and those the columns cannot
    tell about (a key the type does not have, a "type" other than null or ``rtype``: ``odd``),
    are decoded (``datas[i]`` is orjson's) and given to :meth:`Validator.unclear` as
    :func:`_prepare_flat` gives them; every other record is clean, as ``unclear`` would say.
    """
    allowed = validator.column_keys(rtype) if _fastprep is not None else None
    if allowed is None:
        return None  # no column check for this type (or engine): the general step
    fast = _fastprep.flat_columns(records, MAX_RECORD_BYTES, True, allowed, rtype)
    if fast is None:
        return None
    columns, odd, bodies, digests = fast
    bad = validator.unclear_rows(rtype, columns)
    if bad is None:
        return None
    n = len(bodies)
    rejections: dict[int, RecordOutcome] = {}
    warnings: dict[int, tuple[Violation, ...]] = {}
    if bad or odd:
        at = sorted(set(bad).union(odd)) if odd else bad
        unclear = validator.unclear([_loads(records[i][1]) for i in at], rtype)  # type: ignore[arg-type]
        if unclear is None:
            return None
        for j, report in unclear.items():  # in order, as _prepare_flat's
            i = at[j]
            if not report.valid:
                rejections[i] = RecordOutcome(records[i][0], REJECTED, violations=report.violations,
                                              error=report.error)
            elif report.violations:
                warnings[i] = report.violations
    ids: list[str] = columns["id"]
    if not rejections:
        return dataset_id, n, rejections, ids, bodies, None, warnings, digests
    good_at = [i for i in range(n) if i not in rejections]
    return (dataset_id, n, rejections, [ids[i] for i in good_at], [bodies[i] for i in good_at], good_at, warnings,
            None if digests is None else [digests[i] for i in good_at])


def prepare_packed(validator: Validator, dataset_id: str, rtype: str,
                   records: Sequence[tuple[str, bytes | str | Mapping[str, Any]]]) -> Packed:
    """``pack(prepare_records(validator, dataset_id, rtype, records))``, the same for every input:
    the common batch by columns (:func:`_prepare_columns`), any other the usual way."""
    packed = _prepare_columns(validator, dataset_id, rtype, records)
    return packed if packed is not None else pack(prepare_records(validator, dataset_id, rtype, records))


def compact(packed: Packed) -> Packed:
    """``packed`` with its bodies and digests packed in one ``bytes`` each (the prepare helper's
    answer: two objects to unpickle instead of two per record, and a batch of new records the
    store inserts with one statement); as it is when they cannot be packed."""
    dataset, n, rejections, ids, bodies, good_at, warnings, digests = packed
    if digests is None:
        return packed
    packed_bodies, packed_digests = PackedBodies.of(bodies), PackedDigests.of(digests)
    if packed_bodies is None or packed_digests is None:
        return packed
    return dataset, n, rejections, ids, packed_bodies, good_at, warnings, packed_digests


def unpack(packed: Packed) -> PreparedBatch:
    dataset, n, rejections, ids, bodies, good_at, warnings, digests = packed
    if not len(ids) == len(bodies) == (n if good_at is None else len(good_at)) or len(ids) + len(rejections) != n \
            or (digests is not None and len(digests) != len(ids)):
        raise RuntimeError(f"a prepared batch came back inconsistent: {n} records, {len(ids)} good, "
                           f"{len(rejections)} rejected")
    outcomes: list[RecordOutcome | None] = [None] * n
    for i, o in rejections.items():
        outcomes[i] = o
    return PreparedBatch(dataset, outcomes, EncodedRecords(ids, bodies), list(range(n)) if good_at is None else good_at,
                         warnings, bodies, digests)
