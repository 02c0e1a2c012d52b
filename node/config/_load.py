"""Loading and checking a node configuration file (TOML) plus SHULIAN_* overrides.

This module is the only place in Shulian that reads ``os.environ``.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from node.config._codes import (
    LEVELS,
    RECORD_TYPES,
    check_address,
    check_credit_code,
    check_dataset_id,
    check_division_code,
    check_resource_code,
    normalise_sharing_type,
    normalise_update_cycle,
)
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
from node.errors import ConfigError

__all__ = ["load_config", "config_from_dict", "config_path_from_env", "ENV_OVERRIDES", "CONFIG_ENV"]

log = logging.getLogger(__name__)

CONFIG_ENV = "SHULIAN_CONFIG"

# environment variable -> (section, key). Every scalar key of these sections can be
# overridden; SHULIAN_KAFKA_SECURITY_<NAME> sets kafka.security.<name> (e.g. a SASL password).
ENV_OVERRIDES: dict[str, tuple[str, str]] = {
    f"SHULIAN_{section.upper()}_{key.upper()}": (section, key)
    for section, keys in {
        "department": ("name", "code", "level", "division"),
        "node": (
            "listen",
            "store",
            "signing_key",
            "encryption_key",
            "federation",
            "durability",
            "standard",
        ),
        "policy": ("responsibility_list", "hash_key", "hash_key_file"),
        "tls": ("ca", "cert", "key"),
        "kafka": ("bootstrap_servers",),
    }.items()
    for key in keys
}
_KAFKA_SECURITY_ENV = "SHULIAN_KAFKA_SECURITY_"

_PATH_KEYS = {
    "node.store",
    "node.signing_key",
    "node.encryption_key",
    "node.federation",
    "policy.responsibility_list",
    "policy.hash_key_file",
    "tls.ca",
    "tls.cert",
    "tls.key",
}
# kafka.security settings that name files (resolved like every other path)
_KAFKA_FILE_KEYS = ("ssl_cafile", "ssl_certfile", "ssl_keyfile", "ssl_crlfile", "ssl_ca_location",
                    "ssl_certificate_location", "ssl_key_location")
_DURABILITY = ("full", "normal")


def config_path_from_env(env: Mapping[str, str] | None = None) -> Path | None:
    """The configuration file named by ``SHULIAN_CONFIG``, if set."""
    value = (os.environ if env is None else env).get(CONFIG_ENV)
    return Path(value) if value else None


def load_config(
    path: str | os.PathLike[str] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    check_files: bool = True,
) -> NodeConfig:
    """Load, override from the environment, and check a node configuration.

    ``path`` defaults to ``$SHULIAN_CONFIG``. ``env`` defaults to ``os.environ``.
    With ``check_files`` every file the node needs at start (TLS files, keys, the
    federation directory, the responsibility list) must exist and be readable.
    Raises :class:`ConfigError` naming the file, the key and what is wrong.
    """
    environ: Mapping[str, str] = os.environ if env is None else env
    if path is None:
        found = config_path_from_env(environ)
        if found is None:
            raise ConfigError(f"no configuration file given; pass --config or set {CONFIG_ENV}")
        path = found
    cfg_path = Path(os.path.abspath(Path(path).expanduser()))
    try:
        raw_bytes = cfg_path.read_bytes()
    except FileNotFoundError as exc:
        raise ConfigError("configuration file not found", file=str(cfg_path)) from exc
    except IsADirectoryError as exc:
        raise ConfigError("is a directory, not a configuration file", file=str(cfg_path)) from exc
    except PermissionError as exc:
        raise ConfigError("cannot read the configuration file: permission denied", file=str(cfg_path)) from exc
    except OSError as exc:
        raise ConfigError(f"cannot read the configuration file: {exc.strerror}", file=str(cfg_path)) from exc
    try:
        data = tomllib.loads(raw_bytes.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError("is not UTF-8 text", file=str(cfg_path)) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}", file=str(cfg_path)) from exc
    return config_from_dict(data, path=cfg_path, env=environ, check_files=check_files)


def config_from_dict(
    data: Mapping[str, Any],
    *,
    path: Path,
    env: Mapping[str, str] | None = None,
    check_files: bool = False,
) -> NodeConfig:
    """Build a :class:`NodeConfig` from parsed TOML (``env`` overrides applied if given)."""
    reader = _Reader(path, env or {})
    return reader.build(data, check_files=check_files)


class _Reader:
    def __init__(self, path: Path, env: Mapping[str, str]) -> None:
        self.path = path
        self.base = path.parent
        self.env = env
        self.sources: dict[str, str] = {}

    # ---- errors -------------------------------------------------------------------------
    def fail(self, key: str, message: str) -> ConfigError:
        return ConfigError(message, file=self.sources.get(key, str(self.path)), key=key)

    # ---- overrides ----------------------------------------------------------------------
    def apply_env(self, data: dict[str, Any]) -> None:
        for name, (section, key) in ENV_OVERRIDES.items():
            value = self.env.get(name)
            if value is None:
                continue
            table = data.setdefault(section, {})
            if not isinstance(table, dict):
                continue  # the type error is reported for the file below
            if section == "kafka" and key == "bootstrap_servers":
                table[key] = [s.strip() for s in value.split(",") if s.strip()]
            else:
                table[key] = value
            self.sources[f"{section}.{key}"] = f"environment variable {name}"
            log.debug("config override from %s", name)
        for name, value in self.env.items():
            if name.startswith(_KAFKA_SECURITY_ENV) and len(name) > len(_KAFKA_SECURITY_ENV):
                key = name[len(_KAFKA_SECURITY_ENV):].lower()
                kafka = data.setdefault("kafka", {})
                if isinstance(kafka, dict):
                    security = kafka.setdefault("security", {})
                    if isinstance(security, dict):
                        security[key] = value
                        self.sources[f"kafka.security.{key}"] = f"environment variable {name}"

    # ---- typed getters ------------------------------------------------------------------
    def table(self, parent: Mapping[str, Any], key: str, keypath: str, *, required: bool = True) -> dict[str, Any]:
        value = parent.get(key)
        if value is None:
            if required:
                raise self.fail(keypath, f"missing table [{keypath}]")
            return {}
        if not isinstance(value, dict):
            raise self.fail(keypath, f"must be a table, not {_tname(value)}")
        return value

    def known(self, table: Mapping[str, Any], allowed: set[str], keypath: str) -> None:
        for key in table:
            if key not in allowed:
                where = f"{keypath}.{key}" if keypath else key
                raise self.fail(where, f"unknown key; allowed here: {', '.join(sorted(allowed))}")

    def string(self, table: Mapping[str, Any], key: str, keypath: str, *, required: bool = True,
               default: str = "") -> str:
        full = f"{keypath}.{key}"
        if key not in table:
            if required:
                raise self.fail(full, "missing key")
            return default
        value = table[key]
        if not isinstance(value, str):
            raise self.fail(full, f"must be a string, not {_tname(value)}")
        if required and not value.strip():
            raise self.fail(full, "must not be empty")
        return value

    def boolean(self, table: Mapping[str, Any], key: str, keypath: str, default: bool) -> bool:
        full = f"{keypath}.{key}"
        if key not in table:
            return default
        value = table[key]
        if isinstance(value, str) and full in self.sources:  # from the environment
            lowered = value.strip().lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
        if not isinstance(value, bool):
            raise self.fail(full, f"must be true or false, not {_tname(value)}")
        return value

    def strings(self, table: Mapping[str, Any], key: str, keypath: str) -> tuple[str, ...]:
        full = f"{keypath}.{key}"
        value = table.get(key, [])
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(full, f"must be a list of strings, not {_tname(value)}")
        return tuple(value)

    def path_value(self, table: Mapping[str, Any], key: str, keypath: str, *, required: bool = True) -> Path | None:
        full = f"{keypath}.{key}"
        text = self.string(table, key, keypath, required=required)
        if not text:
            return None
        p = Path(text).expanduser()
        if not p.is_absolute():
            # file values are relative to the config file's folder; environment values to the cwd
            base = Path.cwd() if full in self.sources else self.base
            p = base / p
        return Path(os.path.normpath(p))

    def code(self, table: Mapping[str, Any], key: str, keypath: str) -> str:
        value = self.string(table, key, keypath)
        problem = check_credit_code(value)
        if problem:
            raise self.fail(f"{keypath}.{key}", problem)
        return value

    # ---- sections -----------------------------------------------------------------------
    def build(self, data: Mapping[str, Any], *, check_files: bool) -> NodeConfig:
        mutable: dict[str, Any] = {k: (dict(v) if isinstance(v, dict) else v) for k, v in data.items()}
        if isinstance(mutable.get("kafka"), dict) and isinstance(mutable["kafka"].get("security"), dict):
            mutable["kafka"]["security"] = dict(mutable["kafka"]["security"])
        self.apply_env(mutable)
        self.known(mutable, {"department", "node", "tls", "policy", "datasets", "peers", "kafka"}, "")

        department = self.department(self.table(mutable, "department", "department"))
        node = self.table(mutable, "node", "node")
        self.known(
            node, {"listen", "store", "signing_key", "encryption_key", "federation", "durability", "standard"}, "node"
        )
        listen = self.string(node, "listen", "node")
        problem = check_address(listen)
        if problem:
            raise self.fail("node.listen", problem)
        durability = self.string(node, "durability", "node", required=False, default="full")
        if durability not in _DURABILITY:
            raise self.fail("node.durability", f"unknown durability {durability!r}; use full or normal")
        tls_table = self.table(mutable, "tls", "tls")
        self.known(tls_table, {"ca", "cert", "key"}, "tls")
        tls = TlsFiles(
            ca=_req(self.path_value(tls_table, "ca", "tls")),
            cert=_req(self.path_value(tls_table, "cert", "tls")),
            key=_req(self.path_value(tls_table, "key", "tls")),
        )
        datasets = self.datasets(mutable.get("datasets", []))
        peers = self.peers(mutable.get("peers", []))
        kafka = self.kafka(mutable.get("kafka"))
        cfg = NodeConfig(
            path=self.path,
            department=department,
            listen=listen,
            tls=tls,
            signing_key=_req(self.path_value(node, "signing_key", "node")),
            store=_req(self.path_value(node, "store", "node")),
            federation=_req(self.path_value(node, "federation", "node")),
            encryption_key=self.path_value(node, "encryption_key", "node", required=False),
            policy=self.policy(self.table(mutable, "policy", "policy", required=False), check_files),
            durability=durability,
            standard=self.path_value(node, "standard", "node", required=False),
            datasets=datasets,
            peers=peers,
            kafka=kafka,
            sources=tuple(sorted(self.sources.items())),
        )
        if check_files:
            self.check_files(cfg)
            if cfg.standard is not None and not (cfg.standard / "shapes" / "records.ttl").is_file():
                raise self.fail(
                    "node.standard",
                    f"{cfg.standard} is not a standard folder (no shapes/records.ttl); "
                    "copy the shipped ontology/ folder and import your division list into it",
                )
        return cfg

    def department(self, table: Mapping[str, Any]) -> Department:
        self.known(table, {"name", "code", "level", "division"}, "department")
        name = self.string(table, "name", "department")
        code = self.code(table, "code", "department")
        level = self.string(table, "level", "department")
        if level not in LEVELS:
            raise self.fail("department.level", f"unknown level {level!r}; use one of: {', '.join(LEVELS)}")
        division = self.string(table, "division", "department")
        problem = check_division_code(division)
        if problem:
            raise self.fail("department.division", problem)
        return Department(name=name, code=code, level=level, division=division)

    def policy(self, table: Mapping[str, Any], read_key_file: bool) -> PolicyConfig:
        self.known(table, {"responsibility_list", "hash_key", "hash_key_file"}, "policy")
        key: bytes | None = None
        if "hash_key" in table:
            text = self.string(table, "hash_key", "policy")
            try:
                key = base64.b64decode(text, validate=True)
            except (binascii.Error, ValueError) as exc:
                raise self.fail("policy.hash_key", "must be base64 (e.g. of 32 random bytes)") from exc
            if "hash_key_file" in table:
                raise self.fail("policy.hash_key", "give hash_key or hash_key_file, not both")
        key_file = self.path_value(table, "hash_key_file", "policy", required=False)
        if key_file is not None and read_key_file:
            try:
                key = base64.b64decode(key_file.read_bytes().strip(), validate=True)
            except OSError as exc:
                raise self.fail("policy.hash_key_file", f"cannot read {key_file}: {exc.strerror}") from exc
            except (binascii.Error, ValueError) as exc:
                raise self.fail("policy.hash_key_file", f"{key_file} must hold the key in base64") from exc
        if key is not None and len(key) < 16:
            where = "policy.hash_key" if "hash_key" in table else "policy.hash_key_file"
            raise self.fail(where, f"the masking key must have at least 16 bytes, it has {len(key)}")
        return PolicyConfig(
            responsibility_list=self.path_value(table, "responsibility_list", "policy", required=False),
            hash_key=key,
        )

    def array_of_tables(self, value: Any, keypath: str) -> list[dict[str, Any]]:
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise self.fail(keypath, f"must be an array of tables ([[{keypath}]]), not {_tname(value)}")
        return value

    def datasets(self, value: Any) -> tuple[DatasetConfig, ...]:
        out: list[DatasetConfig] = []
        seen: set[str] = set()
        for i, table in enumerate(self.array_of_tables(value, "datasets")):
            kp = f"datasets[{i}]"
            self.known(table, {"id", "record_type", "kafka_publish", "catalog"}, kp)
            ds_id = self.string(table, "id", kp)
            problem = check_dataset_id(ds_id)
            if problem:
                raise self.fail(f"{kp}.id", problem)
            if ds_id in seen:
                raise self.fail(f"{kp}.id", f"dataset id {ds_id!r} is used twice")
            seen.add(ds_id)
            record_type = self.string(table, "record_type", kp)
            if record_type not in RECORD_TYPES:
                raise self.fail(f"{kp}.record_type",
                                f"unknown record type {record_type!r}; use one of: {', '.join(RECORD_TYPES)}")
            out.append(DatasetConfig(
                id=ds_id,
                record_type=record_type,
                kafka_publish=self.boolean(table, "kafka_publish", kp, False),
                catalog=self.catalog(self.table(table, "catalog", f"{kp}.catalog"), f"{kp}.catalog"),
            ))
        return tuple(out)

    def catalog(self, table: Mapping[str, Any], kp: str) -> CatalogMetadata:
        self.known(table, {"title_zh", "title_en", "description", "description_en", "resource_code",
                           "update_cycle", "sharing_type", "sharing_conditions", "sharing_basis",
                           "sharing_method", "open_to_public", "keywords"}, kp)
        resource_code = self.string(table, "resource_code", kp)
        problem = check_resource_code(resource_code)
        if problem:
            raise self.fail(f"{kp}.resource_code", problem)
        cycle, problem = normalise_update_cycle(self.string(table, "update_cycle", kp))
        if cycle is None:
            raise self.fail(f"{kp}.update_cycle", problem or "bad value")
        sharing, problem = normalise_sharing_type(self.string(table, "sharing_type", kp))
        if sharing is None:
            raise self.fail(f"{kp}.sharing_type", problem or "bad value")
        basis = self.string(table, "sharing_basis", kp, required=False)
        if sharing != "unconditional" and not basis.strip():
            raise self.fail(f"{kp}.sharing_basis",
                            f"a {sharing} dataset must cite its legal or policy basis (依据) in sharing_basis")
        return CatalogMetadata(
            title_zh=self.string(table, "title_zh", kp),
            title_en=self.string(table, "title_en", kp),
            description=self.string(table, "description", kp),
            description_en=self.string(table, "description_en", kp, required=False),
            resource_code=resource_code,
            update_cycle=cycle,
            sharing_type=sharing,
            sharing_conditions=self.string(table, "sharing_conditions", kp, required=False),
            sharing_basis=basis,
            sharing_method=self.string(table, "sharing_method", kp, required=False, default="系统对接"),
            open_to_public=self.boolean(table, "open_to_public", kp, False),
            keywords=self.strings(table, "keywords", kp),
        )

    def peers(self, value: Any) -> tuple[PeerConfig, ...]:
        out: list[PeerConfig] = []
        seen: set[str] = set()
        for i, table in enumerate(self.array_of_tables(value, "peers")):
            kp = f"peers[{i}]"
            self.known(table, {"code", "address", "name"}, kp)
            code = self.code(table, "code", kp)
            if code in seen:
                raise self.fail(f"{kp}.code", f"peer {code} is listed twice")
            seen.add(code)
            address = self.string(table, "address", kp)
            problem = check_address(address, allow_port_zero=False)
            if problem:
                raise self.fail(f"{kp}.address", problem)
            out.append(PeerConfig(code=code, address=address, name=self.string(table, "name", kp, required=False)))
        return tuple(out)

    def kafka(self, value: Any) -> KafkaConfig | None:
        if value is None:
            return None
        if not isinstance(value, dict):
            raise self.fail("kafka", f"must be a table, not {_tname(value)}")
        self.known(value, {"bootstrap_servers", "security", "subscriptions"}, "kafka")
        servers = self.strings(value, "bootstrap_servers", "kafka")
        if not servers:
            raise self.fail("kafka.bootstrap_servers", "missing key: at least one 'host:port'")
        for server in servers:
            problem = check_address(server, allow_port_zero=False)
            if problem:
                raise self.fail("kafka.bootstrap_servers", problem)
        security: list[tuple[str, str | int | bool]] = []
        for key, item in sorted(self.table(value, "security", "kafka.security", required=False).items()):
            kp = f"kafka.security.{key}"
            if not isinstance(item, str | int | bool) or isinstance(item, float):
                raise self.fail(kp, f"must be a string, integer or boolean, not {_tname(item)}")
            if key in _KAFKA_FILE_KEYS and isinstance(item, str):
                p = Path(item).expanduser()
                if not p.is_absolute():
                    p = (Path.cwd() if kp in self.sources else self.base) / p
                item = os.path.normpath(p)
            security.append((key, item))
        subs: list[Subscription] = []
        for i, table in enumerate(self.array_of_tables(value.get("subscriptions", []), "kafka.subscriptions")):
            kp = f"kafka.subscriptions[{i}]"
            self.known(table, {"provider", "dataset"}, kp)
            provider = self.code(table, "provider", kp)
            dataset = self.string(table, "dataset", kp)
            problem = check_dataset_id(dataset)
            if problem:
                raise self.fail(f"{kp}.dataset", problem)
            subs.append(Subscription(provider=provider, dataset=dataset))
        return KafkaConfig(bootstrap_servers=servers, security=tuple(security), subscriptions=tuple(subs))

    def check_files(self, cfg: NodeConfig) -> None:
        files: list[tuple[str, Path | None]] = [
            ("tls.ca", cfg.tls.ca),
            ("tls.cert", cfg.tls.cert),
            ("tls.key", cfg.tls.key),
            ("node.signing_key", cfg.signing_key),
            ("node.encryption_key", cfg.encryption_key),
            ("node.federation", cfg.federation),
            ("policy.responsibility_list", cfg.policy.responsibility_list),
        ]
        if cfg.kafka is not None:
            files += [(f"kafka.security.{k}", Path(str(v))) for k, v in cfg.kafka.security
                      if k in _KAFKA_FILE_KEYS]
        for key, p in files:
            if p is None:
                continue
            if not p.exists():
                raise self.fail(key, f"file not found: {p}")
            if not p.is_file():
                raise self.fail(key, f"not a regular file: {p}")
            if not os.access(p, os.R_OK):
                raise self.fail(key, f"file not readable: {p}")
        store_dir = cfg.store.parent
        if store_dir.exists() and not store_dir.is_dir():
            raise self.fail("node.store", f"the store's folder {store_dir} is not a directory")


def _req(value: Path | None) -> Path:
    assert value is not None  # required=True never returns None
    return value


def _tname(value: object) -> str:
    return {
        str: "a string", int: "an integer", float: "a number", bool: "a boolean",
        list: "an array", dict: "a table",
    }.get(type(value), type(value).__name__)
