"""The Kafka exchange: publish the outbox, consume subscriptions, validate at the boundary.

    from node.transport.kafka import KafkaExchange
    async with KafkaExchange(cfg=cfg, store=store, evidence=evidence, validator=validator,
                             policy=policy, directory=directory) as kx:
        kx.health()            # KafkaHealth: status serving | degraded | starting | disabled | stopped

Run it alone: ``python -m node.transport.kafka run --config node.toml``.

Topics (see :mod:`node.transport.kafka._topics`)::

    shulian.<provider>.<dataset>.v1             unconditional dataset, one shared topic
    shulian.<provider>.<dataset>.to.<consumer>  conditional dataset, one per granted consumer
    shulian.<node>.dlq                          a consumer's dead letters

Messages are CloudEvents 1.0 in Kafka binary mode, key = record id, signed by the
provider's Ed25519 key (one signature per batch, a Merkle proof per message);
consumer topics carry values encrypted to the consumer's X25519 key. The envelope
is specified in :mod:`node.transport.kafka._envelope` and the encryption in
:mod:`node.transport.kafka._crypto`, precisely enough to build and check messages
with any Kafka client (the tests do it with confluent-kafka). README.md in this
folder describes the whole exchange.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from node.transport.kafka._clients import DEFAULT_PARTITIONS, TopicCreationRefused, client_kwargs
    from node.transport.kafka._crypto import ENCRYPTION_SCHEME, DecryptionError, Opener, Sealer
    from node.transport.kafka._envelope import (
        H_PROOF,
        H_SIGNATURE,
        SIGNATURE_DOMAIN,
        SOURCE_PREFIX,
        TYPE_DELETED,
        TYPE_UPSERTED,
        Envelope,
        EnvelopeError,
        SignatureVerifier,
        leaf_hash,
        merkle_root,
        merkle_sign,
        parse_envelope,
        provider_from_source,
        source_for,
    )
    from node.transport.kafka._exchange import KafkaExchange, KafkaHealth, KafkaOptions
    from node.transport.kafka._inbox import ReceivedVersion, received_version
    from node.transport.kafka._publisher import partition_for
    from node.transport.kafka._receiver import (
        KEY_HEADER,
        REASONS,
        Accepted,
        BatchResult,
        Incoming,
        Receiver,
        Rejected,
        local_dataset_id,
    )
    from node.transport.kafka._retry import RetryOutcome, incoming_from_quarantine, retry_quarantined
    from node.transport.kafka._topics import consumer_topic, dead_letter_topic, shared_topic

# Names are imported from their module on first use, so that a process needing one part (the
# consumer's check helper, python -m node.transport.kafka._helper) does not load them all.
_WHERE = {
    "DEFAULT_PARTITIONS": "_clients",
    "TopicCreationRefused": "_clients",
    "client_kwargs": "_clients",
    "ENCRYPTION_SCHEME": "_crypto",
    "DecryptionError": "_crypto",
    "Opener": "_crypto",
    "Sealer": "_crypto",
    "H_PROOF": "_envelope",
    "H_SIGNATURE": "_envelope",
    "SIGNATURE_DOMAIN": "_envelope",
    "SOURCE_PREFIX": "_envelope",
    "TYPE_DELETED": "_envelope",
    "TYPE_UPSERTED": "_envelope",
    "Envelope": "_envelope",
    "EnvelopeError": "_envelope",
    "SignatureVerifier": "_envelope",
    "leaf_hash": "_envelope",
    "merkle_root": "_envelope",
    "merkle_sign": "_envelope",
    "parse_envelope": "_envelope",
    "provider_from_source": "_envelope",
    "source_for": "_envelope",
    "KafkaExchange": "_exchange",
    "KafkaHealth": "_exchange",
    "KafkaOptions": "_exchange",
    "ReceivedVersion": "_inbox",
    "received_version": "_inbox",
    "partition_for": "_publisher",
    "KEY_HEADER": "_receiver",
    "REASONS": "_receiver",
    "Accepted": "_receiver",
    "BatchResult": "_receiver",
    "Incoming": "_receiver",
    "Receiver": "_receiver",
    "Rejected": "_receiver",
    "local_dataset_id": "_receiver",
    "RetryOutcome": "_retry",
    "incoming_from_quarantine": "_retry",
    "retry_quarantined": "_retry",
    "consumer_topic": "_topics",
    "dead_letter_topic": "_topics",
    "shared_topic": "_topics",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_WHERE})


__all__ = [
    "KafkaExchange",
    "KafkaHealth",
    "KafkaOptions",
    "shared_topic",
    "consumer_topic",
    "dead_letter_topic",
    "local_dataset_id",
    "received_version",
    "ReceivedVersion",
    "Receiver",
    "Incoming",
    "Accepted",
    "Rejected",
    "BatchResult",
    "REASONS",
    "KEY_HEADER",
    "incoming_from_quarantine",
    "retry_quarantined",
    "RetryOutcome",
    "Envelope",
    "EnvelopeError",
    "parse_envelope",
    "leaf_hash",
    "merkle_sign",
    "merkle_root",
    "SignatureVerifier",
    "SIGNATURE_DOMAIN",
    "H_SIGNATURE",
    "H_PROOF",
    "SOURCE_PREFIX",
    "TYPE_UPSERTED",
    "TYPE_DELETED",
    "source_for",
    "provider_from_source",
    "ENCRYPTION_SCHEME",
    "Sealer",
    "Opener",
    "DecryptionError",
    "client_kwargs",
    "partition_for",
    "DEFAULT_PARTITIONS",
    "TopicCreationRefused",
]
