"""The kit tests itself: our own node passes every mandatory node case; deliberately broken nodes
(test doubles of the service layer behind the real gRPC server) fail exactly the cases their defect
breaks, and nothing else."""

from __future__ import annotations

from pathlib import Path

import pytest
from conformance_node_kit import (
    AcceptingCore,
    Daemon,
    ExpiryBlindCore,
    KitNode,
    LeakingCore,
    ThreadedNode,
    messages,
    outcomes,
    run_kit,
)

from conformance import load_manifests, manifests_dir
from node.service import NodeCore

pytestmark = pytest.mark.integration

MANDATORY = {c.id for c in load_manifests([manifests_dir() / "node.ttl"]) if c.mandatory}
KAFKA_CASES = {"KFK-01", "KFK-02"}


def test_our_node_passes_every_mandatory_case(kit_node: KitNode, tmp_path: Path) -> None:
    with Daemon(kit_node.config_path, tmp_path / "node.log") as node:
        code, summary = run_kit(node.address, kit_node.params, tmp_path / "report")
    got = outcomes(summary)
    assert {i: o for i, o in got.items() if i in MANDATORY and o != "passed"} == {}, messages(summary)
    assert code == 0 and summary["conforms"] is True
    assert summary["mandatory"] == {"total": len(MANDATORY), "passed": len(MANDATORY)}
    # the Kafka cases need --kafka (test_conformance_node_kafka runs them): not applicable here, never passed
    assert {got[i] for i in KAFKA_CASES} == {"inapplicable"}
    assert "batch signature(s) verified" in messages(summary)["ACC-04"]  # the provider key came from the params
    assert (tmp_path / "report" / "junit.xml").is_file() and (tmp_path / "report" / "earl.ttl").is_file()


@pytest.mark.parametrize(
    ("double", "broken", "says"),
    [
        (LeakingCore, "ACC-04", "identityNumber"),
        (AcceptingCore, "PSH-01", "REJECTED"),
        (ExpiryBlindCore, "ACC-03", "GRANT_EXPIRED"),
    ],
    ids=["leaks-a-masked-item", "accepts-invalid-records", "ignores-expiry"],
)
def test_a_broken_node_fails_exactly_the_case_it_breaks(kit_node: KitNode, tmp_path: Path, double: type[NodeCore],
                                                        broken: str, says: str) -> None:
    with ThreadedNode(kit_node.config(), double) as node:
        code, summary = run_kit(node.address, kit_node.params, tmp_path / "report")
    got = outcomes(summary)
    assert {i for i, o in got.items() if o != "passed" and i in MANDATORY} == {broken}, messages(summary)
    assert got[broken] == "failed"
    assert says in messages(summary)[broken]
    assert {got[i] for i in KAFKA_CASES} == {"inapplicable"}
    assert code == 1 and summary["conforms"] is False


def test_the_leak_is_named_with_the_value_the_grant_allows(kit_node: KitNode, tmp_path: Path) -> None:
    with ThreadedNode(kit_node.config(), LeakingCore) as node:
        _, summary = run_kit(node.address, kit_node.params, tmp_path / "report", "--only", "ACC-04")
    message = messages(summary)["ACC-04"]
    # e.g. "record kit-person-001: item 'identityNumber' must be masked keep:6:4 ('110105********0011'), got '...'"
    assert "must be masked keep:6:4" in message and "********" in message
