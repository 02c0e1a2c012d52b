"""Node configuration: one TOML file, frozen dataclasses, SHULIAN_* overrides.

    from node.config import load_config
    cfg = load_config("node.toml")          # raises ConfigError(file=, key=)
    cfg.department.code, cfg.tls.cert, cfg.store, cfg.dataset("population")

Layout of the file (relative paths are resolved against its folder)::

    [department]   name, code (GB 32100), level (national|provincial|city|county), division (6 digits)
    [node]         listen, store, durability (full|normal), signing_key, encryption_key, federation
    [tls]          ca, cert, key
    [policy]       responsibility_list, hash_key_file (or hash_key, base64): the masking secret
    [[datasets]]   id, record_type, kafka_publish, [datasets.catalog] title_zh, title_en,
                   description, resource_code, update_cycle, sharing_type, sharing_basis, ...
    [[peers]]      code, address, name
    [kafka]        bootstrap_servers, [kafka.security] (passed through), [[kafka.subscriptions]]
                   provider, dataset

Environment: ``SHULIAN_CONFIG`` names the file; ``SHULIAN_<SECTION>_<KEY>`` overrides a
scalar key (see :data:`ENV_OVERRIDES`); ``SHULIAN_KAFKA_SECURITY_<NAME>`` sets
``kafka.security.<name>``. Relative paths from the environment are resolved against
the working directory. Only this package reads ``os.environ``.
"""

from __future__ import annotations

from node.config._codes import (
    CREDIT_CODE_ALPHABET,
    LEVELS,
    RECORD_TYPES,
    SHARING_TYPES,
    UPDATE_CYCLES,
    check_address,
    check_credit_code,
    check_dataset_id,
    check_division_code,
    check_resource_code,
    credit_code_check_char,
    is_valid_credit_code,
    normalise_sharing_type,
    normalise_update_cycle,
)
from node.config._load import CONFIG_ENV, ENV_OVERRIDES, config_from_dict, config_path_from_env, load_config
from node.config._model import (
    CatalogMetadata,
    DatasetConfig,
    Department,
    KafkaConfig,
    NodeConfig,
    PeerConfig,
    PolicyConfig,
    Subscription,
    TlsFiles,
)
from node.config._write import new_config_dict, write_config_file

__all__ = [
    "load_config",
    "config_from_dict",
    "config_path_from_env",
    "CONFIG_ENV",
    "ENV_OVERRIDES",
    "NodeConfig",
    "Department",
    "TlsFiles",
    "DatasetConfig",
    "CatalogMetadata",
    "PeerConfig",
    "PolicyConfig",
    "KafkaConfig",
    "Subscription",
    "new_config_dict",
    "write_config_file",
    "LEVELS",
    "RECORD_TYPES",
    "SHARING_TYPES",
    "UPDATE_CYCLES",
    "CREDIT_CODE_ALPHABET",
    "credit_code_check_char",
    "check_credit_code",
    "is_valid_credit_code",
    "check_division_code",
    "check_resource_code",
    "check_address",
    "check_dataset_id",
    "normalise_sharing_type",
    "normalise_update_cycle",
]
