"""Writing a node configuration file (``shulian init``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import tomli_w

__all__ = ["write_config_file", "new_config_dict"]

_HEADER = """\
# Shulian (数链) node configuration.
# Relative paths are resolved against this file's folder.
# Every scalar key can be overridden by an environment variable
# SHULIAN_<SECTION>_<KEY>, e.g. SHULIAN_NODE_LISTEN=0.0.0.0:50051.
# Datasets are added as [[datasets]] tables with a [datasets.catalog] table;
# peers as [[peers]] (code, address); Kafka under [kafka];
# the responsibility list as [policy] responsibility_list = "path".

"""


def new_config_dict(
    *,
    name: str,
    code: str,
    level: str,
    division: str,
    listen: str,
    federation: str,
    tls_dir: str = "tls",
    keys_dir: str = "keys",
    store: str = "data/store.db",
    durability: str = "full",
) -> dict[str, Any]:
    """The content of a fresh configuration (paths relative to the config folder)."""
    return {
        "department": {"name": name, "code": code, "level": level, "division": division},
        "node": {
            "listen": listen,
            "store": store,
            "durability": durability,
            "signing_key": f"{keys_dir}/signing.pem",
            "encryption_key": f"{keys_dir}/encryption.pem",
            "federation": federation,
        },
        "tls": {"ca": f"{tls_dir}/ca.pem", "cert": f"{tls_dir}/node.pem", "key": f"{tls_dir}/node.key"},
        "policy": {"hash_key_file": f"{keys_dir}/masking.key"},
    }


def write_config_file(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` as TOML with an explanatory header, atomically."""
    text = _HEADER + tomli_w.dumps(data)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
