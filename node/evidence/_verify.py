"""Offline verification of an evidence chain (from the store or an exported file)."""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ed25519

from node.errors import InputError
from node.evidence._entry import GENESIS_HASH, EvidenceEntry
from node.pki import key_id

__all__ = ["Finding", "VerifyReport", "verify_entries", "read_export", "verify_file"]

_WINDOW = 4096  # how many recent hashes are kept to check links of out-of-order entries
_SEARCH = 64  # how far from its position a moved entry is looked for


@dataclass(frozen=True)
class Finding:
    seq: int
    problem: str  # altered | removed | reordered | duplicate | bad-signature | unknown-key | broken-link | anchor
    message: str

    def __str__(self) -> str:
        return f"seq {self.seq}: {self.problem}: {self.message}"


@dataclass(frozen=True)
class VerifyReport:
    entries: int
    head_seq: int
    head_hash: str
    findings: tuple[Finding, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return not self.findings


def _written_seq(entry: EvidenceEntry) -> int | None:
    """The seq an entry was written with, if it is within reach of where it sits now."""
    for delta in range(1, _SEARCH + 1):
        for candidate in (entry.seq + delta, entry.seq - delta):
            if candidate >= 1 and entry.computed_hash(candidate) == entry.hash:
                return candidate
    return None


def verify_entries(
    entries: Iterable[EvidenceEntry],
    public_keys: Sequence[ed25519.Ed25519PublicKey],
    *,
    anchor: tuple[int, str] | None = None,
) -> VerifyReport:
    """Check hashes, signatures, sequence and links of a chain given in stored order.

    Detects an altered entry (content no longer matches its hash, or a re-computed
    hash without a valid signature), a removed entry (a gap in seq), a reordered
    entry (an entry sitting at another seq than it was written with, or a seq that
    comes after a higher one) and a broken link. Removing the newest entries leaves
    a valid shorter chain: pass ``anchor=(seq, hash)`` recorded earlier (``audit tail``
    shows it) to detect that.
    """
    keys = {key_id(k): k for k in public_keys}
    findings: list[Finding] = []
    recent: OrderedDict[int, str] = OrderedDict()
    flagged: set[int] = set()
    missing: set[int] = set()
    max_seq = 0
    count = 0
    head_seq, head_hash = 0, GENESIS_HASH
    anchor_seen = False

    for entry in entries:
        count += 1
        seq = entry.seq
        bad = False
        if entry.computed_hash() != entry.hash:
            bad = True
            written = _written_seq(entry)
            if written is not None:
                findings.append(Finding(seq, "reordered", f"the entry stored at seq {seq} was written as "
                                                          f"seq {written} (entries were moved)"))
            else:
                findings.append(Finding(seq, "altered", f"its content no longer matches its hash "
                                                        f"({entry.kind} by {entry.actor} at {entry.time})"))
        else:
            key = keys.get(entry.key_id)
            if key is None:
                bad = True
                findings.append(Finding(seq, "unknown-key", f"signed by key {entry.key_id}, which is not among "
                                                            "the public keys given"))
            elif not entry.signature_ok(key):
                bad = True
                findings.append(Finding(seq, "bad-signature", "the signature does not verify: the entry was "
                                                              "altered and its hash recomputed"))
        if seq <= max_seq:
            bad = True
            if seq in missing:
                missing.discard(seq)
                findings.append(Finding(seq, "reordered", f"seq {seq} appears after seq {max_seq}"))
            else:
                findings.append(Finding(seq, "duplicate", f"seq {seq} appears more than once"))
        else:
            if seq > max_seq + 1:
                missing.update(range(max_seq + 1, seq))
            max_seq = seq
            head_seq, head_hash = seq, entry.hash
        expected_prev = GENESIS_HASH if seq == 1 else recent.get(seq - 1)
        if not bad and expected_prev is not None and (seq - 1) not in flagged and entry.prev_hash != expected_prev:
            bad = True
            findings.append(Finding(seq, "broken-link", f"prev_hash does not match the hash of seq {seq - 1}: an "
                                                        "entry before it was altered, removed or reordered"))
        if bad:
            flagged.add(seq)
        recent[seq] = entry.hash
        if len(recent) > _WINDOW:
            recent.popitem(last=False)
        if anchor is not None and seq == anchor[0]:
            anchor_seen = True
            if entry.hash != anchor[1]:
                findings.append(Finding(seq, "anchor", f"hash {entry.hash[:16]}… differs from the anchor "
                                                       f"{anchor[1][:16]}…"))
    for first, last in _ranges(sorted(missing)):
        span = f"seq {first}" if first == last else f"seqs {first}..{last}"
        findings.append(Finding(first, "removed", f"{span} missing: entries were removed"))
    if anchor is not None and not anchor_seen:
        findings.append(Finding(anchor[0], "anchor", f"the log ends at seq {max_seq} but the anchor names seq "
                                                     f"{anchor[0]}: entries were removed from its end"))
    findings.sort(key=lambda f: f.seq)
    return VerifyReport(entries=count, head_seq=head_seq, head_hash=head_hash, findings=tuple(findings))


def _ranges(values: list[int]) -> Iterator[tuple[int, int]]:
    if not values:
        return
    start = prev = values[0]
    for v in values[1:]:
        if v != prev + 1:
            yield start, prev
            start = v
        prev = v
    yield start, prev


def read_export(path: Path) -> Iterator[EvidenceEntry]:
    """Entries from an exported JSON Lines file, in file order."""
    path = Path(path)
    try:
        fh = path.open(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"{path}: cannot read the evidence export: {exc.strerror}") from exc
    with fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                doc = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(f"{path}:{lineno}: not JSON ({exc.msg})") from exc
            if not isinstance(doc, dict):
                raise InputError(f"{path}:{lineno}: an entry must be a JSON object")
            yield EvidenceEntry.from_dict(doc, f"{path}:{lineno}")


def verify_file(path: Path, public_keys: Sequence[ed25519.Ed25519PublicKey],
                *, anchor: tuple[int, str] | None = None) -> VerifyReport:
    return verify_entries(read_export(path), public_keys, anchor=anchor)
