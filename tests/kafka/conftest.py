"""Fixtures for the Kafka exchange tests: one real Tansu broker for the session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from kafka_testkit import Federation, free_port, start_broker, stop_process


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Tansu broker on a free loopback port; yields its bootstrap address."""
    port = free_port()
    proc = start_broker(port, tmp_path_factory.mktemp("tansu") / "broker.log")
    try:
        yield f"127.0.0.1:{port}"
    finally:
        stop_process(proc)


@pytest.fixture
def federation(tmp_path: Path, broker: str) -> Federation:
    """A fresh CA and directory (nodes get unique codes, so their topics never collide)."""
    return Federation(tmp_path, broker)
