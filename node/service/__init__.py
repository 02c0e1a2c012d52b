"""The node's core service layer, independent of any transport.

gRPC (:mod:`node.transport.grpc`) and Kafka (:mod:`node.transport.kafka`) both call
this, so the responsibility list, the boundary validator and the evidence log apply
the same way on every wire::

    from node.service import NodeCore, ReadSession
    core = NodeCore.open(cfg)                  # store, keys, federation directory, policy
    code = core.identify(peer_cert_pem)        # mTLS peer -> department code (Unauthenticated)

    core.check_push(code, "population")        # may this peer write here? (PolicyDenied)
    result = core.ingest(code, "population", [(rid, json_bytes), ...])
    # valid records stored, invalid ones rejected with violations; records + evidence in one commit

    read = ReadSession(core, code, "population", purpose="养老金发放")  # decide() once (PolicyDenied)
    for batch in read.query(batch_size=500): ...   # validated, projected, masked, signed batches
    batch = read.changes(after=cursor)             # change feed (subscriptions)
    read.close()                                   # the records.delivered evidence entry

    file_request(core, code, dataset=..., purpose=..., scenario=..., items=[...], until=None)

Policy changes on a running node: rewrite the list file (``[policy] responsibility_list``;
``shulian list grant`` does, atomically) or call :func:`add_runtime_grant` on the store;
:class:`PolicySource` reloads at the next request (see :mod:`node.service._sources`).
Every method is synchronous and thread-safe; async transports run them in an executor.
Logging context for structured logs: :func:`log_context`, :class:`JsonFormatter`.
"""

from __future__ import annotations

from node.service._access import StoreAccessRequests, file_request, get_request
from node.service._batch import unpack as unpack_prepared
from node.service._core import (
    EVIDENCE_ID_LIMIT,
    IngestResult,
    NodeCore,
    PreparedBatch,
    RecordOutcome,
    StoredBatch,
    id_summary,
)
from node.service._logs import (
    JsonFormatter,
    configure_json_logging,
    current_context,
    log_context,
    new_request_id,
    set_log_fields,
)
from node.service._prepare_pool import PreparePool
from node.service._read import (
    DEFAULT_BATCH,
    DELIVERY_FLUSH_RECORDS,
    MAX_BATCH,
    DeliveryRecorder,
    OutBatch,
    OutRecord,
    ReadSession,
    batch_size_of,
)
from node.service._signing import batch_digest, sign_batch, verify_batch
from node.service._sources import (
    GRANTS_STATE_NAMESPACE,
    POLICY_STATE_NAMESPACE,
    DirectorySource,
    PolicySource,
    add_runtime_grant,
    config_policy,
    grant_from_json,
    grant_to_json,
    revoke_runtime_grants,
    runtime_grants,
)

__all__ = [
    "NodeCore",
    "RecordOutcome",
    "IngestResult",
    "PreparedBatch",
    "StoredBatch",
    "PreparePool",
    "unpack_prepared",
    "id_summary",
    "EVIDENCE_ID_LIMIT",
    "ReadSession",
    "OutBatch",
    "OutRecord",
    "DeliveryRecorder",
    "DEFAULT_BATCH",
    "MAX_BATCH",
    "DELIVERY_FLUSH_RECORDS",
    "batch_size_of",
    "StoreAccessRequests",
    "file_request",
    "get_request",
    "PolicySource",
    "DirectorySource",
    "config_policy",
    "add_runtime_grant",
    "revoke_runtime_grants",
    "runtime_grants",
    "grant_to_json",
    "grant_from_json",
    "POLICY_STATE_NAMESPACE",
    "GRANTS_STATE_NAMESPACE",
    "batch_digest",
    "sign_batch",
    "verify_batch",
    "JsonFormatter",
    "configure_json_logging",
    "log_context",
    "set_log_fields",
    "current_context",
    "new_request_id",
]
