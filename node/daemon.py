"""``shulian-node``: the node daemon.

    shulian-node run --config node.toml        # serve gRPC (and Kafka when configured)
    shulian-node check --config node.toml      # check the configuration and exit

Start-up loads the configuration (a bad one is one line naming the file, the key and
what is wrong, exit 2), opens the store, registers the configured datasets, loads
the signing key, the federation directory (signature checked) and the
responsibility list, compiles the validator, then serves. Logs are JSON lines on
stderr (time, level, logger, message, department, request id, peer, method ...);
the line ``{"message": "serving", "address": "host:port", ...}`` says it is ready.

SIGTERM or SIGINT: the health service turns NOT_SERVING, new calls are refused,
running calls get ``--grace`` seconds to finish (following subscriptions end at
once with their cursor, so consumers resume), Kafka is stopped, the store closed.

Kafka hook. When the configuration has a ``[kafka]`` table the daemon runs, alongside
the gRPC server::

    from node.transport.kafka import KafkaExchange
    async with KafkaExchange(cfg=cfg, store=core.store, evidence=core.evidence,
                             validator=core.validator, policy=core.policy.current,
                             directory=core.directory.current) as kx:
        ...  # kx.health() polled every few seconds

where ``policy`` is :meth:`node.service.PolicySource.current` (a callable returning the
responsibility list in force, reloaded when its file or the store's policy version
changes) and ``directory`` :meth:`node.service.DirectorySource.current` (the verified
federation directory, reloaded when its file changes). ``health()``
(sync or async) returns a bool, or a mapping / object with ``ok`` (or ``healthy``) and
an optional ``detail``; False means degraded: the health service reports
``shulian.kafka`` NOT_SERVING and GetStatus ``state = degraded``, while gRPC keeps
serving. If entering the exchange fails (broker down), the daemon keeps serving gRPC,
reports Kafka down and retries with back-off. Without ``node.transport.kafka``
installed the daemon runs gRPC only and says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import inspect
import logging
import signal
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click

from node.errors import EXIT_OK, EXIT_USAGE, ConfigError, ShulianError

__all__ = ["main", "run_node", "kafka_health"]

log = logging.getLogger(__name__)

KAFKA_HEALTH_SECONDS = 2.0
KAFKA_RETRY_MAX_SECONDS = 30.0


def kafka_health(value: Any) -> tuple[bool, str]:
    """Interpret what ``KafkaExchange.health()`` returned as (ok, detail)."""
    if isinstance(value, bool):
        return value, ""
    status = getattr(value, "status", None)
    if isinstance(status, str) and not isinstance(value, Mapping):
        ok = bool(getattr(value, "ok", status in ("serving", "ok", "up", "disabled")))
        detail = str(getattr(value, "detail", "") or "")
        return ok, (f"{status}: {detail}" if detail else status) if not ok else detail
    if isinstance(value, Mapping):
        ok = value.get("ok", value.get("healthy", value.get("status") in ("ok", "up", "SERVING")))
        return bool(ok), str(value.get("detail", value.get("error", "")) or "")
    for attr in ("ok", "healthy"):
        if hasattr(value, attr):
            return bool(getattr(value, attr)), str(getattr(value, "detail", "") or "")
    return bool(value), ""


async def _run_kafka(cfg: Any, core: Any, server: Any, stop: asyncio.Event) -> None:
    """Run the Kafka exchange until ``stop``; retry entering it with back-off; feed health."""
    try:
        from node.transport.kafka import KafkaExchange
    except ImportError as exc:
        log.warning("[kafka] is configured but node.transport.kafka is not available (%s); serving gRPC only", exc)
        await server.set_component("kafka", False, "node.transport.kafka is not installed")
        return
    delay = 1.0
    while not stop.is_set():
        try:
            async with KafkaExchange(cfg=cfg, store=core.store, evidence=core.evidence, validator=core.validator,
                                     policy=core.policy.current, directory=core.directory.current) as kx:
                delay = 1.0
                log.info("kafka exchange running", extra={"bootstrap": list(cfg.kafka.bootstrap_servers)})
                while not stop.is_set():
                    try:
                        value = kx.health()
                        if inspect.isawaitable(value):
                            value = await value
                        ok, detail = kafka_health(value)
                    except Exception as exc:  # a failing health probe means: down
                        ok, detail = False, f"{type(exc).__name__}: {exc}"
                    await server.set_component("kafka", ok, detail)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), KAFKA_HEALTH_SECONDS)
            return
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            message = exc.message if isinstance(exc, ShulianError) else f"{type(exc).__name__}: {exc}"
            log.error("kafka exchange failed: %s; retrying in %.0f s", message, delay)
            await server.set_component("kafka", False, message)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
            delay = min(delay * 2, KAFKA_RETRY_MAX_SECONDS)


async def run_node(cfg: Any, *, grace: float = 10.0, stop: asyncio.Event | None = None) -> None:
    """Serve until SIGTERM/SIGINT (or ``stop`` is set), then shut down gracefully."""
    from node.service import NodeCore
    from node.transport.grpc import NodeServer

    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    core = await asyncio.to_thread(NodeCore.open, cfg)
    try:
        server = NodeServer(core, grace=grace)
        await server.start()
        # what start-up built (the standard's graphs, compiled validators, the policy) lives as long as
        # the node: keep it out of the cyclic collector's full passes, which otherwise walk it again
        # and again on a busy node (measured at 5-20% of the record paths' time)
        gc.collect()
        gc.freeze()
        kafka_task: asyncio.Task[None] | None = None
        kafka_stop = asyncio.Event()
        if cfg.kafka is not None:
            kafka_task = asyncio.create_task(_run_kafka(cfg, core, server, kafka_stop), name="kafka")
        else:
            server.components["kafka"] = "off"
        try:
            await stop.wait()
            log.info("shutting down")
        finally:
            await server.stop(grace)
            kafka_stop.set()
            if kafka_task is not None:
                try:
                    await asyncio.wait_for(kafka_task, grace)
                except TimeoutError:
                    log.error("the kafka exchange did not stop within %.0f s", grace)
                except Exception:
                    log.exception("the kafka exchange failed while stopping")
    finally:
        await asyncio.to_thread(core.close)
        log.info("store closed; bye")


def _load(config: Path | None) -> Any:
    from node.config import load_config

    return load_config(config)


def _fail(exc: ShulianError) -> None:
    click.echo(f"error: {exc.message}", err=True)
    sys.exit(exc.exit_code if not isinstance(exc, ConfigError) else EXIT_USAGE)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """The Shulian (数链) node daemon.

    \b
    Example:
      shulian-node run --config nodes/hrss/node.toml
    """


@main.command("run")
@click.option("--config", "config", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The node configuration (default: $SHULIAN_CONFIG).")
@click.option("--log-level", default="INFO", show_default=True,
              type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False))
@click.option("--grace", default=10.0, show_default=True, type=float,
              help="Seconds running calls get to finish on SIGTERM.")
def run_command(config: Path | None, log_level: str, grace: float) -> None:
    """Serve the node until SIGTERM (JSON logs on stderr).

    \b
    Example:
      shulian-node run --config node.toml --log-level info

    Exit codes: 0 stopped cleanly, 2 bad configuration or input, 3 cannot listen / store unavailable.
    """
    from node.service import configure_json_logging

    try:
        cfg = _load(config)
    except ShulianError as exc:
        _fail(exc)
        return
    configure_json_logging(log_level, department=cfg.department.code)
    logging.getLogger("grpc").setLevel(logging.WARNING)
    try:
        asyncio.run(run_node(cfg, grace=grace))
    except ShulianError as exc:
        log.error("cannot start: %s", exc.message, extra={"reason": exc.reason})
        _fail(exc)
    sys.exit(EXIT_OK)


@main.command("check")
@click.option("--config", "config", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The node configuration (default: $SHULIAN_CONFIG).")
def check_command(config: Path | None) -> None:
    """Check the configuration, the federation directory and the responsibility list, then exit.

    \b
    Example:
      shulian-node check --config node.toml
    """
    from node.federation import load_node_directory
    from node.service import PolicySource

    try:
        cfg = _load(config)
        directory = load_node_directory(cfg)
        policy = PolicySource(cfg).load()
    except ShulianError as exc:
        _fail(exc)
        return
    member = "a member" if cfg.department.code in directory else "NOT a member"
    click.echo(f"ok: {cfg.path}: department {cfg.department.code} ({member} of federation "
               f"{directory.federation!r} v{directory.version}), {len(cfg.datasets)} dataset(s), "
               f"{len(policy.datasets)} in the responsibility list, listening on {cfg.listen}")


if __name__ == "__main__":
    main()
