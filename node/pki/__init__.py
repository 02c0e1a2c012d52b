"""PKI: the federation CA, node certificates (mutual TLS) and node keys.

    from node.pki import create_ca, load_ca, issue_node_certificate, check_peer
    ca = create_ca(Path("ca"))
    issued = issue_node_certificate(ca, code="91110000600037341L", name="北京市某局")
    code = check_peer(issued.cert_pem, ca.cert, directory)   # -> "91110000600037341L"

TLS certificates are ECDSA P-256 (what gRPC's TLS stacks all accept). A node
certificate carries its department's unified social credit code in the
subject's CN and in organizationIdentifier as ``NTRCN-<code>``; see
:mod:`node.pki._ca`. Node signing keys are Ed25519, encryption keys X25519.
"""

from __future__ import annotations

from node.pki._ca import (
    CA_CERT_FILE,
    CA_KEY_FILE,
    CODE_PREFIX,
    NODE_CERT_FILE,
    NODE_KEY_FILE,
    CertificateAuthority,
    IssuedCertificate,
    create_ca,
    fingerprint,
    issue_node_certificate,
    load_ca,
    load_certificate,
    write_node_certificate,
)
from node.pki._keys import (
    encryption_public_key_from_b64,
    generate_encryption_key,
    generate_signing_key,
    key_id,
    load_encryption_key,
    load_signing_key,
    load_signing_public_key,
    public_key_b64,
    signing_public_key_from_b64,
    write_private_key,
)
from node.pki._peer import cert_from_auth_context, check_peer, peer_department_from_cert

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
    "peer_department_from_cert",
    "check_peer",
    "cert_from_auth_context",
    "generate_signing_key",
    "generate_encryption_key",
    "load_signing_key",
    "load_encryption_key",
    "load_signing_public_key",
    "signing_public_key_from_b64",
    "encryption_public_key_from_b64",
    "public_key_b64",
    "key_id",
    "write_private_key",
]
