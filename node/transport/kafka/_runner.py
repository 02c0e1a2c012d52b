"""``python -m node.transport.kafka run --config node.toml``: the Kafka exchange on its own.

The daemon (``shulian-node run``) runs :class:`KafkaExchange` next to the gRPC server;
this runner runs it alone, over the same core (:class:`node.service.NodeCore`: store,
keys, the responsibility list and federation directory reloaded when they change,
the validator of the configured standard). Run one or the other for a node, not both.
It logs JSON lines to stderr and, with ``--status-file``, keeps the current health
there as JSON (rewritten every half second).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import click

from node.errors import EXIT_USAGE, ShulianError

__all__ = ["main", "cli", "JsonFormatter"]

log = logging.getLogger(__name__)

class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {"time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"), "level": record.levelname,
                               "logger": record.name, "message": record.getMessage()}
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


def _write_status(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    os.replace(tmp, path)


async def _run(config: Path, status_file: Path | None, standard_dir: Path | None, publish: bool,
               consume: bool) -> None:
    from node.config import load_config
    from node.service import NodeCore
    from node.transport.kafka._exchange import KafkaExchange, KafkaOptions
    from node.validation import get_validator

    cfg = load_config(config)
    if cfg.kafka is None:
        raise ShulianError(f"{cfg.path}: no [kafka] section: nothing to run", reason="BAD_CONFIG")
    validator = get_validator("fast", standard_dir) if standard_dir is not None else None
    # the same core the daemon opens: store, keys, reloading policy and directory, validator
    core = await asyncio.to_thread(NodeCore.open, cfg, validator=validator)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    with core:
        async with KafkaExchange(cfg=cfg, store=core.store, evidence=core.evidence, validator=core.validator,
                                 policy=core.policy.current, directory=core.directory.current,
                                 options=KafkaOptions(publish=publish, consume=consume)) as kx:
            log.info("Kafka exchange of %s (%s) running", cfg.department.name, cfg.department.code)
            while not stop.is_set():
                if status_file is not None:
                    _write_status(status_file, {"pid": os.getpid(), "time": time.time(), **kx.health().to_dict()})
                try:
                    await asyncio.wait_for(stop.wait(), 0.5)
                except TimeoutError:
                    pass
            log.info("stopping the Kafka exchange")
        if status_file is not None:
            _write_status(status_file, {"pid": os.getpid(), "time": time.time(), **kx.health().to_dict()})


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """The Kafka exchange of a Shulian node, run on its own."""


@cli.command("run")
@click.option("--config", "config", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The node configuration (default: $SHULIAN_CONFIG).")
@click.option("--status-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Keep the exchange's health here as JSON.")
@click.option("--standard", "standard_dir", type=click.Path(file_okay=False, exists=True, path_type=Path),
              default=None, help="Validate against the standard in this directory (default: [node] standard, "
              "else the shipped one).")
@click.option("--publish/--no-publish", default=True, show_default=True, help="Drain the outbox to Kafka.")
@click.option("--consume/--no-consume", default=True, show_default=True, help="Read the subscriptions.")
@click.option("--log-level", default="INFO", show_default=True,
              type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"]))
def run(config: Path | None, status_file: Path | None, standard_dir: Path | None, publish: bool, consume: bool,
        log_level: str) -> None:
    """Publish the outbox and consume the subscriptions until SIGTERM or Ctrl-C.

    \b
    Example:
      python -m node.transport.kafka run --config nodes/hrss/node.toml --status-file /tmp/kafka.json

    Exit codes: 0 stopped cleanly, 2 bad configuration.
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    logging.basicConfig(level=getattr(logging, log_level), handlers=[handler], force=True)
    logging.getLogger("aiokafka").setLevel(max(logging.WARNING, getattr(logging, log_level)))
    try:
        from node.config import config_path_from_env

        path = config or config_path_from_env()
        if path is None:
            raise ShulianError("no configuration file given; pass --config or set SHULIAN_CONFIG",
                               reason="BAD_CONFIG")
        asyncio.run(_run(path, status_file, standard_dir, publish, consume))
    except ShulianError as exc:
        click.echo(f"error: {exc.message}", err=True)
        sys.exit(exc.exit_code or EXIT_USAGE)


def main(argv: list[str] | None = None) -> Any:
    return cli.main(args=argv, prog_name="python -m node.transport.kafka", standalone_mode=True)
