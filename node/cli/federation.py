"""``shulian federation``: maintain the signed federation directory."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

from node.cli.init import cli_errors
from node.errors import EXIT_FINDINGS, InputError, IntegrityError

if TYPE_CHECKING:
    from node.federation import DirectorySignature, FederationDirectory
    from node.pki import CertificateAuthority

__all__ = ["federation"]

_FILE_HELP = "The directory file (default: <ca-dir>/federation.json)."


def _file(file: Path | None, ca_dir: Path | None) -> Path:
    if file is not None:
        return file
    if ca_dir is not None:
        return ca_dir / "federation.json"
    raise InputError("give --file or --ca-dir to say which federation directory")


def _open_for_edit(path: Path, authority: CertificateAuthority | None) -> FederationDirectory:
    """The current directory; a signed one is verified first so tampering is never re-signed."""
    from node.federation import FederationDirectory, read_directory_file, verify_directory

    if not path.exists():
        name = authority.name if authority else "Shulian federation"
        return FederationDirectory(federation=name)
    directory, signature = read_directory_file(path)
    if signature is not None and authority is not None:
        verify_directory(directory, signature, authority.cert, where=str(path))
    return directory


def _save(path: Path, directory: FederationDirectory, authority: CertificateAuthority | None, sign: bool) -> str:
    from node.federation import sign_directory, write_directory_file

    signature: DirectorySignature | None = None
    if sign:
        if authority is None:
            raise InputError("--sign needs --ca-dir (the CA key signs the directory)")
        signature = sign_directory(directory, authority)
    write_directory_file(path, directory, signature)
    return "signed" if signature else "UNSIGNED: run 'shulian federation sign' before giving it to nodes"


def _public_key_b64(value: str, kind: str) -> str:
    """A public key given as base64 or as a file (PEM private/public key, or base64)."""
    import base64
    import binascii

    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519, x25519

    from node.pki import public_key_b64

    want = ed25519.Ed25519PublicKey if kind == "signing" else x25519.X25519PublicKey
    text = value
    p = Path(value)
    if p.is_file():
        text = p.read_text(encoding="utf-8").strip()
    if text.startswith("-----BEGIN"):
        try:
            if "PRIVATE KEY" in text.splitlines()[0]:
                private = serialization.load_pem_private_key(text.encode(), password=None)
                public: object = private.public_key()
            else:
                public = serialization.load_pem_public_key(text.encode())
        except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
            raise InputError(f"--{kind}-key: {value}: not a PEM key") from exc
        if not isinstance(public, want):
            raise InputError(f"--{kind}-key: {value}: not an {'Ed25519' if kind == 'signing' else 'X25519'} key")
        return public_key_b64(public)
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InputError(f"--{kind}-key: {value!r} is neither a key file nor base64") from exc
    if len(raw) != 32:
        raise InputError(f"--{kind}-key: must be 32 bytes, found {len(raw)}")
    return text


@click.group("federation")
def federation() -> None:
    """Maintain the federation directory: members, their addresses and public keys, signed by the CA.

    \b
    Example:
      shulian federation add --ca-dir ca/ --from-config nodes/a/node.toml --sign
      shulian federation remove --ca-dir ca/ 91110000600037341L --sign
      shulian federation sign --ca-dir ca/
      shulian federation show --ca-dir ca/ --json

    Nodes refuse a directory whose signature does not verify against the CA.
    Exit codes: 0 done, 1 the signature does not verify, 2 bad input.
    """


@federation.command("add")
@click.option("--ca-dir", type=click.Path(file_okay=False, path_type=Path), default=None, help="The CA folder.")
@click.option("--file", "file", type=click.Path(dir_okay=False, path_type=Path), default=None, help=_FILE_HELP)
@click.option("--from-config", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Take the member from a node's node.toml (and its key files).")
@click.option("--code", default=None, help="Credit code (without --from-config).")
@click.option("--name", default=None, help="Department name.")
@click.option("--level", type=click.Choice(["national", "provincial", "city", "county"]), default=None)
@click.option("--division", default=None, help="Division code (6 digits).")
@click.option("--address", default=None, help="host:port other nodes reach it at (default with "
                                                "--from-config: its listen address).")
@click.option("--signing-key", default=None, help="Ed25519 public key: base64 or a PEM file.")
@click.option("--encryption-key", default=None, help="X25519 public key: base64 or a PEM file.")
@click.option("--sign", is_flag=True, help="Sign the result with the CA key (needs --ca-dir).")
@cli_errors
def federation_add(ca_dir: Path | None, file: Path | None, from_config: Path | None, code: str | None,
                   name: str | None, level: str | None, division: str | None, address: str | None,
                   signing_key: str | None, encryption_key: str | None, sign: bool) -> None:
    """Add a member (or replace the member with the same code).

    \b
    Example:
      shulian federation add --ca-dir ca/ --from-config nodes/a/node.toml --sign
      shulian federation add --file federation.json --code 91110000600037341L --name 某局 \\
          --level city --division 110100 --address 10.0.0.5:50051 \\
          --signing-key AAAA...= --encryption-key BBBB...=
    """
    from node.config import load_config
    from node.federation import FederationMember, member_from_config
    from node.pki import load_ca

    path = _file(file, ca_dir)
    authority = load_ca(ca_dir) if ca_dir is not None else None
    if from_config is not None:
        member = member_from_config(load_config(from_config, check_files=False), address=address)
    else:
        missing = [opt for opt, v in (("--code", code), ("--name", name), ("--level", level),
                                      ("--division", division), ("--address", address),
                                      ("--signing-key", signing_key), ("--encryption-key", encryption_key))
                   if v is None]
        if missing:
            raise InputError(f"give --from-config, or all of: {', '.join(missing)}")
        assert code and name and level and division and address and signing_key and encryption_key
        member = FederationMember(code=code, name=name, level=level, division=division, address=address,
                                  signing_key=_public_key_b64(signing_key, "signing"),
                                  encryption_key=_public_key_b64(encryption_key, "encryption"))
    directory = _open_for_edit(path, authority).with_member(member)
    state = _save(path, directory, authority, sign)
    click.echo(f"added {member.code} ({member.name}) to {path}: version {directory.version}, "
               f"{len(directory)} members, {state}")


@federation.command("remove")
@click.argument("code")
@click.option("--ca-dir", type=click.Path(file_okay=False, path_type=Path), default=None, help="The CA folder.")
@click.option("--file", "file", type=click.Path(dir_okay=False, path_type=Path), default=None, help=_FILE_HELP)
@click.option("--sign", is_flag=True, help="Sign the result with the CA key (needs --ca-dir).")
@cli_errors
def federation_remove(code: str, ca_dir: Path | None, file: Path | None, sign: bool) -> None:
    """Remove a member by its credit code.

    \b
    Example:
      shulian federation remove --ca-dir ca/ 91110000600037341L --sign
    """
    from node.pki import load_ca

    path = _file(file, ca_dir)
    authority = load_ca(ca_dir) if ca_dir is not None else None
    if not path.exists():
        raise InputError(f"{path}: federation directory not found")
    directory = _open_for_edit(path, authority).without_member(code)
    state = _save(path, directory, authority, sign)
    click.echo(f"removed {code} from {path}: version {directory.version}, {len(directory)} members, {state}")


@federation.command("sign")
@click.option("--ca-dir", required=True, type=click.Path(file_okay=False, path_type=Path), help="The CA folder.")
@click.option("--file", "file", type=click.Path(dir_okay=False, path_type=Path), default=None, help=_FILE_HELP)
@cli_errors
def federation_sign(ca_dir: Path, file: Path | None) -> None:
    """Sign the directory with the CA key (after add/remove without --sign).

    \b
    Example:
      shulian federation sign --ca-dir ca/
    """
    from node.federation import read_directory_file
    from node.pki import load_ca

    path = _file(file, ca_dir)
    authority = load_ca(ca_dir)
    directory, _ = read_directory_file(path)
    _save(path, directory, authority, True)
    click.echo(f"signed {path}: version {directory.version}, {len(directory)} members "
               f"(CA {authority.fingerprint[:16]}…)")


@federation.command("show")
@click.option("--ca-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="The CA folder (its ca.pem verifies the signature).")
@click.option("--file", "file", type=click.Path(dir_okay=False, path_type=Path), default=None, help=_FILE_HELP)
@click.option("--ca", "ca_cert", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The federation CA certificate to verify with (e.g. a node's tls/ca.pem).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (the directory, plus 'verified').")
@cli_errors
def federation_show(ca_dir: Path | None, file: Path | None, ca_cert: Path | None, as_json: bool) -> None:
    """List the members and check the signature (exit 1 if it does not verify).

    \b
    Example:
      shulian federation show --file nodes/a/federation.json --ca nodes/a/tls/ca.pem
      shulian federation show --ca-dir ca/ --json
    """
    from rich.console import Console
    from rich.table import Table

    from node.federation import read_directory_file, verify_directory
    from node.pki import load_ca, load_certificate

    path = _file(file, ca_dir)
    directory, signature = read_directory_file(path)
    cert = None
    if ca_cert is not None:
        try:
            cert = load_certificate(ca_cert.read_bytes(), what=str(ca_cert))
        except OSError as exc:
            raise InputError(f"{ca_cert}: cannot read: {exc.strerror}") from exc
    elif ca_dir is not None:
        cert = load_ca(ca_dir, need_key=False).cert
    verified: bool | None = None
    problem = ""
    if cert is not None:
        try:
            verify_directory(directory, signature, cert, where=str(path))
            verified = True
        except IntegrityError as exc:
            verified, problem = False, str(exc)
    if as_json:
        doc = directory.content()
        doc["signature"] = signature.to_dict() if signature else None
        doc["verified"] = verified
        click.echo(json.dumps(doc, ensure_ascii=False, indent=2, sort_keys=True))
    else:
        table = Table(title=f"{directory.federation} — version {directory.version}, updated {directory.updated}")
        for col in ("code", "name", "level", "division", "address", "signing key"):
            table.add_column(col)
        for m in directory:
            table.add_row(m.code, m.name, m.level, m.division, m.address, m.signing_key[:12] + "…")
        Console().print(table)
        if verified is None:
            click.echo("signature: " + ("present, not checked (give --ca or --ca-dir)" if signature else "NONE"))
        else:
            click.echo("signature: " + ("verified" if verified else "DOES NOT VERIFY"))
    if verified is False:
        click.echo(f"error: {problem}", err=True)
        raise SystemExit(EXIT_FINDINGS)
