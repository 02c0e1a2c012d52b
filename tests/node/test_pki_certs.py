"""node.pki: the CA, node certificates, check_peer, keys, and the `shulian ca` commands."""

from __future__ import annotations

import datetime as dt
import json
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from node.cli import cli
from node.errors import AlreadyExists, InputError, Unauthenticated
from node.pki import (
    cert_from_auth_context,
    check_peer,
    create_ca,
    generate_encryption_key,
    generate_signing_key,
    issue_node_certificate,
    key_id,
    load_ca,
    load_encryption_key,
    load_signing_key,
    load_signing_public_key,
    peer_department_from_cert,
    public_key_b64,
    signing_public_key_from_b64,
)

CODE_A = "91110000600037341L"
CODE_B = "91110108551385082Q"
CODE_C = "91350200MA2YJ1XR9G"


def test_ca_and_node_certificate_shape(tmp_path: Path) -> None:
    ca = create_ca(tmp_path / "ca", name="Test CA")
    assert (tmp_path / "ca" / "ca.pem").exists()
    assert stat.S_IMODE((tmp_path / "ca" / "ca.key").stat().st_mode) == 0o600
    basic = ca.cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert basic.ca is True
    issued = issue_node_certificate(ca, code=CODE_A, name="北京市某局")
    cert = x509.load_pem_x509_certificate(issued.cert_pem)
    assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey)
    assert cert.public_key().curve.name == "secp256r1"  # type: ignore[union-attr]
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == CODE_A
    assert cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_IDENTIFIER)[0].value == "NTRCN-" + CODE_A
    assert cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "北京市某局"
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.SERVER_AUTH in eku and ExtendedKeyUsageOID.CLIENT_AUTH in eku
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    cert.verify_directly_issued_by(ca.cert)
    assert peer_department_from_cert(issued.cert_pem) == CODE_A
    assert peer_department_from_cert(cert.public_bytes(serialization.Encoding.DER)) == CODE_A


def test_create_ca_refuses_overwrite(tmp_path: Path) -> None:
    create_ca(tmp_path)
    with pytest.raises(AlreadyExists):
        create_ca(tmp_path)
    create_ca(tmp_path, force=True)


def test_load_ca_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no CA here"):
        load_ca(tmp_path)
    create_ca(tmp_path / "a")
    create_ca(tmp_path / "b")
    (tmp_path / "a" / "ca.key").write_bytes((tmp_path / "b" / "ca.key").read_bytes())
    with pytest.raises(InputError, match="does not belong"):
        load_ca(tmp_path / "a")
    assert load_ca(tmp_path / "b", need_key=False).key is not None


def test_issue_rejects_bad_code(tmp_path: Path) -> None:
    ca = create_ca(tmp_path)
    with pytest.raises(InputError, match="check character"):
        issue_node_certificate(ca, code="91110000600037341M", name="x")


@pytest.fixture()
def federation(tmp_path: Path):  # type: ignore[no-untyped-def]
    ca = create_ca(tmp_path / "ca")
    return ca, {CODE_A, CODE_B}


def test_check_peer_accepts_member(federation) -> None:  # type: ignore[no-untyped-def]
    ca, members = federation
    issued = issue_node_certificate(ca, code=CODE_A, name="A")
    assert check_peer(issued.cert_pem, ca.cert_pem, members) == CODE_A
    assert check_peer(issued.cert, ca.cert, members, now=dt.datetime.now(dt.UTC)) == CODE_A


def test_check_peer_expired(federation) -> None:  # type: ignore[no-untyped-def]
    ca, members = federation
    expired = issue_node_certificate(ca, code=CODE_A, name="A", days=-1)
    with pytest.raises(Unauthenticated) as exc:
        check_peer(expired.cert_pem, ca.cert, members)
    assert exc.value.reason == "CERT_EXPIRED" and "expired on" in str(exc.value)
    fresh = issue_node_certificate(ca, code=CODE_A, name="A", days=10)
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=11)
    with pytest.raises(Unauthenticated, match="expired"):
        check_peer(fresh.cert_pem, ca.cert, members, now=later)
    earlier = dt.datetime.now(dt.UTC) - dt.timedelta(days=2)
    with pytest.raises(Unauthenticated) as exc:
        check_peer(fresh.cert_pem, ca.cert, members, now=earlier)
    assert exc.value.reason == "CERT_NOT_YET_VALID"


def test_check_peer_unknown_ca(federation, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ca, members = federation
    rogue = create_ca(tmp_path / "rogue", name="Shulian federation CA")  # same name, other key
    forged = issue_node_certificate(rogue, code=CODE_A, name="A")
    with pytest.raises(Unauthenticated) as exc:
        check_peer(forged.cert_pem, ca.cert, members)
    assert exc.value.reason == "UNKNOWN_CA" and "not issued by the federation CA" in str(exc.value)


def test_check_peer_not_a_member(federation) -> None:  # type: ignore[no-untyped-def]
    ca, members = federation
    outsider = issue_node_certificate(ca, code=CODE_C, name="C")
    with pytest.raises(Unauthenticated) as exc:
        check_peer(outsider.cert_pem, ca.cert, members)
    assert exc.value.reason == "NOT_A_MEMBER" and CODE_C in str(exc.value)
    assert exc.value.grpc_status == "UNAUTHENTICATED"


def test_messages_are_distinct(federation, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ca, members = federation
    rogue = create_ca(tmp_path / "rogue")
    cases = [
        issue_node_certificate(ca, code=CODE_A, name="A", days=-1),
        issue_node_certificate(rogue, code=CODE_A, name="A"),
        issue_node_certificate(ca, code=CODE_C, name="C"),
    ]
    reasons = set()
    for issued in cases:
        with pytest.raises(Unauthenticated) as exc:
            check_peer(issued.cert_pem, ca.cert, members)
        reasons.add(exc.value.reason)
    assert reasons == {"CERT_EXPIRED", "UNKNOWN_CA", "NOT_A_MEMBER"}


def test_subject_without_department(federation) -> None:  # type: ignore[no-untyped-def]
    ca, members = federation
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    from cryptography.hazmat.primitives import hashes

    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "someone")]))
            .issuer_name(ca.cert.subject).public_key(key.public_key()).serial_number(1)
            .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=1))
            .sign(ca.key, hashes.SHA256()))
    with pytest.raises(Unauthenticated) as exc:
        check_peer(cert, ca.cert, members)
    assert exc.value.reason == "BAD_SUBJECT"
    with pytest.raises(Unauthenticated) as exc:
        check_peer(b"garbage", ca.cert, members)
    assert exc.value.reason == "BAD_CERTIFICATE"


def test_cert_from_auth_context() -> None:
    assert cert_from_auth_context({"x509_pem_cert": [b"PEM"]}) == b"PEM"
    with pytest.raises(Unauthenticated, match="no client certificate"):
        cert_from_auth_context({"transport_security_type": [b"ssl"]})


def test_keys_round_trip(tmp_path: Path) -> None:
    sk = generate_signing_key(tmp_path / "s.pem")
    ek = generate_encryption_key(tmp_path / "e.pem")
    assert stat.S_IMODE((tmp_path / "s.pem").stat().st_mode) == 0o600
    assert public_key_b64(load_signing_key(tmp_path / "s.pem")) == public_key_b64(sk)
    assert public_key_b64(load_encryption_key(tmp_path / "e.pem")) == public_key_b64(ek)
    assert key_id(sk) == key_id(sk.public_key()) and len(key_id(sk)) == 16
    pub = signing_public_key_from_b64(public_key_b64(sk))
    assert key_id(pub) == key_id(sk)
    # a public key file may hold PEM public, PEM private or base64
    (tmp_path / "pub.pem").write_bytes(sk.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    (tmp_path / "pub.b64").write_text(public_key_b64(sk))
    for name in ("pub.pem", "pub.b64", "s.pem"):
        assert key_id(load_signing_public_key(tmp_path / name)) == key_id(sk)
    with pytest.raises(InputError, match="must be Ed25519"):
        load_signing_key(tmp_path / "e.pem")
    with pytest.raises(InputError, match="not found"):
        load_signing_key(tmp_path / "absent.pem")
    with pytest.raises(InputError, match="32 bytes"):
        signing_public_key_from_b64("AAAA")


def test_ca_cli(tmp_path: Path) -> None:
    runner = CliRunner()
    r = runner.invoke(cli, ["ca", "init", str(tmp_path / "ca"), "--name", "CLI CA"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(cli, ["ca", "issue", "--ca-dir", str(tmp_path / "ca"), "--department", CODE_A,
                            "--name", "某局", "--out", str(tmp_path / "a"), "--host", "127.0.0.1",
                            "--host", "localhost", "--host", "node-a.example"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(cli, ["ca", "show", str(tmp_path / "a" / "node.pem"), "--json"])
    assert r.exit_code == 0, r.output
    info = json.loads(r.stdout)
    assert info["department"] == CODE_A
    assert info["hosts"] == ["127.0.0.1", "localhost", "node-a.example"]
    ca = load_ca(tmp_path / "ca")
    assert check_peer((tmp_path / "a" / "node.pem").read_bytes(), (tmp_path / "a" / "ca.pem").read_bytes(),
                      {CODE_A}) == CODE_A
    # an already expired certificate, for tests
    r = runner.invoke(cli, ["ca", "issue", "--ca-dir", str(tmp_path / "ca"), "--department", CODE_B,
                            "--name", "old", "--days", "-2", "--out", str(tmp_path / "b")])
    assert r.exit_code == 0, r.output
    with pytest.raises(Unauthenticated, match="expired"):
        check_peer((tmp_path / "b" / "node.pem").read_bytes(), ca.cert, {CODE_B})
    r = runner.invoke(cli, ["ca", "issue", "--ca-dir", str(tmp_path / "ca"), "--department", CODE_B,
                            "--name", "old", "--not-after", "2001-01-01", "--out", str(tmp_path / "c")])
    assert r.exit_code == 0, r.output
    assert "2001-01-01" in r.stdout


@pytest.mark.parametrize(("args", "message"), [
    (["ca", "issue", "--ca-dir", "{tmp}/none", "--department", CODE_A, "--name", "x"], "no CA here"),
    (["ca", "issue", "--ca-dir", "{tmp}/ca", "--department", "9111", "--name", "x"], "18 characters"),
    (["ca", "issue", "--ca-dir", "{tmp}/ca", "--department", CODE_A, "--name", "x", "--not-after", "soon"],
     "ISO 8601"),
    (["ca", "init", "{tmp}/ca"], "already exists"),
    (["ca", "show", "{tmp}/ca/ca.key"], "not a PEM or DER"),
])
def test_ca_cli_errors_are_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    create_ca(tmp_path / "ca")
    r = CliRunner().invoke(cli, [a.replace("{tmp}", str(tmp_path)) for a in args])
    assert r.exit_code == 2, r.output
    assert r.stderr.startswith("error: ") and message in r.stderr
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.output


def test_ca_help_has_example() -> None:
    for args in (["ca", "--help"], ["ca", "init", "--help"], ["ca", "issue", "--help"], ["ca", "show", "--help"]):
        r = CliRunner().invoke(cli, args)
        assert r.exit_code == 0 and "Example" in r.output and "shulian ca" in r.output
