"""The evidence log: append (signed, hash-chained) and read, in the node's store."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ed25519

from node.errors import InputError
from node.evidence._entry import (
    GENESIS_HASH,
    KIND_RE,
    EvidenceEntry,
    canonical,
    canonical_plain,
    entry_hash_encoded,
    now_iso,
)
from node.evidence._verify import VerifyReport, verify_entries
from node.pki import key_id
from node.store import Store

__all__ = ["EvidenceLog"]

log = logging.getLogger(__name__)

_COLS = "seq, time, kind, actor, details, prev_hash, hash, key_id, signature"


def _row(row: Sequence[Any]) -> EvidenceEntry:
    try:
        details = json.loads(row[4])
    except (json.JSONDecodeError, TypeError):
        details = {"_unparseable": str(row[4])}
    if not isinstance(details, dict):
        details = {"_not_an_object": details}
    return EvidenceEntry(seq=row[0], time=row[1], kind=row[2], actor=row[3], details=details, prev_hash=row[5],
                         hash=row[6], key_id=row[7], signature=row[8])


class EvidenceLog:
    """Append-only, hash-chained, Ed25519-signed log kept in the store's ``evidence`` table.

    Appends take the store's write lock, so processes sharing the store (daemon and
    CLI) extend one chain. Inside ``store.transaction()`` an append commits together
    with the records it is evidence for.
    """

    def __init__(self, store: Store, signing_key: ed25519.Ed25519PrivateKey | None = None) -> None:
        self.store = store
        self._key = signing_key
        self._key_id = key_id(signing_key) if signing_key is not None else ""

    # ---- writing ----------------------------------------------------------------------
    def append(self, kind: str, actor: str, details: Mapping[str, Any] | None = None) -> EvidenceEntry:
        """Append one entry (e.g. ``append("access.granted", consumer_code, {...})``)."""
        return self.append_many([(kind, actor, details)])[0]

    def append_many(self, items: Iterable[tuple[str, str, Mapping[str, Any] | None]], *,
                    plain: bool = False) -> list[EvidenceEntry]:
        """Append several entries in one transaction (one fsync).

        ``plain``: the caller vouches that every details value is made only of dicts with
        string keys, lists, strings, integers, booleans and None (no float, tuple or
        subclass), so the details are encoded without looking at every value first (see
        :func:`node.evidence._entry.canonical`; the bytes are the same).
        """
        if self._key is None:
            raise InputError("the evidence log was opened without the node's signing key: it cannot append")
        prepared: list[tuple[str, str, dict[str, Any], bytes]] = []
        for kind, actor, details in items:
            if not isinstance(kind, str) or not KIND_RE.match(kind):
                raise InputError(f"bad evidence kind {kind!r}: use dotted lower-case names like 'access.granted'")
            if not isinstance(actor, str) or not actor:
                raise InputError("an evidence entry needs an actor")
            body = dict(details or {})
            try:
                encoded = canonical_plain(body) if plain else canonical(body)  # once: for the hash and the row
            except (TypeError, ValueError) as exc:
                raise InputError(f"evidence details for {kind} are not JSON-serialisable ({exc})") from exc
            prepared.append((kind, actor, body, encoded))
        if not prepared:
            return []
        out: list[EvidenceEntry] = []
        with self.store.transaction() as conn:
            last = conn.execute("SELECT seq, hash FROM evidence ORDER BY seq DESC LIMIT 1").fetchone()
            seq, prev = (last[0], last[1]) if last else (0, GENESIS_HASH)
            rows: list[tuple[Any, ...]] = []
            for kind, actor, body, encoded in prepared:
                seq += 1
                time = now_iso()
                digest = entry_hash_encoded(seq=seq, time=time, kind=kind, actor=actor, details_json=encoded,
                                            prev_hash=prev, key_id=self._key_id)
                signature = base64.b64encode(self._key.sign(bytes.fromhex(digest))).decode("ascii")
                entry = EvidenceEntry(seq=seq, time=time, kind=kind, actor=actor, details=body, prev_hash=prev,
                                      hash=digest, key_id=self._key_id, signature=signature)
                rows.append((seq, time, kind, actor, encoded.decode("utf-8"), prev, digest, self._key_id,
                             signature))
                out.append(entry)
                prev = digest
            conn.executemany(f"INSERT INTO evidence ({_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        return out

    # ---- reading ----------------------------------------------------------------------
    def entries(self, *, after: int = 0, limit: int | None = None, page_size: int = 1000) -> Iterator[EvidenceEntry]:
        """Entries with seq > ``after`` in seq order, read page by page."""
        remaining = limit
        cursor = after
        while True:
            size = page_size if remaining is None else min(page_size, remaining)
            if size <= 0:
                return
            with self.store.reader() as conn:
                rows = conn.execute(f"SELECT {_COLS} FROM evidence WHERE seq > ? ORDER BY seq LIMIT ?",
                                    (cursor, size)).fetchall()
            for r in rows:
                yield _row(r)
            if remaining is not None:
                remaining -= len(rows)
            if len(rows) < size:
                return
            cursor = rows[-1][0]

    def tail(self, n: int = 20) -> list[EvidenceEntry]:
        """The latest ``n`` entries, oldest first."""
        with self.store.reader() as conn:
            rows = conn.execute(f"SELECT {_COLS} FROM evidence ORDER BY seq DESC LIMIT ?", (n,)).fetchall()
        return [_row(r) for r in reversed(rows)]

    def head(self) -> EvidenceEntry | None:
        entries = self.tail(1)
        return entries[0] if entries else None

    def count(self) -> int:
        with self.store.reader() as conn:
            value: int = conn.execute("SELECT count(*) FROM evidence").fetchone()[0]
        return value

    # ---- checking and export ----------------------------------------------------------
    def verify(self, public_keys: Sequence[ed25519.Ed25519PublicKey] | None = None,
               *, anchor: tuple[int, str] | None = None) -> VerifyReport:
        """Verify the whole chain (keys default to the node's own public key)."""
        keys = list(public_keys) if public_keys else ([self._key.public_key()] if self._key else [])
        return verify_entries(self.entries(), keys, anchor=anchor)

    def export(self, path: Path) -> int:
        """Write every entry as one JSON line (canonical) to ``path``; returns the count."""
        path = Path(path)
        n = 0
        tmp = path.with_name(path.name + ".tmp")
        try:
            with tmp.open("w", encoding="utf-8") as fh:
                for entry in self.entries():
                    fh.write(canonical(entry.to_dict()).decode("utf-8") + "\n")
                    n += 1
            tmp.replace(path)
        except OSError as exc:
            raise InputError(f"{path}: cannot write the export: {exc.strerror}") from exc
        return n
