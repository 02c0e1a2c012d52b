"""``shulian``: the admin CLI.

Each command group lives in its own module and is imported only when used, so
``shulian --help`` stays fast and one broken area never hides the others.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click

from node.errors import EXIT_USAGE, ShulianError

__all__ = ["main", "cli"]

# command name -> "module:attribute" (a click.Command or click.Group)
_COMMANDS: dict[str, str] = {
    "init": "node.cli.init:init",
    "ca": "node.cli.ca:ca",
    "federation": "node.cli.federation:federation",
    "standard": "node.cli.standard:standard",
    "validate": "node.cli.validate:validate",
    "map": "adapters.cli:map_group",
    "catalog": "node.cli.catalog:catalog",
    "datasets": "node.cli.datasets:datasets",
    "list": "node.cli.policy:list_group",
    "access": "node.cli.access:access",
    "audit": "node.cli.audit:audit",
    "quarantine": "node.cli.quarantine:quarantine",
    "status": "node.cli.status:status",
    "peers": "node.cli.peers:peers",
    "demo": "node.cli.demo:demo",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(_COMMANDS))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        cmd = super().get_command(ctx, cmd_name)
        if cmd is not None:
            return cmd
        target = _COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:  # command group not built yet
                return None
            raise
        found: click.Command = getattr(module, attr)
        return found


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="shulian")
def cli() -> None:
    """Shulian (数链) admin CLI: the standard, validation, mapping and node operations.

    Exit codes: 0 ok, 1 findings (invalid records, failed checks), 2 usage or
    input error, 3 a node or broker unavailable.
    """


def main(argv: list[str] | None = None) -> Any:
    try:
        return cli.main(args=argv, standalone_mode=True)
    except ShulianError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code or EXIT_USAGE)
