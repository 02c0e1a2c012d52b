"""Who is on the other end of a mutual-TLS connection, and may it talk to us.

The gRPC layer calls::

    pem = cert_from_auth_context(context.auth_context())
    code = check_peer(pem, ca_cert, directory)      # raises Unauthenticated

TLS has already checked the chain when a connection is up; :func:`check_peer`
checks again (so it can be used on any certificate, e.g. in tests or offline),
then the validity period, then the subject, then federation membership, each
failure with its own ``reason`` and message.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Container, Mapping, Sequence

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.x509.oid import NameOID

from node.config import check_credit_code
from node.errors import InputError, Unauthenticated
from node.pki._ca import CODE_PREFIX, load_certificate

__all__ = ["peer_department_from_cert", "check_peer", "cert_from_auth_context"]


def _attr(cert: x509.Certificate, oid: x509.ObjectIdentifier) -> str | None:
    values = cert.subject.get_attributes_for_oid(oid)
    if not values:
        return None
    value = values[0].value
    return value if isinstance(value, str) else value.decode("utf-8", "replace")


def _load(cert: bytes | str | x509.Certificate, what: str) -> x509.Certificate:
    if isinstance(cert, str):
        cert = cert.encode("ascii", "replace")
    try:
        return load_certificate(cert, what=what)
    except InputError as exc:
        raise Unauthenticated(f"{what} is not a readable X.509 certificate", reason="BAD_CERTIFICATE") from exc


def peer_department_from_cert(cert: bytes | str | x509.Certificate) -> str:
    """The department code a node certificate names (CN = organizationIdentifier = code)."""
    c = _load(cert, "peer certificate")
    cn = _attr(c, NameOID.COMMON_NAME)
    org_id = _attr(c, NameOID.ORGANIZATION_IDENTIFIER)
    subject = c.subject.rfc4514_string()
    if cn is None or org_id is None:
        raise Unauthenticated(
            f"peer certificate subject {subject!r} names no department: it needs CN and "
            f"organizationIdentifier ({CODE_PREFIX}<credit code>)", reason="BAD_SUBJECT")
    code = org_id.removeprefix(CODE_PREFIX)
    if cn != code:
        raise Unauthenticated(
            f"peer certificate subject {subject!r}: CN {cn!r} and organizationIdentifier {org_id!r} "
            "name different departments", reason="BAD_SUBJECT")
    problem = check_credit_code(code)
    if problem:
        raise Unauthenticated(f"peer certificate subject {subject!r}: {problem}", reason="BAD_SUBJECT")
    return code


def check_peer(
    cert: bytes | str | x509.Certificate,
    ca: bytes | str | x509.Certificate,
    directory: Container[str],
    now: dt.datetime | None = None,
) -> str:
    """Return the peer's department code, or raise :class:`Unauthenticated`.

    ``directory`` is a :class:`node.federation.FederationDirectory` (or any container
    of member codes). Reasons: ``UNKNOWN_CA``, ``CERT_EXPIRED``, ``CERT_NOT_YET_VALID``,
    ``BAD_SUBJECT``, ``NOT_A_MEMBER``, ``BAD_CERTIFICATE``.
    """
    peer = _load(cert, "peer certificate")
    ca_cert = _load(ca, "federation CA certificate")
    subject = peer.subject.rfc4514_string()
    try:
        peer.verify_directly_issued_by(ca_cert)
    except (ValueError, TypeError, InvalidSignature) as exc:
        raise Unauthenticated(
            f"peer certificate {subject!r} was not issued by the federation CA "
            f"{ca_cert.subject.rfc4514_string()!r} (its issuer is {peer.issuer.rfc4514_string()!r}): unknown CA",
            reason="UNKNOWN_CA") from exc
    moment = now or dt.datetime.now(dt.UTC)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    if moment > peer.not_valid_after_utc:
        raise Unauthenticated(
            f"peer certificate {subject!r} expired on {peer.not_valid_after_utc.isoformat()}",
            reason="CERT_EXPIRED")
    if moment < peer.not_valid_before_utc:
        raise Unauthenticated(
            f"peer certificate {subject!r} is not valid before {peer.not_valid_before_utc.isoformat()}",
            reason="CERT_NOT_YET_VALID")
    code = peer_department_from_cert(peer)
    if code not in directory:
        raise Unauthenticated(
            f"department {code} (certificate {subject!r}) is not a member of the federation directory",
            reason="NOT_A_MEMBER")
    return code


def cert_from_auth_context(auth_context: Mapping[str, Sequence[bytes]]) -> bytes:
    """The client certificate (PEM) from a gRPC ``ServicerContext.auth_context()``."""
    values = auth_context.get("x509_pem_cert")
    if not values:
        raise Unauthenticated("the peer presented no client certificate (mutual TLS is required)",
                              reason="NO_CERTIFICATE")
    return bytes(values[0])
