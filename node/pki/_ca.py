"""The federation CA and node certificates (ECDSA P-256, for gRPC mutual TLS).

A node certificate names its department in the subject::

    CN                     = <unified social credit code>
    organizationIdentifier = NTRCN-<unified social credit code>   (OID 2.5.4.97)
    O                      = <department name>
    C                      = CN

``organizationIdentifier`` follows the legal-person semantics identifier of
ETSI EN 319 412-1 (``NTR`` national trade register, country ``CN``, the code).
:func:`node.pki.peer_department_from_cert` requires CN and organizationIdentifier
to carry the same valid code. The certificate has subjectAltName entries for the
given hosts (default 127.0.0.1 and localhost) and both serverAuth and clientAuth
extended key usages, so one certificate serves a node as server and as client.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from node.config import check_credit_code
from node.errors import AlreadyExists, InputError
from node.pki._keys import write_private_key

__all__ = [
    "CA_CERT_FILE",
    "CA_KEY_FILE",
    "NODE_CERT_FILE",
    "NODE_KEY_FILE",
    "CODE_PREFIX",
    "CertificateAuthority",
    "IssuedCertificate",
    "create_ca",
    "load_ca",
    "load_certificate",
    "issue_node_certificate",
    "write_node_certificate",
    "fingerprint",
]

CA_CERT_FILE = "ca.pem"
CA_KEY_FILE = "ca.key"
NODE_CERT_FILE = "node.pem"
NODE_KEY_FILE = "node.key"
CODE_PREFIX = "NTRCN-"
DEFAULT_HOSTS = ("127.0.0.1", "localhost")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 of the certificate's DER, hex."""
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


@dataclass(frozen=True)
class CertificateAuthority:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey | None  # None when loaded without its key

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.cert)

    @property
    def name(self) -> str:
        """The CA's common name."""
        values = self.cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        value = values[0].value if values else self.cert.subject.rfc4514_string()
        return value if isinstance(value, str) else value.decode("utf-8", "replace")


@dataclass(frozen=True)
class IssuedCertificate:
    code: str
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def key_pem(self) -> bytes:
        return _key_pem(self.key)


def create_ca(directory: Path, *, name: str = "Shulian federation CA", days: int = 3650,
              force: bool = False) -> CertificateAuthority:
    """Create a CA (``ca.pem``, ``ca.key``) in ``directory``. Refuses to overwrite unless ``force``."""
    directory = Path(directory)
    cert_path, key_path = directory / CA_CERT_FILE, directory / CA_KEY_FILE
    if not force and (cert_path.exists() or key_path.exists()):
        raise AlreadyExists(f"{directory}: a CA already exists there (use --force to replace it)")
    if days <= 0:
        raise InputError(f"--days must be positive for a CA, got {days}")
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, name),
        x509.NameAttribute(NameOID.COMMON_NAME, name),
    ])
    now = _now()
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
            encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    write_private_key(key_path, _key_pem(key))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return CertificateAuthority(cert=cert, key=key)


def load_certificate(data: bytes | x509.Certificate, *, what: str = "certificate") -> x509.Certificate:
    """A certificate from PEM or DER bytes (or one already loaded)."""
    if isinstance(data, x509.Certificate):
        return data
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            return x509.load_pem_x509_certificate(data)
        return x509.load_der_x509_certificate(data)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise InputError(f"{what} is not a PEM or DER X.509 certificate") from exc


def load_ca(directory: Path, *, need_key: bool = True) -> CertificateAuthority:
    """Load the CA kept in ``directory`` (``ca.pem`` and, unless ``need_key`` is false, ``ca.key``)."""
    directory = Path(directory)
    cert_path, key_path = directory / CA_CERT_FILE, directory / CA_KEY_FILE
    try:
        cert = load_certificate(cert_path.read_bytes(), what=str(cert_path))
    except FileNotFoundError as exc:
        raise InputError(f"{directory}: no CA here ({CA_CERT_FILE} missing); create one with "
                         f"'shulian ca init {directory}'") from exc
    except OSError as exc:
        raise InputError(f"{cert_path}: cannot read: {exc.strerror}") from exc
    if not need_key and not key_path.exists():
        return CertificateAuthority(cert=cert, key=None)
    try:
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except FileNotFoundError as exc:
        raise InputError(f"{directory}: the CA key {CA_KEY_FILE} is missing") from exc
    except OSError as exc:
        raise InputError(f"{key_path}: cannot read: {exc.strerror}") from exc
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise InputError(f"{key_path}: not a PEM private key") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise InputError(f"{key_path}: the CA key must be ECDSA, found {type(key).__name__}")
    cert_public = cert.public_key()
    if not isinstance(cert_public, ec.EllipticCurvePublicKey) \
            or key.public_key().public_numbers() != cert_public.public_numbers():
        raise InputError(f"{directory}: {CA_KEY_FILE} does not belong to {CA_CERT_FILE}")
    return CertificateAuthority(cert=cert, key=key)


def _san(hosts: tuple[str, ...] | list[str]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            if not host or any(c.isspace() for c in host):
                raise InputError(f"bad --host {host!r}: give an IP address or a DNS name") from None
            names.append(x509.DNSName(host))
    return names


def issue_node_certificate(
    ca: CertificateAuthority,
    *,
    code: str,
    name: str,
    hosts: tuple[str, ...] | list[str] = DEFAULT_HOSTS,
    days: int = 825,
    not_after: dt.datetime | None = None,
    now: dt.datetime | None = None,
) -> IssuedCertificate:
    """Issue a node certificate naming department ``code``.

    ``days`` may be negative (or ``not_after`` in the past) to make an already
    expired certificate, for tests of peer checks.
    """
    problem = check_credit_code(code)
    if problem:
        raise InputError(f"--department: {problem}")
    if not name.strip():
        raise InputError("--name: the department name must not be empty")
    if ca.key is None:
        raise InputError("the CA key is needed to issue certificates")
    now = now or _now()
    end = not_after if not_after is not None else now + dt.timedelta(days=days)
    if end.tzinfo is None:
        end = end.replace(tzinfo=dt.UTC)
    start = min(now - dt.timedelta(minutes=5), end - dt.timedelta(days=1))
    key = ec.generate_private_key(ec.SECP256R1())
    public = key.public_key()
    subject = x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, name),
        x509.NameAttribute(NameOID.ORGANIZATION_IDENTIFIER, CODE_PREFIX + code),
        x509.NameAttribute(NameOID.COMMON_NAME, code),
    ])
    ca_ski = ca.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca.cert.subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=True, key_cert_sign=False, crl_sign=False,
            encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                       critical=False)
        .add_extension(x509.SubjectAlternativeName(_san(hosts)), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
        .sign(ca.key, hashes.SHA256())
    )
    return IssuedCertificate(code=code, cert=cert, key=key)


def write_node_certificate(issued: IssuedCertificate, out_dir: Path, ca: CertificateAuthority,
                           *, force: bool = True) -> tuple[Path, Path, Path]:
    """Write ``node.pem``, ``node.key`` (0600) and a copy of ``ca.pem`` to ``out_dir``."""
    out_dir = Path(out_dir)
    cert_path, key_path, ca_path = out_dir / NODE_CERT_FILE, out_dir / NODE_KEY_FILE, out_dir / CA_CERT_FILE
    if not force and cert_path.exists():
        raise AlreadyExists(f"{cert_path} exists")
    out_dir.mkdir(parents=True, exist_ok=True)
    write_private_key(key_path, issued.key_pem)
    cert_path.write_bytes(issued.cert_pem)
    if not ca_path.exists() or ca_path.read_bytes() != ca.cert_pem:
        ca_path.write_bytes(ca.cert_pem)
    return cert_path, key_path, ca_path
