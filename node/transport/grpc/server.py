"""The node's gRPC server: mutual TLS, the shulian.v1 services, health checking, reflection.

    async with NodeServer(core) as server:      # binds cfg.listen (port 0: any free port)
        print(server.address)
        await server.wait_stopped()              # or: await server.stop(grace=10)

Only TLS is offered, and TLS requires a client certificate issued by the federation
CA (``[tls] ca``); a plaintext connection or an unknown CA fails the handshake.
The health service (``grpc.health.v1.Health``) reports ``""`` and every
``shulian.v1.*`` service; ``shulian.kafka`` is added when the Kafka exchange runs.
Reflection (``grpc.reflection.v1alpha``) lists every service.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import Executor, ThreadPoolExecutor
from types import TracebackType
from typing import Any, Self

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio
from grpc_reflection.v1alpha import reflection

from node.errors import InputError, Unavailable
from node.service import NodeCore
from node.transport.grpc.servicers import SERVICE_NAMES, ChangeNotifier, NodeServicers

__all__ = ["NodeServer", "server_credentials", "SERVER_OPTIONS", "KAFKA_HEALTH_SERVICE"]

log = logging.getLogger(__name__)

KAFKA_HEALTH_SERVICE = "shulian.kafka"
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
SERVER_OPTIONS: tuple[tuple[str, Any], ...] = (
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.keepalive_time_ms", 60_000),
    ("grpc.keepalive_timeout_ms", 20_000),
    ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
)


def server_credentials(core: NodeCore) -> grpc.ServerCredentials:
    tls = core.cfg.tls
    try:
        key, cert, ca = tls.key.read_bytes(), tls.cert.read_bytes(), tls.ca.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read the node's TLS files ({exc.filename}): {exc.strerror}") from exc
    return grpc.ssl_server_credentials([(key, cert)], root_certificates=ca, require_client_auth=True)


class NodeServer:
    """A running gRPC server for one :class:`NodeCore` (an async context manager)."""

    def __init__(self, core: NodeCore, *, listen: str | None = None, executor: Executor | None = None,
                 grace: float = 10.0) -> None:
        self.core = core
        self.listen = listen or core.cfg.listen
        self.grace = grace
        self._own_executor = executor is None
        self.executor = executor or ThreadPoolExecutor(max_workers=4, thread_name_prefix="shulian-grpc")
        self.shutdown = asyncio.Event()
        self.notifier = ChangeNotifier()
        self.components: dict[str, str] = {"grpc": "ok", "store": "ok"}
        self.health = health_aio.HealthServicer()
        self.servicers = NodeServicers(core, self.executor, notifier=self.notifier, shutdown=self.shutdown,
                                       status=self._status)
        self._server: grpc.aio.Server | None = None
        self.port = 0
        self._stopped = asyncio.Event()

    async def _status(self) -> dict[str, str]:
        return dict(self.components)

    @property
    def address(self) -> str:
        host = self.listen.rpartition(":")[0]
        return f"{host}:{self.port}"

    async def start(self) -> None:
        server = grpc.aio.server(options=SERVER_OPTIONS)
        self.servicers.register(server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        names = (*SERVICE_NAMES, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
                 reflection.SERVICE_NAME)
        reflection.enable_server_reflection(names, server)
        try:
            port = server.add_secure_port(self.listen, server_credentials(self.core))
        except RuntimeError as exc:
            raise Unavailable(f"cannot listen on {self.listen}: {exc} (is another process using the port?)",
                              reason="CANNOT_LISTEN") from exc
        if not port:
            raise Unavailable(f"cannot listen on {self.listen} (is another process using the port?)",
                              reason="CANNOT_LISTEN")
        await server.start()
        self._server, self.port = server, port
        for name in ("", *SERVICE_NAMES):
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        log.info("serving", extra={"address": self.address, "port": port})

    async def set_component(self, name: str, ok: bool, detail: str = "") -> None:
        """Record a component's state (e.g. ``kafka``); it shows in GetStatus and the health service."""
        state = "ok" if ok else f"down: {detail}" if detail else "down"
        if self.components.get(name) != state:
            log.log(logging.INFO if ok else logging.WARNING, "component %s is %s", name, state,
                    extra={"component": name, "state": state})
        self.components[name] = state
        if name == "kafka":
            status = health_pb2.HealthCheckResponse.SERVING if ok else health_pb2.HealthCheckResponse.NOT_SERVING
            await self.health.set(KAFKA_HEALTH_SERVICE, status)

    async def stop(self, grace: float | None = None) -> None:
        """Stop taking calls, let running ones finish (up to ``grace`` seconds), end subscriptions."""
        if self._server is None:
            return
        server, self._server = self._server, None
        await self.health.enter_graceful_shutdown()
        self.shutdown.set()
        self.notifier.notify()
        streams = self.servicers.active_streams
        log.info("stopping: %d stream(s) open, grace %.1f s", streams, self.grace if grace is None else grace)
        await server.stop(self.grace if grace is None else grace)
        if self._own_executor and isinstance(self.executor, ThreadPoolExecutor):
            await asyncio.to_thread(self.executor.shutdown, True)  # work already handed over finishes
        self._stopped.set()
        log.info("stopped")

    async def wait_stopped(self) -> None:
        await self._stopped.wait()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.stop()
