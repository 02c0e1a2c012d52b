"""The list as RDF: round trips through Turtle, deterministic output, readable errors."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rdflib import Graph, Literal, Namespace, URIRef
from rdflib.compare import isomorphic
from rdflib.namespace import RDF, XSD

from node.errors import InputError
from node.policy import (
    DatasetPolicy,
    Grant,
    MaskRule,
    ResponsibilityList,
    SharingType,
    dump_list,
    from_graph,
    from_turtle,
    load_list,
    to_graph,
    to_turtle,
    validate_list,
)

from .conftest import EXAMPLES, MZJ, RSJ, YBJ

SL = Namespace("https://w3id.org/shulian/ns#")
ODRL = Namespace("http://www.w3.org/ns/odrl/2/")


def test_round_trip_through_turtle(policy):
    text = to_turtle(policy)
    back = from_turtle(text)
    assert back == policy
    assert isomorphic(to_graph(back), Graph().parse(data=text, format="turtle"))


def test_round_trip_through_a_file(policy, tmp_path):
    path = tmp_path / "list.ttl"
    dump_list(policy, path)
    assert load_list(path) == policy
    assert not list(tmp_path.glob("*.tmp"))


def test_graph_uses_odrl_for_grants(policy):
    g = to_graph(policy)
    perm = next(p for p in g.subjects(ODRL.assignee, URIRef(f"https://w3id.org/shulian/dept/{RSJ}")))
    assert (perm, RDF.type, ODRL.Permission) in g
    assert (perm, ODRL.action, ODRL.use) in g
    assert (perm, ODRL.assigner, URIRef("https://w3id.org/shulian/dept/91110000600037341L")) in g
    targets = {str(g.value(t, SL.itemProperty))[len(str(SL)) :] for t in g.objects(perm, ODRL.target)}
    assert targets == {"identityNumber", "name", "birthDate"}
    constraints = {g.value(c, ODRL.leftOperand): c for c in g.objects(perm, ODRL.constraint)}
    purpose, until = constraints[ODRL.purpose], constraints[ODRL.dateTime]
    assert g.value(purpose, ODRL.operator) == ODRL.isAnyOf
    assert {str(o) for o in g.objects(purpose, ODRL.rightOperand)} == {"社会保险参保资格审核", "养老金发放"}
    assert g.value(until, ODRL.operator) == ODRL.lteq
    assert g.value(until, ODRL.rightOperand) == Literal("2026-12-31", datatype=XSD.date)
    policy_node = next(g.subjects(ODRL.permission, perm))
    assert (policy_node, ODRL.profile, URIRef("https://w3id.org/shulian/profile/policy")) in g
    ds = URIRef("https://w3id.org/shulian/dataset/101%2F000001")
    assert (ds, ODRL.hasPolicy, policy_node) in g
    assert g.value(ds, SL.sharingType) == URIRef("https://w3id.org/shulian/code/sharing-type/2")


def test_turtle_is_deterministic(policy):
    """Same list, same text, whatever the hash seed (list files live in version control)."""
    script = (
        "import sys; from pathlib import Path; from node.policy import load_list, to_turtle;"
        "sys.stdout.write(to_turtle(load_list(Path(sys.argv[1]))))"
    )
    path = EXAMPLES / "valid" / "list.ttl"
    outputs = {
        subprocess.run(
            [sys.executable, "-c", script, str(path)],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in ("1", "2")
    }
    assert len(outputs) == 1
    assert to_turtle(load_list(path)) in outputs


def test_example_list_is_what_turtle_writes():
    path = EXAMPLES / "valid" / "list.ttl"
    text = path.read_text(encoding="utf-8")
    body = text[text.index("@prefix") :]
    assert to_turtle(load_list(path)).split("\n", 1)[1] == body


def test_id_masking_and_labels_survive(policy):
    grant = Grant.create(
        dataset_id="101/000001",
        consumer_code=YBJ,
        items=["name"],
        purposes=["P"],
        until=None,
        masking={"id": MaskRule.hash(), "name": MaskRule.redact()},
        basis="依据",
        request_id="req-1",
    )
    lst = policy.with_grant(grant)
    lst = lst.with_dataset(
        DatasetPolicy(
            "106/000001",
            SharingType.UNCONDITIONAL,
            items=("licenseNumber",),
            item_labels=(("licenseNumber", "居住证号"),),
            conditions=("条件",),
            methods=("系统对接", "platform"),
        )
    )
    back = from_turtle(to_turtle(lst))
    assert back == lst
    got = next(g for g in back.grants if g.consumer_code == YBJ)
    assert got.request_id == "req-1" and got.until is None and got.masking_map["id"] == MaskRule.hash()
    assert "id" not in back.dataset("101/000001").items
    assert back.dataset("106/000001").methods == ("interface", "platform")
    assert back.dataset("106/000001").label("licenseNumber") == "居住证号"
    assert back.dataset("106/000001").label("licenseType") == "证照类型"  # the standard's own label
    g = to_graph(lst)
    perm = next(g.subjects(ODRL.assignee, URIRef(f"https://w3id.org/shulian/dept/{YBJ}")))
    assert g.value(perm, SL.recordIdMasking) == SL.KeyedHash  # the id is not an item: a flag on the grant
    assert validate_list(back).conforms


def test_graph_without_a_list_node_reads_every_dataset():
    lst = ResponsibilityList((DatasetPolicy("D", SharingType.UNCONDITIONAL),))
    g = to_graph(lst)
    g.remove((None, RDF.type, SL.ResponsibilityList))
    g.remove((None, SL.listedDataset, None))
    assert from_graph(g).datasets == lst.datasets


@pytest.mark.parametrize(
    ("turtle", "message"),
    [
        ("this is not turtle", "not valid Turtle"),
        (
            "<https://w3id.org/shulian/dataset/D> <https://w3id.org/shulian/ns#sharingType> "
            "<https://w3id.org/shulian/code/sharing-type/9> .",
            "sharingType must be one of",
        ),
        (
            "<https://w3id.org/shulian/dataset/D> <https://w3id.org/shulian/ns#sharingType> "
            "<https://w3id.org/shulian/code/sharing-type/2> .",
            "must cite its basis",
        ),
    ],
)
def test_bad_graphs_give_readable_errors(turtle, message):
    with pytest.raises(InputError, match=message):
        from_turtle(turtle)


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        load_list(tmp_path / "nope.ttl")


_items = st.lists(
    st.sampled_from(["identityNumber", "name", "sex", "birthDate", "creditCode"]), min_size=1, unique=True
)


@st.composite
def _lists(draw):
    grants = []
    for consumer in draw(st.lists(st.sampled_from([RSJ, MZJ, YBJ]), unique=True, max_size=3)):
        items = draw(_items)
        masked = draw(
            st.dictionaries(st.sampled_from(items), st.sampled_from([MaskRule.redact(), MaskRule.keep(2, 1)]))
        )
        grants.append(
            Grant.create(
                dataset_id="D",
                consumer_code=consumer,
                items=items,
                purposes=draw(st.lists(st.sampled_from(["甲", "乙", "丙 用途"]), min_size=1)),
                until=draw(st.one_of(st.none(), st.dates(date(2020, 1, 1), date(2040, 1, 1)))),
                masking=masked,
                basis=draw(st.one_of(st.none(), st.just("《条例》"))),
            )
        )
    return ResponsibilityList(
        (
            DatasetPolicy("D", SharingType.CONDITIONAL, basis=("b",), grants=tuple(grants)),
            DatasetPolicy("U", SharingType.UNCONDITIONAL, items=tuple(draw(_items))),
        ),
        title=draw(st.one_of(st.none(), st.just("清单"))),
    )


@settings(max_examples=40, deadline=None)
@given(_lists())
def test_round_trip_property(lst):
    assert from_turtle(to_turtle(lst)) == lst
