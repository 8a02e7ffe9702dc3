"""Robust connections to RabbitMQ, failing fast and clearly when there is no broker."""

from __future__ import annotations

import asyncio
import contextlib

from aio_pika import RobustConnection
from aio_pika.abc import AbstractRobustConnection
from yarl import URL

DEFAULT_CONNECT_TIMEOUT = 5.0
DEFAULT_RECONNECT_INTERVAL = 1.0


class BrokerUnavailable(RuntimeError):
    """No RabbitMQ answered at the given URL."""


def mask_url(url: str) -> str:
    """``url`` with its password replaced by ``******`` (safe to log)."""
    try:
        parsed = URL(url)
    except (TypeError, ValueError):
        return "<unparseable AMQP URL>"
    return str(parsed.with_password("******")) if parsed.password else str(parsed)


def unavailable_message(url: str, cause: object) -> str:
    """The explanation raised when no broker answers at ``url``."""
    reason = str(cause).rstrip(". ") or type(cause).__name__
    return (
        f"cannot reach RabbitMQ at {mask_url(url)}: {reason}. "
        "Provide a broker: set AMQP_URL (e.g. amqp://guest:guest@127.0.0.1:5672/) to a "
        "running RabbitMQ (3.8+, quorum queues), or start one (`rabbitmq-server -detached`)."
    )


async def connect(
    url: str,
    *,
    name: str,
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
    reconnect_interval: float = DEFAULT_RECONNECT_INTERVAL,
) -> AbstractRobustConnection:
    """Open a robust connection named ``name`` (shown by ``rabbitmqctl list_connections``).

    The first attempt is bounded by ``connect_timeout`` and raises ``BrokerUnavailable``;
    after that, aio-pika reconnects every ``reconnect_interval`` seconds and restores
    channels, queues and consumers.
    """
    try:
        parsed = URL(url)
    except (TypeError, ValueError) as error:
        raise BrokerUnavailable(
            unavailable_message(url, f"invalid URL ({type(error).__name__})")
        ) from None
    connection = RobustConnection(
        parsed,
        client_properties={"connection_name": name},
        reconnect_interval=reconnect_interval,
    )
    try:
        # The outer bound also covers a peer that accepts TCP but never speaks AMQP.
        async with asyncio.timeout(connect_timeout + 1.0):
            await connection.connect(timeout=connect_timeout)
    except Exception as error:
        with contextlib.suppress(Exception):
            await connection.close()
        raise BrokerUnavailable(unavailable_message(url, error)) from error
    return connection
