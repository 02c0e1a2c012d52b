"""The typed, frozen node configuration (what :func:`node.config.load_config` returns)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from node.errors import NotFound

__all__ = [
    "Department",
    "TlsFiles",
    "CatalogMetadata",
    "DatasetConfig",
    "PeerConfig",
    "Subscription",
    "KafkaConfig",
    "PolicyConfig",
    "NodeConfig",
]


@dataclass(frozen=True)
class Department:
    name: str
    code: str  # unified social credit code (GB 32100)
    level: str  # national | provincial | city | county
    division: str  # GB/T 2260, 6 digits


@dataclass(frozen=True)
class TlsFiles:
    ca: Path  # the federation CA certificate (PEM)
    cert: Path  # this node's certificate (PEM), used as server and as client
    key: Path  # its private key (PEM)


@dataclass(frozen=True)
class CatalogMetadata:
    title_zh: str
    title_en: str
    description: str
    resource_code: str  # "<类><项><目><细目>/<sequence>", e.g. "1010100/000001"
    update_cycle: str  # canonical token: realtime daily weekly monthly quarterly yearly irregular
    sharing_type: str  # canonical token: unconditional | conditional | not_shared
    sharing_conditions: str = ""
    sharing_basis: str = ""  # legal or policy basis, required unless unconditional
    sharing_method: str = "系统对接"
    open_to_public: bool = False
    keywords: tuple[str, ...] = ()
    description_en: str = ""


@dataclass(frozen=True)
class DatasetConfig:
    id: str
    record_type: str
    catalog: CatalogMetadata
    kafka_publish: bool = False


@dataclass(frozen=True)
class PeerConfig:
    code: str
    address: str
    name: str = ""


@dataclass(frozen=True)
class Subscription:
    provider: str  # the provider department's credit code
    dataset: str


@dataclass(frozen=True)
class KafkaConfig:
    bootstrap_servers: tuple[str, ...]
    # client security settings passed through as given (relative *file paths resolved)
    security: tuple[tuple[str, str | int | bool], ...] = ()
    subscriptions: tuple[Subscription, ...] = ()

    def security_kwargs(self) -> dict[str, Any]:
        """The security settings as keyword arguments for a Kafka client."""
        return dict(self.security)


@dataclass(frozen=True)
class PolicyConfig:
    responsibility_list: Path | None = None  # the policy file, read by node.policy
    hash_key: bytes | None = field(default=None, repr=False)  # secret for hash masking (>= 16 bytes)


@dataclass(frozen=True)
class NodeConfig:
    path: Path  # the configuration file this came from
    department: Department
    listen: str
    tls: TlsFiles
    signing_key: Path  # Ed25519 private key (PEM, PKCS#8)
    store: Path
    federation: Path  # the signed federation directory (JSON)
    encryption_key: Path | None = None  # X25519 private key (PEM, PKCS#8)
    policy: PolicyConfig = PolicyConfig()
    durability: str = "full"  # store: full | normal
    standard: Path | None = None  # the standard's folder (ontology/); None: the shipped one
    datasets: tuple[DatasetConfig, ...] = ()
    peers: tuple[PeerConfig, ...] = ()
    kafka: KafkaConfig | None = None
    sources: tuple[tuple[str, str], ...] = field(default=(), compare=False, repr=False)

    @property
    def responsibility_list(self) -> Path | None:
        """Shortcut for ``policy.responsibility_list``."""
        return self.policy.responsibility_list

    def dataset(self, dataset_id: str) -> DatasetConfig:
        for ds in self.datasets:
            if ds.id == dataset_id:
                return ds
        raise NotFound(f"dataset {dataset_id!r} is not configured in {self.path}")

    def peer(self, code: str) -> PeerConfig:
        for peer in self.peers:
            if peer.code == code:
                return peer
        raise NotFound(f"peer {code!r} is not configured in {self.path}")

    def source_of(self, key: str) -> str:
        """Where a key's value came from: the file, or an environment variable."""
        return dict(self.sources).get(key, str(self.path))
