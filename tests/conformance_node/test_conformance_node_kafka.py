"""The Kafka cases against a real node: our daemon with ``[kafka]`` configured against a real Tansu broker
and the kit's fixture loaded (so the fixture's datasets are published) passes KFK-01 and KFK-02; read with
another consumer's X25519 key the conditional consumer's topic does not open (KFK-02 fails), and against
another signing key no event verifies (both fail)."""

from __future__ import annotations

import base64
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
import tomli_w
from conformance_node_kit import PROVIDER, Daemon, KitNode, invoke, messages, outcomes, run_kit
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "kafka"))

from kafka_testkit import free_port, start_broker, stop_process  # noqa: E402

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def tansu(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    proc = start_broker(port, tmp_path_factory.mktemp("tansu") / "broker.log")
    try:
        yield f"127.0.0.1:{port}"
    finally:
        stop_process(proc)


def _kafka_node(root: Path, bootstrap: str) -> KitNode:
    """As ``conformance_node_kit.make_node``, with ``[kafka]`` in node.toml before the fixture is loaded."""
    ca_dir, node_dir, fixture_dir = root / "ca", root / "node", root / "kit-fixture"
    config = node_dir / "node.toml"

    def run(args: list[str], node_cli: bool) -> None:
        result = invoke(args, node_cli=node_cli)
        assert result.exit_code == 0, f"{' '.join(args[:2])}: {result.output}"

    run(["ca", "init", str(ca_dir), "--name", "符合性测试联盟CA"], True)
    run(["init", str(node_dir), "--department", "符合性测试被测局", "--code", PROVIDER, "--level", "city",
         "--division", "110000", "--listen", "127.0.0.1:0", "--ca-dir", str(ca_dir), "--durability", "normal"], True)
    data = tomllib.loads(config.read_text(encoding="utf-8"))
    data["kafka"] = {"bootstrap_servers": [bootstrap]}
    config.write_text(tomli_w.dumps(data), encoding="utf-8")
    run(["fixture", "init", str(fixture_dir)], False)
    run(["fixture", "load", str(fixture_dir), "--config", str(config), "--ca-dir", str(ca_dir)], False)
    return KitNode(root, ca_dir, config, fixture_dir, fixture_dir / "params.toml")


def test_a_node_publishing_to_kafka_passes_the_kafka_cases(tansu: str, tmp_path: Path) -> None:
    node = _kafka_node(tmp_path / "n", tansu)
    assert all(d.kafka_publish for d in node.config().datasets)  # fixture load turned publishing on
    with Daemon(node.config_path, tmp_path / "node.log") as daemon:
        only = ("--only", "KFK-01", "--only", "KFK-02")
        _, summary = run_kit(daemon.address, node.params, tmp_path / "report", "--kafka", tansu, *only)
        got, said = outcomes(summary), messages(summary)
        assert got == {"KFK-01": "passed", "KFK-02": "passed"}, said
        other = node.fixture_dir / "consumers" / "expired" / "encryption.pem"
        _, wrong = run_kit(daemon.address, node.params, tmp_path / "wrong-key", "--kafka", tansu,
                           "--only", "KFK-02", "--param", f"encryption_key={other}")
        forged = base64.b64encode(ed25519.Ed25519PrivateKey.generate().public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw)).decode()
        _, unsigned = run_kit(daemon.address, node.params, tmp_path / "other-signer", "--kafka", tansu, *only,
                              "--param", "federation_directory=", "--param", f"provider_signing_key={forged}")
    assert outcomes(wrong) == {"KFK-02": "failed"}
    assert "does not decrypt" in messages(wrong)["KFK-02"]
    # checked against another key, no signature verifies: both cases fail, before any decryption
    assert outcomes(unsigned) == {"KFK-01": "failed", "KFK-02": "failed"}
    assert all("does not verify against the provider's signing key" in m for m in messages(unsigned).values())
