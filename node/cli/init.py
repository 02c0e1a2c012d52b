"""``shulian init``: create a node's folder with a working configuration."""

from __future__ import annotations

import base64
import functools
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import ParamSpec, TypeVar

import click

from node.cli._common import fail_cleanly
from node.errors import AlreadyExists, InputError

__all__ = ["init", "cli_errors"]

log = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")

CONFIG_NAME = "node.toml"


def cli_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """The shared ``fail_cleanly`` (ShulianError -> one line + exit code), plus OS errors as input errors."""

    @functools.wraps(fn)
    def inner(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except OSError as exc:
            where = f"{exc.filename}: " if exc.filename else ""
            raise InputError(f"{where}{exc.strerror or exc}") from exc

    return fail_cleanly(inner)


def _check(option: str, problem: str | None) -> None:
    if problem:
        raise InputError(f"{option}: {problem}")


@click.command("init")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--department", "name", required=True, help="The department's name, e.g. 北京市人力资源和社会保障局.")
@click.option("--code", required=True, help="Its unified social credit code (GB 32100, 18 characters).")
@click.option("--level", required=True, type=click.Choice(["national", "provincial", "city", "county"]),
              help="Administrative level.")
@click.option("--division", required=True, help="Its GB/T 2260 division code (6 digits).")
@click.option("--listen", default="127.0.0.1:50051", show_default=True, help="host:port the node listens on.")
@click.option("--address", default=None, help="host:port other nodes use to reach it (default: --listen).")
@click.option("--ca-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Federation CA folder: issue this node's certificate and add it to the federation directory.")
@click.option("--federation", "federation_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Federation directory file (default: <ca-dir>/federation.json, else DIRECTORY/federation.json).")
@click.option("--host", "hosts", multiple=True,
              help="Extra host name or IP for the certificate (127.0.0.1 and localhost are always in).")
@click.option("--durability", type=click.Choice(["full", "normal"]), default="full", show_default=True,
              help="Store durability: full survives power loss; normal only a killed process.")
@click.option("--force", is_flag=True, help="Overwrite an existing node.toml (keys are kept).")
@cli_errors
def init(directory: Path, name: str, code: str, level: str, division: str, listen: str, address: str | None,
         ca_dir: Path | None, federation_file: Path | None, hosts: tuple[str, ...], durability: str,
         force: bool) -> None:
    """Create a node folder: node.toml, an Ed25519 signing key, an X25519 encryption key,
    a masking secret, and with --ca-dir a TLS certificate issued by the federation CA.

    \b
    Example:
      shulian ca init ca/
      shulian init nodes/hrss --department 北京市人力资源和社会保障局 \\
          --code 11110000000021135M --level provincial --division 110000 \\
          --listen 127.0.0.1:50051 --ca-dir ca/

    Exit codes: 0 done, 2 bad input or the folder already holds a node.
    """
    from node.config import (
        check_address,
        check_credit_code,
        check_division_code,
        load_config,
        new_config_dict,
        write_config_file,
    )
    from node.federation import (
        FederationDirectory,
        load_directory,
        member_from_config,
        read_directory_file,
        sign_directory,
        write_directory_file,
    )
    from node.pki import (
        generate_encryption_key,
        generate_signing_key,
        issue_node_certificate,
        load_ca,
        write_node_certificate,
        write_private_key,
    )

    _check("--code", check_credit_code(code))
    _check("--division", check_division_code(division))
    _check("--listen", check_address(listen))
    if address is not None:
        _check("--address", check_address(address, allow_port_zero=False))
    if not name.strip():
        raise InputError("--department: the name must not be empty")
    directory = directory.resolve()
    config_path = directory / CONFIG_NAME
    if config_path.exists() and not force:
        raise AlreadyExists(f"{config_path} exists (use --force to overwrite it)")
    ca = load_ca(ca_dir) if ca_dir is not None else None  # fail before writing anything

    directory.mkdir(parents=True, exist_ok=True)
    keys = directory / "keys"
    if not (keys / "signing.pem").exists():
        generate_signing_key(keys / "signing.pem")
    if not (keys / "encryption.pem").exists():
        generate_encryption_key(keys / "encryption.pem")
    if not (keys / "masking.key").exists():  # secret for hash masking (node.policy), base64
        write_private_key(keys / "masking.key", base64.b64encode(os.urandom(32)) + b"\n")

    if federation_file is not None:
        federation = str(federation_file.resolve())
    elif ca_dir is not None:
        federation = str((ca_dir / "federation.json").resolve())
    else:
        federation = "federation.json"
    data = new_config_dict(name=name, code=code, level=level, division=division, listen=listen,
                           federation=federation, durability=durability)
    write_config_file(config_path, data)

    lines = [f"wrote {config_path}", f"  signing key      {keys / 'signing.pem'}",
             f"  encryption key   {keys / 'encryption.pem'}", f"  masking key      {keys / 'masking.key'}"]
    if ca is not None:
        listen_host = listen.rpartition(":")[0].strip("[]")
        all_hosts = ["127.0.0.1", "localhost", *hosts]
        if listen_host not in ("0.0.0.0", "::") and listen_host not in all_hosts:
            all_hosts.append(listen_host)
        issued = issue_node_certificate(ca, code=code, name=name, hosts=all_hosts)
        cert_path, _, _ = write_node_certificate(issued, directory / "tls", ca)
        lines.append(f"  certificate      {cert_path} (issued by {ca_dir})")
        cfg = load_config(config_path, env={}, check_files=False)
        member = member_from_config(cfg, address=address)
        fed_path = Path(federation)
        if fed_path.exists():
            _, signature = read_directory_file(fed_path)
            current = load_directory(fed_path, ca.cert) if signature is not None else read_directory_file(fed_path)[0]
        else:
            current = FederationDirectory(federation=ca.name)
        updated = current.with_member(member)
        write_directory_file(fed_path, updated, sign_directory(updated, ca))
        lines.append(f"  federation       {fed_path} (member added, version {updated.version}, signed)")
        load_config(config_path, env={}, check_files=True)
    else:
        lines += ["next steps:",
                  f"  shulian ca issue --ca-dir CA --department {code} --name {name} --out {directory / 'tls'}",
                  f"  shulian federation add --ca-dir CA --from-config {config_path} --sign",
                  f"  and copy the signed federation directory to {directory / federation}"]
    for line in lines:
        click.echo(line)
