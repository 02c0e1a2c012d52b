"""The committed generated code matches schemas/proto (regenerated into a temporary folder)."""

from __future__ import annotations

from pathlib import Path

from node.transport.grpc.protogen import generate, generated_root, proto_root

REPO = Path(__file__).resolve().parents[2]


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and "__pycache__" not in p.parts}


def test_generated_code_is_current(tmp_path: Path) -> None:
    written = generate(tmp_path)
    assert written, "protogen wrote nothing"
    fresh, committed = _tree(tmp_path), _tree(generated_root())
    assert sorted(fresh) == sorted(committed), "node/_generated has missing or extra files: run `make proto`"
    stale = [name for name in fresh if fresh[name] != committed[name]]
    assert not stale, f"node/_generated is stale ({', '.join(stale)}): run `make proto` and commit the result"


def test_generated_imports_are_package_relative(tmp_path: Path) -> None:
    generate(tmp_path)
    for path in (tmp_path / "shulian" / "v1").glob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert "from shulian.v1 import" not in text, path.name
    records = (tmp_path / "shulian" / "v1" / "records_pb2.py").read_text(encoding="utf-8")
    assert "from node._generated.shulian.v1 import common_pb2" in records


def test_protos_live_in_schemas_and_make_proto_regenerates() -> None:
    protos = sorted(p.name for p in (proto_root() / "shulian" / "v1").glob("*.proto"))
    assert protos == ["access.proto", "catalog.proto", "common.proto", "node.proto", "records.proto"]
    for name in protos:
        assert "package shulian.v1;" in (proto_root() / "shulian" / "v1" / name).read_text(encoding="utf-8")
    assert "python -m node.transport.grpc.protogen" in (REPO / "Makefile").read_text(encoding="utf-8")


def test_generated_messages_round_trip() -> None:
    from node._generated.shulian.v1 import common_pb2, records_pb2

    req = records_pb2.PushRequest(dataset="population", records=[
        common_pb2.Record(id="p1", payload='{"id":"p1","name":"王秀英"}'.encode())])
    again = records_pb2.PushRequest.FromString(req.SerializeToString())
    assert again.records[0].payload.decode() == '{"id":"p1","name":"王秀英"}'
    assert records_pb2.QueryRequest.__module__ == "node._generated.shulian.v1.records_pb2"
