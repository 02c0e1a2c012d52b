"""The gRPC transport (package ``shulian.v1``, mutual TLS, grpc.aio).

    from node.transport.grpc import NodeServer, NodeClient
    async with NodeServer(core) as server: ...                     # serve a NodeCore
    async with NodeClient.from_config(cfg, address) as peer: ...    # call another node

- wire contract: ``schemas/proto/shulian/v1/*.proto``, generated into ``node/_generated``
  (``make proto`` = ``python -m node.transport.grpc.protogen``);
- services: ``shulian.v1.Records`` (Query, Push, Subscribe), ``shulian.v1.Catalog``
  (GetCatalog, DescribeDataset), ``shulian.v1.Access`` (RequestAccess, GetAccessRequest),
  ``shulian.v1.Node`` (GetStatus), plus ``grpc.health.v1.Health`` and reflection;
- errors: status code from the ShulianError class, reason in ``shulian-reason`` and a
  ``shulian.v1.ErrorDetail`` in ``shulian-error-bin`` (see :mod:`._errors`).

Names are imported lazily (PEP 562), so ``python -m node.transport.grpc.protogen`` runs
even when the generated code is missing or stale.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from node.transport.grpc._errors import (
        DETAIL_KEY,
        REASON_KEY,
        REQUEST_ID_KEY,
        RemoteError,
        error_from_rpc,
        status_code_of,
    )
    from node.transport.grpc.client import (
        NodeClient,
        PushSummary,
        ReceivedBatch,
        ReceivedRecord,
        RecordResultView,
        channel_credentials,
    )
    from node.transport.grpc.server import KAFKA_HEALTH_SERVICE, NodeServer, server_credentials
    from node.transport.grpc.servicers import SERVICE_NAMES, ChangeNotifier, NodeServicers

_WHERE = {
    "DETAIL_KEY": "_errors", "REASON_KEY": "_errors", "REQUEST_ID_KEY": "_errors", "RemoteError": "_errors",
    "error_from_rpc": "_errors", "status_code_of": "_errors",
    "NodeClient": "client", "PushSummary": "client", "ReceivedBatch": "client", "ReceivedRecord": "client",
    "RecordResultView": "client", "channel_credentials": "client",
    "KAFKA_HEALTH_SERVICE": "server", "NodeServer": "server", "server_credentials": "server",
    "SERVICE_NAMES": "servicers", "ChangeNotifier": "servicers", "NodeServicers": "servicers",
}

__all__ = [
    "NodeServer",
    "NodeServicers",
    "ChangeNotifier",
    "NodeClient",
    "ReceivedBatch",
    "ReceivedRecord",
    "RecordResultView",
    "PushSummary",
    "channel_credentials",
    "server_credentials",
    "SERVICE_NAMES",
    "KAFKA_HEALTH_SERVICE",
    "REASON_KEY",
    "DETAIL_KEY",
    "REQUEST_ID_KEY",
    "RemoteError",
    "error_from_rpc",
    "status_code_of",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
