"""Fixtures for broker tests: a real RabbitMQ, one isolated namespace per test."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aio_pika.abc import AbstractRobustConnection

from broker.connection import BrokerUnavailable, connect
from broker.testing import TrackedTopology, cleanup_namespace, resolve_amqp_url, unique_namespace


@pytest.fixture(scope="session")
def amqp_url() -> str:
    """``AMQP_URL``, else a testcontainers broker; fails the test with the reason if neither."""
    try:
        return resolve_amqp_url()
    except BrokerUnavailable as error:
        reason = str(error)
    pytest.fail(reason, pytrace=False)  # outside the except: no chained traceback


@pytest.fixture
async def topology(amqp_url: str) -> AsyncIterator[TrackedTopology]:
    """A fresh namespace; every queue named through it and both exchanges are deleted after."""
    tracked = TrackedTopology(namespace=unique_namespace("test-broker"))
    yield tracked
    await cleanup_namespace(amqp_url, tracked)


@pytest.fixture
async def connection(
    amqp_url: str, topology: TrackedTopology, request: pytest.FixtureRequest
) -> AsyncIterator[AbstractRobustConnection]:
    """A robust connection named after the test (visible in ``rabbitmqctl list_connections``).

    It depends on ``topology`` so that it closes before the namespace is deleted: a robust
    connection still consuming would otherwise re-declare the deleted queues.
    """
    conn = await connect(amqp_url, name=f"gongji-test:{request.node.name}")
    yield conn
    await conn.close()
