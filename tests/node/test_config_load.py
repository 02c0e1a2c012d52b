"""node.config: loading, overrides, and every bad-config case naming the file and key."""

from __future__ import annotations

import base64
import os
import string
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from node.config import (
    CREDIT_CODE_ALPHABET,
    check_credit_code,
    check_resource_code,
    credit_code_check_char,
    is_valid_credit_code,
    load_config,
)
from node.errors import ConfigError, NotFound

GOOD = """
[department]
name = "北京市人力资源和社会保障局"
code = "91110000600037341L"
level = "provincial"
division = "110000"

[node]
listen = "127.0.0.1:0"
store = "data/store.db"
signing_key = "keys/signing.pem"
encryption_key = "keys/encryption.pem"
federation = "federation.json"

[tls]
ca = "tls/ca.pem"
cert = "tls/node.pem"
key = "tls/node.key"

[policy]
responsibility_list = "policy/list.toml"
hash_key_file = "keys/masking.key"

[[datasets]]
id = "population"
record_type = "Person"
kafka_publish = true
[datasets.catalog]
title_zh = "人口基础信息"
title_en = "Population basic information"
description = "户籍人口基础信息"
resource_code = "1010100/000001"
update_cycle = "每日"
sharing_type = "有条件共享"
sharing_basis = "《政务数据共享条例》第十二条"
keywords = ["人口", "户籍"]

[[datasets]]
id = "licenses"
record_type = "ElectronicLicense"
[datasets.catalog]
title_zh = "电子证照"
title_en = "Electronic licences"
description = "证照"
resource_code = "1050200/12"
update_cycle = "realtime"
sharing_type = "unconditional"

[[peers]]
code = "91110108551385082Q"
address = "127.0.0.1:50052"
name = "海淀区某局"

[kafka]
bootstrap_servers = ["127.0.0.1:9092", "127.0.0.1:9093"]
[kafka.security]
security_protocol = "SSL"
ssl_cafile = "tls/ca.pem"
[[kafka.subscriptions]]
provider = "91110108551385082Q"
dataset = "enterprises"
"""


def write(tmp_path: Path, text: str, name: str = "node.toml") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def make_files(base: Path) -> None:
    for rel in ("tls/ca.pem", "tls/node.pem", "tls/node.key", "keys/signing.pem", "keys/encryption.pem",
                "federation.json", "policy/list.toml", "keys/masking.key"):
        f = base / rel
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(base64.b64encode(b"x" * 32).decode() if rel.endswith("masking.key") else "x")


def test_good_config_loads_typed_and_resolved(tmp_path: Path) -> None:
    cfg_path = write(tmp_path, GOOD)
    cfg = load_config(cfg_path, env={}, check_files=False)
    assert cfg.department.code == "91110000600037341L"
    assert cfg.department.level == "provincial"
    assert cfg.listen == "127.0.0.1:0"
    assert cfg.store == tmp_path / "data" / "store.db"
    assert cfg.tls.cert == tmp_path / "tls" / "node.pem"
    assert cfg.responsibility_list == tmp_path / "policy" / "list.toml"
    assert cfg.policy.hash_key is None  # key files are read only with check_files
    pop = cfg.dataset("population")
    assert pop.record_type == "Person" and pop.kafka_publish is True
    assert pop.catalog.update_cycle == "daily"
    assert pop.catalog.sharing_type == "conditional"
    assert pop.catalog.keywords == ("人口", "户籍")
    lic = cfg.dataset("licenses")
    assert lic.kafka_publish is False and lic.catalog.sharing_type == "unconditional"
    assert cfg.peer("91110108551385082Q").address == "127.0.0.1:50052"
    assert cfg.kafka is not None
    assert cfg.kafka.bootstrap_servers == ("127.0.0.1:9092", "127.0.0.1:9093")
    assert cfg.kafka.security_kwargs() == {"security_protocol": "SSL",
                                           "ssl_cafile": str(tmp_path / "tls" / "ca.pem")}
    assert cfg.kafka.subscriptions[0].dataset == "enterprises"
    with pytest.raises(NotFound):
        cfg.dataset("nope")
    with pytest.raises(AttributeError):
        cfg.listen = "x"  # type: ignore[misc]


def test_check_files_passes_when_files_exist(tmp_path: Path) -> None:
    make_files(tmp_path)
    cfg = load_config(write(tmp_path, GOOD), env={})
    assert cfg.federation == tmp_path / "federation.json"
    assert cfg.policy.hash_key == b"x" * 32
    assert "xxxx" not in repr(cfg)  # the secret is not in repr


def test_policy_hash_key_inline_and_from_env(tmp_path: Path) -> None:
    key = base64.b64encode(b"k" * 32).decode()
    p = write(tmp_path, GOOD.replace('hash_key_file = "keys/masking.key"', f'hash_key = "{key}"'))
    assert load_config(p, env={}, check_files=False).policy.hash_key == b"k" * 32
    env_key = base64.b64encode(b"e" * 20).decode()
    cfg = load_config(p, env={"SHULIAN_POLICY_HASH_KEY": env_key}, check_files=False)
    assert cfg.policy.hash_key == b"e" * 20
    with pytest.raises(ConfigError) as exc:
        load_config(p, env={"SHULIAN_POLICY_HASH_KEY": base64.b64encode(b"short").decode()}, check_files=False)
    assert exc.value.key == "policy.hash_key" and "at least 16 bytes" in str(exc.value)
    assert "SHULIAN_POLICY_HASH_KEY" in str(exc.value)


def test_missing_referenced_file_names_key(tmp_path: Path) -> None:
    make_files(tmp_path)
    (tmp_path / "tls" / "node.key").unlink()
    p = write(tmp_path, GOOD)
    with pytest.raises(ConfigError) as exc:
        load_config(p, env={})
    assert exc.value.key == "tls.key" and exc.value.file == str(p)
    assert str(p) in str(exc.value) and "[tls.key]" in str(exc.value) and "not found" in str(exc.value)


def test_env_overrides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    p = write(tmp_path, GOOD)
    monkeypatch.chdir(tmp_path / "..")
    env = {
        "SHULIAN_NODE_LISTEN": "0.0.0.0:6000",
        "SHULIAN_DEPARTMENT_NAME": "改名",
        "SHULIAN_NODE_STORE": "elsewhere/s.db",
        "SHULIAN_KAFKA_BOOTSTRAP_SERVERS": "k1:9092, k2:9092",
        "SHULIAN_KAFKA_SECURITY_SASL_PASSWORD": "s3cret",
        "UNRELATED": "1",
    }
    cfg = load_config(p, env=env, check_files=False)
    assert cfg.listen == "0.0.0.0:6000"
    assert cfg.department.name == "改名"
    assert cfg.store == Path(os.path.normpath(Path.cwd() / "elsewhere" / "s.db"))  # env paths: cwd
    assert cfg.kafka is not None and cfg.kafka.bootstrap_servers == ("k1:9092", "k2:9092")
    assert cfg.kafka.security_kwargs()["sasl_password"] == "s3cret"
    assert cfg.source_of("node.listen") == "environment variable SHULIAN_NODE_LISTEN"


def test_bad_env_value_names_the_variable(tmp_path: Path) -> None:
    p = write(tmp_path, GOOD)
    with pytest.raises(ConfigError) as exc:
        load_config(p, env={"SHULIAN_DEPARTMENT_LEVEL": "town"}, check_files=False)
    assert exc.value.key == "department.level"
    assert "SHULIAN_DEPARTMENT_LEVEL" in str(exc.value)


def test_config_path_from_env(tmp_path: Path) -> None:
    p = write(tmp_path, GOOD)
    cfg = load_config(env={"SHULIAN_CONFIG": str(p)}, check_files=False)
    assert cfg.path == p.resolve()
    with pytest.raises(ConfigError, match="SHULIAN_CONFIG"):
        load_config(env={}, check_files=False)


BAD_CASES = [
    # (id, old, new, key, words in the message)
    ("missing key", 'name = "北京市人力资源和社会保障局"\n', "", "department.name", "missing key"),
    ("missing table", "[tls]\n", "[tlsx]\n", "tlsx", "unknown key"),
    ("wrong type", 'listen = "127.0.0.1:0"', "listen = 8080", "node.listen", "must be a string, not an integer"),
    ("wrong bool type", "kafka_publish = true", 'kafka_publish = "yes"', "datasets[0].kafka_publish",
     "true or false"),
    ("bad credit code", 'code = "91110000600037341L"', 'code = "91110000600037341M"', "department.code",
     "check character"),
    ("short credit code", 'code = "91110000600037341L"', 'code = "9111"', "department.code", "18 characters"),
    ("credit code letter I", 'code = "91110000600037341L"', 'code = "9111000060003734IL"', "department.code",
     "alphabet"),
    ("unknown level", 'level = "provincial"', 'level = "township"', "department.level", "unknown level"),
    ("bad division", 'division = "110000"', 'division = "11000"', "department.division", "6 digits"),
    ("bad listen", 'listen = "127.0.0.1:0"', 'listen = "localhost"', "node.listen", "host:port"),
    ("bad port", 'listen = "127.0.0.1:0"', 'listen = "127.0.0.1:70000"', "node.listen", "bad port"),
    ("bad durability", 'store = "data/store.db"', 'store = "data/store.db"\ndurability = "fast"',
     "node.durability", "full or normal"),
    ("unknown key", "[tls]\n", "[tls]\ncrt = 1\n", "tls.crt", "unknown key"),
    ("bad resource code", 'resource_code = "1010100/000001"', 'resource_code = "A10/1"',
     "datasets[0].catalog.resource_code", "resource code"),
    ("bad sharing type", 'sharing_type = "有条件共享"', 'sharing_type = "sometimes"',
     "datasets[0].catalog.sharing_type", "unknown sharing type"),
    ("no basis", 'sharing_basis = "《政务数据共享条例》第十二条"\n', "", "datasets[0].catalog.sharing_basis",
     "legal or policy basis"),
    ("bad cycle", 'update_cycle = "每日"', 'update_cycle = "hourly"', "datasets[0].catalog.update_cycle",
     "unknown update cycle"),
    ("bad record type", 'record_type = "Person"', 'record_type = "Human"', "datasets[0].record_type",
     "unknown record type"),
    ("duplicate dataset", 'id = "licenses"', 'id = "population"', "datasets[1].id", "used twice"),
    ("bad dataset id", 'id = "licenses"', 'id = "bad id"', "datasets[1].id", "dataset id"),
    ("bad peer code", 'code = "91110108551385082Q"\naddress', 'code = "91110108551385082X"\naddress',
     "peers[0].code", "check character"),
    ("peer port zero", 'address = "127.0.0.1:50052"', 'address = "127.0.0.1:0"', "peers[0].address", "bad port"),
    ("bad subscription provider", 'provider = "91110108551385082Q"', 'provider = "x"',
     "kafka.subscriptions[0].provider", "18 characters"),
    ("kafka float setting", 'security_protocol = "SSL"', "security_protocol = 1.5",
     "kafka.security.security_protocol", "string, integer or boolean"),
    ("kafka no servers", 'bootstrap_servers = ["127.0.0.1:9092", "127.0.0.1:9093"]', "bootstrap_servers = []",
     "kafka.bootstrap_servers", "at least one"),
    ("empty name", 'name = "北京市人力资源和社会保障局"', 'name = "  "', "department.name", "must not be empty"),
    ("policy bad key", 'hash_key_file = "keys/masking.key"', 'hash_key = "%%%"', "policy.hash_key", "base64"),
    ("policy unknown key", 'hash_key_file = "keys/masking.key"', 'hashkey = "x"', "policy.hashkey", "unknown key"),
    ("title wrong type", 'title_en = "Electronic licences"', "title_en = [1]", "datasets[1].catalog.title_en",
     "must be a string, not an array"),
]


@pytest.mark.parametrize(("old", "new", "key", "words"), [c[1:] for c in BAD_CASES], ids=[c[0] for c in BAD_CASES])
def test_bad_config_names_file_and_key(tmp_path: Path, old: str, new: str, key: str, words: str) -> None:
    assert old in GOOD
    p = write(tmp_path, GOOD.replace(old, new, 1))
    with pytest.raises(ConfigError) as exc:
        load_config(p, env={}, check_files=False)
    err = exc.value
    assert err.file == str(p), err
    assert err.key == key, err
    text = str(err)
    assert str(p) in text and f"[{key}]" in text and words in text, text


def test_missing_file(tmp_path: Path) -> None:
    p = tmp_path / "absent.toml"
    with pytest.raises(ConfigError) as exc:
        load_config(p, env={})
    assert exc.value.file == str(p) and "not found" in str(exc.value)


def test_section_of_wrong_shape(tmp_path: Path) -> None:
    text = 'peers = "none"\n' + GOOD[: GOOD.index("[[peers]]")]
    p = write(tmp_path, text)
    with pytest.raises(ConfigError) as exc:
        load_config(p, env={}, check_files=False)
    assert exc.value.key == "peers" and exc.value.file == str(p) and "array of tables" in str(exc.value)
    p = write(tmp_path, 'department = "x"\n' + GOOD.replace(GOOD[: GOOD.index("[node]")], ""))
    with pytest.raises(ConfigError) as exc:
        load_config(p, env={}, check_files=False)
    assert exc.value.key == "department" and "must be a table" in str(exc.value)


def test_unreadable_file(tmp_path: Path) -> None:
    """A path that exists but cannot be read (a symlink loop: unreadable even for root)."""
    p = tmp_path / "node.toml"
    p.symlink_to(tmp_path / "node.toml")
    with pytest.raises(ConfigError) as exc:
        load_config(p, env={})
    assert str(p.parent) in str(exc.value.file) and "cannot read the configuration file" in str(exc.value)
    if os.geteuid() != 0:  # as a normal user, also a file without read permission
        q = write(tmp_path, GOOD, "locked.toml")
        q.chmod(0)
        with pytest.raises(ConfigError, match="permission denied"):
            load_config(q, env={})


def test_unreadable_file_directory_and_binary(tmp_path: Path) -> None:
    d = tmp_path / "dir.toml"
    d.mkdir()
    with pytest.raises(ConfigError) as exc:
        load_config(d, env={})
    assert exc.value.file == str(d) and "directory" in str(exc.value)
    b = tmp_path / "bin.toml"
    b.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ConfigError) as exc:
        load_config(b, env={})
    assert exc.value.file == str(b) and "UTF-8" in str(exc.value)


def test_bad_toml_names_file_and_line(tmp_path: Path) -> None:
    p = write(tmp_path, GOOD + "\n[node\n")
    with pytest.raises(ConfigError) as exc:
        load_config(p, env={})
    assert exc.value.file == str(p) and "not valid TOML" in str(exc.value) and "line" in str(exc.value)


def test_credit_code_examples() -> None:
    for code in ("91110000600037341L", "91110108551385082Q", "91350200MA2YJ1XR9G"):
        assert is_valid_credit_code(code)
    assert not is_valid_credit_code("91110000600037341l")
    assert check_credit_code(91110000600037341) is not None


@given(st.text(alphabet=CREDIT_CODE_ALPHABET, min_size=17, max_size=17))
def test_credit_code_check_char_property(prefix: str) -> None:
    check = credit_code_check_char(prefix)
    assert is_valid_credit_code(prefix + check)
    for other in CREDIT_CODE_ALPHABET:
        if other != check:
            assert not is_valid_credit_code(prefix + other)


@given(st.text(alphabet=string.digits + "/AB", max_size=20))
def test_resource_code_checker_total(text: str) -> None:
    problem = check_resource_code(text)
    assert problem is None or "resource code" in problem
    if problem is None:
        head, seq = text.split("/")
        assert len(head) >= 6 and head[0] != "0" and seq.isdigit()
