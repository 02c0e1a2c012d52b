"""Evidence details the caller vouches are plain are encoded to the same bytes, and verify."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from hypothesis import given
from hypothesis import strategies as st

from node.evidence import EvidenceLog
from node.evidence._entry import canonical, canonical_plain
from node.store import Store

_plain = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


@given(_plain)
def test_plain_values_encode_to_the_canonical_bytes(value: Any) -> None:
    assert canonical_plain(value) == canonical(value)


def test_hostile_plain_values_take_the_general_encoder() -> None:
    for value in ({"n": 2**80}, {"deep": [[[[["x"]]]]]}, {"zh": "人口", "esc": "\x00\"\\"}):
        assert canonical_plain(value) == canonical(value)
    for encode in (canonical, canonical_plain):  # a lone surrogate cannot be written as UTF-8 by either
        with pytest.raises(UnicodeEncodeError):
            encode({"id": "\ud800"})


def test_entries_appended_as_plain_verify(tmp_path: Path) -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    with Store(tmp_path / "s.db") as store:
        log = EvidenceLog(store, key)
        details = {"dataset": "inbox", "count": 2, "records": [["p1", 1], ["p\u00e9", 3]], "request_id": None}
        plain = log.append_many([("push.accepted", "A", details)], plain=True)
        general = log.append_many([("push.accepted", "A", details)])
        assert plain[0].details == general[0].details
        report = log.verify([key.public_key()])
        assert report.ok, report
