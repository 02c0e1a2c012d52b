"""The federation directory: the signed list of member departments.

    from node.federation import load_node_directory
    directory = load_node_directory(cfg)     # verified with cfg.tls.ca; IntegrityError if the signature fails
    "91110000600037341L" in directory ; directory.member(code).address

Editing (CA operator): :func:`read_directory_file`, ``with_member``/``without_member``,
:func:`sign_directory`, :func:`write_directory_file` (or ``shulian federation ...``).
"""

from __future__ import annotations

from node.federation._directory import (
    FORMAT,
    DirectorySignature,
    FederationDirectory,
    FederationMember,
    canonical_json,
    load_directory,
    read_directory_file,
    sign_directory,
    verify_directory,
    write_directory_file,
)
from node.federation._members import load_node_directory, member_from_config

__all__ = [
    "FORMAT",
    "FederationMember",
    "FederationDirectory",
    "DirectorySignature",
    "canonical_json",
    "load_directory",
    "read_directory_file",
    "sign_directory",
    "verify_directory",
    "write_directory_file",
    "member_from_config",
    "load_node_directory",
]
