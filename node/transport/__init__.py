"""Transports: how a node talks to other nodes.

- :mod:`node.transport.grpc`: request/response and streams between two nodes (mutual TLS);
- :mod:`node.transport.kafka`: publish and subscribe between many (written separately).

Both call the same core (:mod:`node.service`) so the responsibility list, the
boundary validator and the evidence log apply identically on every transport.
"""

from __future__ import annotations

__all__: list[str] = []
