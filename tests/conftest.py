"""Fixtures shared by every test package."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def amqp_url() -> str:
    """The AMQP URL of a real RabbitMQ: ``AMQP_URL``, else a testcontainers broker.

    Fails the requesting test (not the session) with the reason when neither is there.
    """
    from broker.connection import BrokerUnavailable
    from broker.testing import resolve_amqp_url

    try:
        return resolve_amqp_url()
    except BrokerUnavailable as e:
        reason = str(e)
    # Outside the except block, so the report is the message alone, without the chain.
    pytest.fail(reason, pytrace=False)
