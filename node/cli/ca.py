"""``shulian ca``: a federation CA and node certificates (for a test federation)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import click

from node.cli.init import cli_errors
from node.errors import InputError

__all__ = ["ca"]


@click.group("ca")
def ca() -> None:
    """Create a federation CA and issue node certificates (ECDSA P-256, mutual TLS).

    \b
    Example:
      shulian ca init ca/
      shulian ca issue --ca-dir ca/ --department 91110000600037341L --name 北京市某局 --out nodes/a/tls
      shulian ca show nodes/a/tls/node.pem

    A node certificate names its department's credit code in the subject's CN
    and organizationIdentifier (NTRCN-<code>), has SANs for 127.0.0.1 and
    localhost (plus --host), and serves as TLS server and client certificate.
    Exit codes: 0 done, 2 bad input.
    """


@ca.command("init")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--name", default="Shulian federation CA", show_default=True, help="The CA's name (subject CN/O).")
@click.option("--days", default=3650, show_default=True, type=int, help="Validity in days.")
@click.option("--force", is_flag=True, help="Replace an existing CA (invalidates every certificate it issued).")
@cli_errors
def ca_init(directory: Path, name: str, days: int, force: bool) -> None:
    """Create a CA in DIRECTORY (ca.pem, ca.key with mode 0600).

    \b
    Example:
      shulian ca init ca/ --name "Beijing test federation CA"
    """
    from node.pki import create_ca

    authority = create_ca(directory, name=name, days=days, force=force)
    click.echo(f"created CA {name!r} in {directory} (fingerprint {authority.fingerprint[:16]}…)")


def _parse_when(value: str) -> dt.datetime:
    try:
        when = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise InputError(f"--not-after: {value!r} is not an ISO 8601 date or time") from exc
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


@ca.command("issue")
@click.option("--ca-dir", required=True, type=click.Path(file_okay=False, path_type=Path), help="The CA folder.")
@click.option("--department", "code", required=True, help="The department's unified social credit code.")
@click.option("--name", required=True, help="The department's name.")
@click.option("--days", default=825, show_default=True, type=int,
              help="Validity in days; negative makes an already expired certificate (for tests).")
@click.option("--not-after", default=None, help="Exact end of validity (ISO 8601), overrides --days.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Output folder for node.pem, node.key and ca.pem (default: ./<code>).")
@click.option("--host", "hosts", multiple=True,
              help="Host name or IP for subjectAltName (repeatable; default 127.0.0.1 and localhost).")
@cli_errors
def ca_issue(ca_dir: Path, code: str, name: str, days: int, not_after: str | None, out: Path | None,
             hosts: tuple[str, ...]) -> None:
    """Issue a node certificate for a department.

    \b
    Example:
      shulian ca issue --ca-dir ca/ --department 91110000600037341L --name 北京市某局 \\
          --out nodes/a/tls --host 127.0.0.1 --host localhost --host node-a.example
      shulian ca issue --ca-dir ca/ --department 91110000600037341L --name expired --days -1 --out /tmp/x
    """
    from node.pki import issue_node_certificate, load_ca, write_node_certificate

    authority = load_ca(ca_dir)
    issued = issue_node_certificate(
        authority, code=code, name=name, hosts=list(hosts) or ["127.0.0.1", "localhost"], days=days,
        not_after=_parse_when(not_after) if not_after else None)
    cert_path, key_path, ca_path = write_node_certificate(issued, out or Path(code), authority)
    click.echo(f"issued {cert_path} and {key_path} for {code} ({name}), valid until "
               f"{issued.cert.not_valid_after_utc.isoformat()}; CA copy in {ca_path}")


@ca.command("show")
@click.argument("cert", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@cli_errors
def ca_show(cert: Path, as_json: bool) -> None:
    """Show a certificate: subject, department code, validity, hosts.

    \b
    Example:
      shulian ca show nodes/a/tls/node.pem --json
    """
    from cryptography import x509

    from node.errors import Unauthenticated
    from node.pki import fingerprint, load_certificate, peer_department_from_cert

    try:
        data = cert.read_bytes()
    except OSError as exc:
        raise InputError(f"{cert}: cannot read: {exc.strerror}") from exc
    c = load_certificate(data, what=str(cert))
    try:
        code: str | None = peer_department_from_cert(c)
    except Unauthenticated:
        code = None
    try:
        san = c.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        hosts = [str(v) for v in san.get_values_for_type(x509.IPAddress)] + san.get_values_for_type(x509.DNSName)
    except x509.ExtensionNotFound:
        hosts = []
    info = {
        "subject": c.subject.rfc4514_string(),
        "issuer": c.issuer.rfc4514_string(),
        "department": code,
        "not_before": c.not_valid_before_utc.isoformat(),
        "not_after": c.not_valid_after_utc.isoformat(),
        "hosts": hosts,
        "fingerprint": fingerprint(c),
    }
    if as_json:
        click.echo(json.dumps(info, ensure_ascii=False, indent=2))
    else:
        for key, value in info.items():
            click.echo(f"{key:12} {', '.join(value) if isinstance(value, list) else value}")
