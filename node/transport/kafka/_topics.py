"""Topic names of the Kafka exchange (the one place they are spelled).

``shulian.<provider>.<dataset>.v1``
    one shared topic per unconditionally shared (无条件共享) dataset: every member may read it.
``shulian.<provider>.<dataset>.to.<consumer>``
    one topic per consumer granted a conditionally shared (有条件共享) dataset: only that
    consumer's projection, masked as granted, encrypted to its X25519 key.
``shulian.<node>.dlq``
    a consumer node's dead-letter topic: every message it refused, with the reason.

``<provider>`` and ``<consumer>`` are unified social credit codes (18 characters of
``[0-9A-Z]``), ``<dataset>`` is the dataset id of the provider's configuration
(``[A-Za-z0-9._-]{1,64}``), so every name is a legal Kafka topic name (at most 249
characters of ``[A-Za-z0-9._-]``).
"""

from __future__ import annotations

import re

from node.errors import InputError

__all__ = [
    "TOPIC_PREFIX",
    "shared_topic",
    "consumer_topic",
    "dead_letter_topic",
    "check_topic_name",
]

TOPIC_PREFIX = "shulian"
_TOPIC_RE = re.compile(r"^[A-Za-z0-9._-]{1,249}\Z")


def check_topic_name(name: str) -> str:
    """``name`` if it is a legal Kafka topic name, else :class:`InputError`."""
    if not _TOPIC_RE.match(name) or name in (".", ".."):
        raise InputError(f"{name!r} is not a legal Kafka topic name ([A-Za-z0-9._-], at most 249 characters)")
    return name


def shared_topic(provider: str, dataset: str) -> str:
    """The shared topic of an unconditionally shared dataset."""
    return check_topic_name(f"{TOPIC_PREFIX}.{provider}.{dataset}.v1")


def consumer_topic(provider: str, dataset: str, consumer: str) -> str:
    """The topic carrying one consumer's projection of a conditionally shared dataset."""
    return check_topic_name(f"{TOPIC_PREFIX}.{provider}.{dataset}.to.{consumer}")


def dead_letter_topic(node: str) -> str:
    """A consumer node's dead-letter topic."""
    return check_topic_name(f"{TOPIC_PREFIX}.{node}.dlq")
