"""Kafka client settings, reconnection back-off, and topic creation.

Security settings from ``[kafka.security]`` are passed through to aiokafka. The
file settings (``ssl_cafile``, ``ssl_certfile``, ``ssl_keyfile``, ``ssl_password``,
or their librdkafka spellings ``ssl_ca_location``, ``ssl_certificate_location``,
``ssl_key_location``, ``ssl_key_password``) become one ``ssl_context``; ``sasl_username``
and ``sasl_password`` are accepted for ``sasl_plain_username``/``sasl_plain_password``.
Any other key aiokafka does not know is a :class:`ConfigError` naming it.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Iterable
from typing import Any

from node.config import KafkaConfig
from node.errors import ConfigError, Unavailable

__all__ = ["client_kwargs", "Backoff", "TopicManager", "DEFAULT_PARTITIONS", "TopicCreationRefused"]

log = logging.getLogger(__name__)

DEFAULT_PARTITIONS = 3
_PASSTHROUGH = {
    "security_protocol", "sasl_mechanism", "sasl_plain_username", "sasl_plain_password",
    "sasl_kerberos_service_name", "sasl_kerberos_domain_name",
}
_ALIASES = {
    "sasl_username": "sasl_plain_username",
    "sasl_password": "sasl_plain_password",
    "ssl_ca_location": "ssl_cafile",
    "ssl_certificate_location": "ssl_certfile",
    "ssl_key_location": "ssl_keyfile",
    "ssl_key_password": "ssl_password",
}
_SSL_KEYS = {"ssl_cafile", "ssl_certfile", "ssl_keyfile", "ssl_password", "ssl_check_hostname"}
_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")


def client_kwargs(kafka: KafkaConfig) -> dict[str, Any]:
    """Keyword arguments shared by every aiokafka client: bootstrap servers and security."""
    out: dict[str, Any] = {"bootstrap_servers": list(kafka.bootstrap_servers)}
    ssl: dict[str, Any] = {}
    for raw_key, value in kafka.security_kwargs().items():
        key = _ALIASES.get(raw_key, raw_key)
        if key in _SSL_KEYS:
            ssl[key] = value
        elif key in _PASSTHROUGH:
            out[key] = value
        else:
            allowed = sorted(_PASSTHROUGH | _SSL_KEYS | set(_ALIASES))
            raise ConfigError(f"unknown Kafka security setting; allowed: {', '.join(allowed)}",
                              key=f"kafka.security.{raw_key}")
    protocol = str(out.get("security_protocol", "PLAINTEXT")).upper()
    if protocol not in _PROTOCOLS:
        raise ConfigError(f"unknown security_protocol {protocol!r}; use one of: {', '.join(_PROTOCOLS)}",
                          key="kafka.security.security_protocol")
    out["security_protocol"] = protocol
    if ssl or protocol in ("SSL", "SASL_SSL"):
        from aiokafka.helpers import create_ssl_context

        try:
            context = create_ssl_context(cafile=ssl.get("ssl_cafile"), certfile=ssl.get("ssl_certfile"),
                                         keyfile=ssl.get("ssl_keyfile"), password=ssl.get("ssl_password"))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot build the TLS context for Kafka: {exc}", key="kafka.security") from exc
        if "ssl_check_hostname" in ssl:
            context.check_hostname = bool(ssl["ssl_check_hostname"])
        out["ssl_context"] = context
    return out


class Backoff:
    """Exponential back-off with jitter: 0.5 s, 1 s, 2 s ... up to ``maximum``."""

    def __init__(self, initial: float = 0.5, maximum: float = 15.0) -> None:
        self.initial = initial
        self.maximum = maximum
        self._next = initial

    def reset(self) -> None:
        self._next = self.initial

    def delay(self) -> float:
        value = self._next
        self._next = min(self.maximum, self._next * 2)
        return value * (0.75 + random.random() / 2)

    async def sleep(self) -> None:
        await asyncio.sleep(self.delay())


class TopicCreationRefused(Unavailable):
    """The broker refused to create a topic (not authorised, policy); the operator must create it."""


class TopicManager:
    """Creates topics on first use, where the broker allows it.

    A topic that exists is left alone. When creation is refused (no ``CREATE``
    permission, a creation policy), the error says which topic to create and how;
    publishing to that topic waits until it exists.
    """

    def __init__(self, admin: Any, partitions: int = DEFAULT_PARTITIONS) -> None:
        self._admin = admin
        self._partitions = partitions
        self._known: set[str] = set()
        self._replication: int | None = None
        self.refused: dict[str, str] = {}

    def forget(self) -> None:
        """Check every topic again on next use (after a failure: a topic may have been deleted)."""
        self._known.clear()

    async def _replication_factor(self) -> int:
        if self._replication is None:
            cluster = await self._admin.describe_cluster()
            self._replication = max(1, min(3, len(cluster.get("brokers", ())) or 1))
        return self._replication

    async def ensure(self, topics: Iterable[str]) -> None:
        """Make sure every topic exists; raises :class:`TopicCreationRefused` for one that cannot be made."""
        from aiokafka.admin import NewTopic
        from aiokafka.errors import TopicAlreadyExistsError, for_code

        wanted = sorted(set(topics) - self._known)
        if not wanted:
            return
        existing = set(await self._admin.list_topics())
        missing = [t for t in wanted if t not in existing]
        self._known.update(t for t in wanted if t in existing)
        if not missing:
            return
        rf = await self._replication_factor()
        response = await self._admin.create_topics([NewTopic(t, self._partitions, rf) for t in missing])
        problems: list[str] = []
        for entry in response.topic_errors:
            topic, code = entry[0], entry[1]
            message = entry[2] if len(entry) > 2 else None
            if code == 0 or code == TopicAlreadyExistsError.errno:
                self._known.add(topic)
                self.refused.pop(topic, None)
                if code == 0:
                    log.info("created Kafka topic %s (%d partitions, replication %d)", topic, self._partitions, rf)
                continue
            err = for_code(code)
            text = (f"cannot create Kafka topic {topic}: {err.__name__}"
                    f"{': ' + message if message else ''}; ask the Kafka operator to create it "
                    f"({self._partitions} partitions, replication {rf}) or to grant CREATE on it")
            self.refused[topic] = text
            problems.append(text)
            log.error("%s", text)
        if problems:
            raise TopicCreationRefused("; ".join(problems))
