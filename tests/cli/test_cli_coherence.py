"""`shulian` is one coherent tool: every command has an example, every listing has --json."""

from __future__ import annotations

from collections.abc import Iterator

import click
from click.testing import CliRunner

from node.cli import _COMMANDS, cli

LISTINGS = {"list", "show", "status", "tail"}


def _walk(cmd: click.Command, path: list[str], ctx: click.Context) -> Iterator[tuple[list[str], click.Command]]:
    if isinstance(cmd, click.Group):
        for name in cmd.list_commands(ctx):
            sub = cmd.get_command(ctx, name)
            assert sub is not None, f"{' '.join([*path, name])} is registered but cannot be loaded"
            yield from _walk(sub, [*path, name], ctx)
    else:
        yield path, cmd


def _commands() -> list[tuple[list[str], click.Command]]:
    return list(_walk(cli, [], click.Context(cli)))


def test_every_registered_group_loads() -> None:
    ctx = click.Context(cli)
    for name in _COMMANDS:
        assert cli.get_command(ctx, name) is not None, name


def test_every_command_has_help_with_an_example() -> None:
    for path, cmd in _commands():
        assert "example" in (cmd.help or "").lower(), " ".join(path)
        r = CliRunner().invoke(cli, [*path, "--help"])
        assert r.exit_code == 0, (path, r.output)


def test_every_listing_has_json() -> None:
    for path, cmd in _commands():
        if path[-1] in LISTINGS and path != ["list"]:
            assert any("--json" in p.opts for p in cmd.params if isinstance(p, click.Option)), " ".join(path)


def test_unknown_command_is_a_usage_error() -> None:
    r = CliRunner().invoke(cli, ["no-such-command"])
    assert r.exit_code == 2
