"""Identifiers are checked whole: a value that is good but for a trailing newline is refused.

Python's ``$`` also matches before a final newline, so ``re.match(r"^[0-9]{6}$", "110105\\n")``
succeeds; every identifier pattern anchors its end with ``\\Z`` instead.
"""

from __future__ import annotations

import pytest

from node.config._codes import check_dataset_id, check_division_code, check_resource_code
from node.errors import InputError
from node.evidence._entry import KIND_RE
from node.policy._ids import is_credit_code
from node.store import RECORD_ID_RE
from node.transport.kafka._topics import check_topic_name

GOOD_CREDIT = "91110108551385082Q"


@pytest.mark.parametrize("tail", ["", "\n"])
def test_identifiers_with_a_trailing_newline_are_refused(tail: str) -> None:
    good = not tail
    assert (RECORD_ID_RE.match("p000001" + tail) is not None) is good
    assert (check_dataset_id("population" + tail) is None) is good
    assert (check_division_code("110105" + tail) is None) is good
    assert (check_resource_code("1010100/000001" + tail) is None) is good
    assert is_credit_code(GOOD_CREDIT + tail) is good
    assert (KIND_RE.match("push.accepted" + tail) is not None) is good
    if good:
        assert check_topic_name("shulian.population") == "shulian.population"
    else:
        with pytest.raises(InputError):
            check_topic_name("shulian.population\n")
