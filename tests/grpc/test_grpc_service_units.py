"""Unit tests of the pieces under the gRPC transport: batch signatures, error mapping,
structured logs, the policy in force, the Kafka health hook."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import logging
from typing import Any

import grpc
import grpc_testkit as kit
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from hypothesis import given
from hypothesis import strategies as st

from node.daemon import kafka_health
from node.errors import IntegrityError, NotFound, PolicyDenied, ShulianError
from node.policy import SharingType
from node.service import (
    JsonFormatter,
    PolicySource,
    batch_digest,
    log_context,
    sign_batch,
    verify_batch,
)
from node.transport.grpc import error_from_rpc
from node.transport.grpc._errors import error_metadata, status_code_of

ids = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._~-]{0,20}", fullmatch=True)
records = st.lists(st.tuples(ids, st.integers(0, 2**40), st.booleans(), st.binary(max_size=64)), max_size=8)


def _spec_digest(dataset: str, items: list[tuple[str, int, bool, bytes]]) -> bytes:
    """The digest exactly as common.proto describes it, written independently."""
    data = b"shulian.v1.RecordBatch" + b"\x00" + dataset.encode() + b"\x00"
    for rid, version, deleted, payload in items:
        data += rid.encode() + b"\x00" + str(version).encode() + b"\x00" + (b"1" if deleted else b"0") + b"\x00"
        data += str(len(payload)).encode() + b"\x00" + payload
    return hashlib.sha256(data).digest()


@given(dataset=ids, items=records)
def test_batch_digest_follows_the_wire_spec(dataset: str, items: list[tuple[str, int, bool, bytes]]) -> None:
    assert batch_digest(dataset, items) == _spec_digest(dataset, items)


def test_batch_signature_detects_any_change() -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    items = [("p1", 1, False, b'{"id":"p1"}'), ("p2", 3, True, b"")]
    signature = sign_batch(key, "population", items)
    verify_batch(key.public_key(), "population", items, signature)
    for changed in ([("p1", 2, False, b'{"id":"p1"}'), items[1]], items[:1], [items[1], items[0]]):
        with pytest.raises(IntegrityError):
            verify_batch(key.public_key(), "population", changed, signature)
    with pytest.raises(IntegrityError):
        verify_batch(key.public_key(), "other", items, signature)


class _FakeRpcError(grpc.RpcError):
    def __init__(self, code: grpc.StatusCode, details: str, metadata: Any) -> None:
        self._code, self._details, self._metadata = code, details, metadata

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details

    def trailing_metadata(self) -> Any:
        return self._metadata


@pytest.mark.parametrize("exc", [
    PolicyDenied("dataset 'secret' is not shared (basis: 《保守国家秘密法》)", reason="NOT_SHARED"),
    NotFound("no such dataset", reason="UNKNOWN_DATASET"),
    IntegrityError("bad"),
])
def test_errors_travel_with_code_and_reason(exc: ShulianError) -> None:
    metadata = error_metadata(exc, "req-1", {"basis": "《保守国家秘密法》"})
    back = error_from_rpc(_FakeRpcError(status_code_of(exc), exc.message, metadata))
    assert type(back) is type(exc)
    assert back.reason == exc.reason and back.message == exc.message
    assert back.request_id == "req-1"  # type: ignore[attr-defined]
    assert back.detail["metadata"]["basis"] == "《保守国家秘密法》"  # type: ignore[attr-defined]
    assert all(isinstance(v, bytes) or v.isascii() for _, v in metadata)


def test_unknown_status_becomes_a_remote_error() -> None:
    back = error_from_rpc(_FakeRpcError(grpc.StatusCode.RESOURCE_EXHAUSTED, "too big", ()))
    assert back.grpc_status == "RESOURCE_EXHAUSTED" and back.reason == "RESOURCE_EXHAUSTED"


def test_json_log_lines_carry_the_request_context() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter(kit.PROVIDER))
    logger = logging.getLogger("shulian.test.jsonlog")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        with log_context(request_id="abc123", peer=kit.CONSUMER):
            logger.info("query done: %d", 5, extra={"records": 5})
        try:
            raise ValueError("boom")
        except ValueError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["message"] == "query done: 5" and first["records"] == 5
    assert first["request_id"] == "abc123" and first["peer"] == kit.CONSUMER
    assert first["department"] == kit.PROVIDER and first["level"] == "INFO" and first["time"].endswith("Z")
    assert "request_id" not in second and second["error_type"] == "ValueError" and "boom" in second["traceback"]


def test_configured_datasets_without_list_entries_follow_their_catalog(fed: kit.Federation) -> None:
    cfg = fed.provider.config()
    listed = PolicySource(cfg).load()
    assert listed.dataset("population").grants  # from the list file
    bare = dataclasses.replace(cfg, policy=dataclasses.replace(cfg.policy, responsibility_list=None))
    derived = PolicySource(bare).load()
    assert {d.dataset_id: d.sharing_type for d in derived.datasets} == {
        "population": SharingType.CONDITIONAL, "enterprises": SharingType.UNCONDITIONAL,
        "secret": SharingType.NOT_SHARED, "inbox": SharingType.UNCONDITIONAL}
    assert derived.dataset("secret").basis_text == kit.SECRET_BASIS
    assert not derived.dataset("population").grants


def test_a_broken_list_file_keeps_the_last_good_list(fed: kit.Federation) -> None:
    cfg = fed.provider.config()
    source = PolicySource(cfg)
    good = source.load()
    (fed.provider.dir / "policy.ttl").write_text("this is not turtle", encoding="utf-8")
    assert source.current() == good


@pytest.mark.parametrize(("value", "expected"), [
    (True, (True, "")),
    ({"ok": False, "detail": "broker down"}, (False, "broker down")),
    (type("H", (), {"status": "degraded", "detail": "no broker", "ok": False})(), (False, "degraded: no broker")),
    (type("H", (), {"status": "serving", "detail": "", "ok": True})(), (True, "")),
])
def test_kafka_health_interpretation(value: Any, expected: tuple[bool, str]) -> None:
    assert kafka_health(value) == expected
