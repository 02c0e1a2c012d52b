"""node.federation: the signed directory, refusal of broken signatures, and `shulian federation`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from node.cli import cli
from node.errors import InputError, IntegrityError, NotFound
from node.federation import (
    FederationDirectory,
    FederationMember,
    load_directory,
    read_directory_file,
    sign_directory,
    write_directory_file,
)
from node.pki import (
    CertificateAuthority,
    create_ca,
    generate_encryption_key,
    generate_signing_key,
    load_ca,
    public_key_b64,
)

CODE_A = "91110000600037341L"
CODE_B = "91110108551385082Q"


def member(code: str, name: str = "某局", address: str = "127.0.0.1:50051") -> FederationMember:
    return FederationMember(code=code, name=name, level="city", division="110100", address=address,
                            signing_key=public_key_b64(generate_signing_key()),
                            encryption_key=public_key_b64(generate_encryption_key()))


def signed_file(tmp_path: Path) -> tuple[Path, CertificateAuthority]:
    ca = create_ca(tmp_path / "ca")
    directory = FederationDirectory(federation="test").with_member(member(CODE_A)).with_member(member(CODE_B))
    path = tmp_path / "federation.json"
    write_directory_file(path, directory, sign_directory(directory, ca))
    return path, ca


def test_round_trip_and_lookup(tmp_path: Path) -> None:
    path, ca = signed_file(tmp_path)
    directory = load_directory(path, ca.cert)
    assert directory.version == 2 and len(directory) == 2
    assert CODE_A in directory and "x" not in directory
    assert directory.member(CODE_B).address == "127.0.0.1:50051"
    assert directory.member(CODE_A).signing_public_key() is not None
    assert directory.member(CODE_A).encryption_public_key() is not None
    with pytest.raises(NotFound):
        directory.member("91350200MA2YJ1XR9G")
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert doc["format"] == "shulian-federation-directory/1"
    assert [m["code"] for m in doc["members"]] == sorted([CODE_A, CODE_B])
    assert doc["signature"]["alg"] == "ES256"


def test_altered_member_is_refused(tmp_path: Path) -> None:
    path, ca = signed_file(tmp_path)
    doc = json.loads(path.read_text(encoding="utf-8"))
    doc["members"][0]["address"] = "10.6.6.6:50051"  # redirect a member
    path.write_text(json.dumps(doc, ensure_ascii=False, indent=2), encoding="utf-8")
    with pytest.raises(IntegrityError) as exc:
        load_directory(path, ca.cert)
    assert "signature does not verify" in str(exc.value) and str(path) in str(exc.value)


def test_broken_signature_is_refused(tmp_path: Path) -> None:
    path, ca = signed_file(tmp_path)
    doc = json.loads(path.read_text(encoding="utf-8"))
    value = doc["signature"]["value"]
    doc["signature"]["value"] = value[:10] + ("A" if value[10] != "A" else "B") + value[11:]
    path.write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(IntegrityError, match="does not verify"):
        load_directory(path, ca.cert)
    doc["signature"]["value"] = "not base64!"
    path.write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(IntegrityError):
        load_directory(path, ca.cert)


def test_unsigned_extra_content_and_other_ca_are_refused(tmp_path: Path) -> None:
    path, ca = signed_file(tmp_path)
    doc = json.loads(path.read_text(encoding="utf-8"))
    extra = dict(doc, smuggled={"admin": True})
    path.write_text(json.dumps(extra), encoding="utf-8")
    with pytest.raises(IntegrityError, match="does not verify"):
        load_directory(path, ca.cert)
    del doc["signature"]
    path.write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(IntegrityError, match="not signed"):
        load_directory(path, ca.cert)
    other = create_ca(tmp_path / "other")
    directory, _ = read_directory_file(path)
    write_directory_file(path, directory, sign_directory(directory, other))
    with pytest.raises(IntegrityError, match="another CA"):
        load_directory(path, ca.cert)


def test_bad_members_are_input_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="check character"):
        member("91110000600037341M")
    path = tmp_path / "f.json"
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(InputError, match="not valid JSON"):
        read_directory_file(path)
    good = member(CODE_A).to_dict()
    for key, value, words in (("level", "town", "unknown level"), ("signing_key", "AAAA", "32 bytes"),
                              ("address", "nowhere", "host:port")):
        bad = dict(good, **{key: value})
        doc = {"format": "shulian-federation-directory/1", "federation": "t", "version": 1, "updated": "",
               "members": [bad]}
        path.write_text(json.dumps(doc), encoding="utf-8")
        with pytest.raises(InputError) as exc:
            read_directory_file(path)
        assert f"members[0].{key}" in str(exc.value) and words in str(exc.value)


def test_remove_and_versions() -> None:
    d = FederationDirectory(federation="t").with_member(member(CODE_A)).with_member(member(CODE_B))
    d2 = d.without_member(CODE_A)
    assert d2.version == 3 and d2.codes == frozenset({CODE_B})
    with pytest.raises(NotFound):
        d2.without_member(CODE_A)
    d3 = d2.with_member(member(CODE_B, name="renamed"))
    assert len(d3) == 1 and d3.member(CODE_B).name == "renamed"


# ---- CLI ------------------------------------------------------------------------------------
def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def test_cli_init_add_remove_sign_show(tmp_path: Path) -> None:
    ca_dir = tmp_path / "ca"
    assert run("ca", "init", str(ca_dir)).exit_code == 0
    r = run("init", str(tmp_path / "a"), "--department", "甲局", "--code", CODE_A, "--level", "city",
            "--division", "110100", "--listen", "127.0.0.1:50051")
    assert r.exit_code == 0, r.output
    r = run("federation", "add", "--ca-dir", str(ca_dir), "--from-config", str(tmp_path / "a" / "node.toml"),
            "--sign")
    assert r.exit_code == 0 and "signed" in r.stdout, r.output
    sk, ek = generate_signing_key(), generate_encryption_key()
    r = run("federation", "add", "--ca-dir", str(ca_dir), "--code", CODE_B, "--name", "乙局", "--level", "county",
            "--division", "110108", "--address", "127.0.0.1:50052", "--signing-key", public_key_b64(sk),
            "--encryption-key", public_key_b64(ek))
    assert r.exit_code == 0 and "UNSIGNED" in r.stdout, r.output
    # unsigned: nodes refuse it, show says so
    r = run("federation", "show", "--ca-dir", str(ca_dir))
    assert r.exit_code == 1 and "not signed" in r.stderr
    r = run("federation", "sign", "--ca-dir", str(ca_dir))
    assert r.exit_code == 0, r.output
    r = run("federation", "show", "--ca-dir", str(ca_dir), "--json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["verified"] is True and doc["version"] == 2
    assert {m["code"] for m in doc["members"]} == {CODE_A, CODE_B}
    r = run("federation", "show", "--ca-dir", str(ca_dir))
    assert r.exit_code == 0 and "verified" in r.stdout
    r = run("federation", "remove", "--ca-dir", str(ca_dir), CODE_B, "--sign")
    assert r.exit_code == 0, r.output
    ca_cert = load_ca(ca_dir).cert
    assert load_directory(ca_dir / "federation.json", ca_cert).codes == frozenset({CODE_A})


def test_cli_refuses_to_edit_a_tampered_directory(tmp_path: Path) -> None:
    path, _ = signed_file(tmp_path)
    doc = json.loads(path.read_text(encoding="utf-8"))
    doc["members"][0]["name"] = "tampered"
    path.write_text(json.dumps(doc), encoding="utf-8")
    r = run("federation", "show", "--ca-dir", str(tmp_path / "ca"), "--file", str(path))
    assert r.exit_code == 1 and "does not verify" in r.stderr
    r = run("federation", "remove", "--ca-dir", str(tmp_path / "ca"), "--file", str(path), CODE_B, "--sign")
    assert r.exit_code == 1 and "does not verify" in r.stderr
    assert "Traceback" not in r.output


@pytest.mark.parametrize(("args", "message"), [
    (["federation", "add", "--file", "{tmp}/f.json", "--code", CODE_A], "give --from-config, or all of"),
    (["federation", "show"], "give --file or --ca-dir"),
    (["federation", "remove", "--file", "{tmp}/none.json", CODE_A], "not found"),
    (["federation", "add", "--file", "{tmp}/f.json", "--code", CODE_A, "--name", "x", "--level", "city",
      "--division", "110100", "--address", "127.0.0.1:1", "--signing-key", "zz", "--encryption-key", "zz", "--sign"],
     "neither a key file nor base64"),
])
def test_cli_errors(tmp_path: Path, args: list[str], message: str) -> None:
    r = CliRunner().invoke(cli, [a.replace("{tmp}", str(tmp_path)) for a in args])
    assert r.exit_code == 2, r.output
    assert r.stderr.startswith("error: ") and message in r.stderr and r.stderr.count("\n") == 1


def test_cli_help_has_examples() -> None:
    for sub in ([], ["add"], ["remove"], ["sign"], ["show"]):
        r = CliRunner().invoke(cli, ["federation", *sub, "--help"])
        assert r.exit_code == 0 and "Example" in r.output and "shulian federation" in r.output
