"""Building a directory entry from a node's own configuration."""

from __future__ import annotations

from node.config import NodeConfig
from node.errors import InputError
from node.federation._directory import FederationDirectory, FederationMember, load_directory
from node.pki import load_certificate, load_encryption_key, load_signing_key, public_key_b64

__all__ = ["member_from_config", "load_node_directory"]


def load_node_directory(cfg: NodeConfig) -> FederationDirectory:
    """The node's federation directory, verified against its federation CA (``[tls] ca``).

    Raises :class:`IntegrityError` if the signature does not verify, :class:`InputError`
    if a file cannot be read.
    """
    try:
        ca_pem = cfg.tls.ca.read_bytes()
    except OSError as exc:
        raise InputError(f"{cfg.tls.ca}: cannot read the federation CA certificate: {exc.strerror}") from exc
    return load_directory(cfg.federation, load_certificate(ca_pem, what=str(cfg.tls.ca)))


def member_from_config(cfg: NodeConfig, *, address: str | None = None) -> FederationMember:
    """The directory entry for the node ``cfg`` describes (public keys from its key files)."""
    if cfg.encryption_key is None:
        raise InputError(f"{cfg.path}: [node.encryption_key] is needed to join a federation "
                         "(an X25519 key; 'shulian init' creates one)")
    return FederationMember(
        code=cfg.department.code,
        name=cfg.department.name,
        level=cfg.department.level,
        division=cfg.department.division,
        address=address or cfg.listen,
        signing_key=public_key_b64(load_signing_key(cfg.signing_key)),
        encryption_key=public_key_b64(load_encryption_key(cfg.encryption_key)),
    )
