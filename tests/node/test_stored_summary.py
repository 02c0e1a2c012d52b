"""How a stored batch's evidence names its records: ``stored_summary`` answers what
``id_summary`` of the stored (id, version) pairs answers, by its shorter steps or not."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from node.service._core import EVIDENCE_ID_LIMIT, id_summary, stored_summary

IDS = st.text(alphabet="abcxyz019._~-张", min_size=1, max_size=12)


def _expected(ids: list[str], versions: list[object], changed: list[bool], limit: int) -> tuple[int, object]:
    pairs = [(i, v) for i, v, c in zip(ids, versions, changed, strict=True) if c]
    return len(pairs), id_summary(pairs, limit=limit)  # type: ignore[arg-type]


@settings(max_examples=300, deadline=None)
@given(st.data(), st.integers(0, 12), st.sampled_from([0, 1, 3, 5, 1000]))
def test_stored_summary_equals_id_summary(data: st.DataObject, n: int, limit: int) -> None:
    ids = data.draw(st.lists(IDS, min_size=n, max_size=n))
    uniform = data.draw(st.booleans())
    version = st.just(1) if uniform else st.one_of(st.integers(1, 5), st.just(True))
    versions = data.draw(st.lists(version, min_size=n, max_size=n))
    changed = data.draw(st.lists(st.booleans(), min_size=n, max_size=n)) if data.draw(st.booleans()) else [True] * n
    assert stored_summary(ids, versions, changed, limit=limit) == _expected(ids, versions, changed, limit)  # type: ignore[arg-type]


def test_a_push_sized_batch() -> None:
    ids = [f"q{i:07d}" for i in range(2500)]
    for versions in ([1] * 2500, [2] * 2500, [1] * 2499 + [2], [1] * 2499 + [True]):
        for n in (500, EVIDENCE_ID_LIMIT, EVIDENCE_ID_LIMIT + 1, 2500):
            got = stored_summary(ids[:n], versions[:n], [True] * n)
            assert got == _expected(ids[:n], versions[:n], [True] * n, EVIDENCE_ID_LIMIT)  # type: ignore[arg-type]
            assert repr(got) == repr(_expected(ids[:n], versions[:n], [True] * n, EVIDENCE_ID_LIMIT))  # type: ignore[arg-type]


def test_mismatched_lengths_fail_as_before() -> None:
    for ids, versions, changed in ((["a", "b"], [1], [True, True]), (["a"], [1, 1], [True]), (["a"], [1], [])):
        with pytest.raises(ValueError):
            _expected(ids, versions, changed, EVIDENCE_ID_LIMIT)  # type: ignore[arg-type]
        with pytest.raises(ValueError):
            stored_summary(ids, versions, changed)
