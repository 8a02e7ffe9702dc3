"""Connecting: a named robust connection, or a clear error when there is no broker."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess

import pytest
from yarl import URL

from broker import BrokerUnavailable, connect
from broker.connection import mask_url


def closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.mark.timeout(30)
async def test_no_broker_raises_broker_unavailable_with_masked_url() -> None:
    url = f"amqp://guest:s3cret@127.0.0.1:{closed_port()}/"

    with pytest.raises(BrokerUnavailable) as raised:
        await connect(url, name="gongji-test:nobody", connect_timeout=2)

    message = str(raised.value)
    assert "s3cret" not in message
    assert "******" in message
    assert "AMQP_URL" in message


@pytest.mark.timeout(30)
async def test_silent_peer_times_out_as_broker_unavailable() -> None:
    # Accepts TCP but never speaks AMQP: the bounded first attempt must give up.
    peers: list[asyncio.StreamWriter] = []
    server = await asyncio.start_server(lambda _, writer: peers.append(writer), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        with pytest.raises(BrokerUnavailable):
            await connect(f"amqp://guest:guest@127.0.0.1:{port}/", name="x", connect_timeout=0.5)
    finally:
        for writer in peers:
            writer.close()
        server.close()
        await server.wait_closed()


def test_mask_url_hides_password_only() -> None:
    assert mask_url("amqp://u:p@h:5672/v") == "amqp://u:******@h:5672/v"
    assert mask_url("amqp://h/") == "amqp://h/"


@pytest.mark.broker
@pytest.mark.timeout(30)
async def test_connection_is_named(amqp_url: str) -> None:
    connection = await connect(amqp_url, name="gongji-test:named")
    try:
        assert not connection.is_closed
        if shutil.which("rabbitmqctl") is None or URL(amqp_url).host not in (
            "127.0.0.1",
            "localhost",
        ):
            pytest.skip("connected; naming is only checked against a local rabbitmqctl")
        listing = await asyncio.to_thread(
            subprocess.run,
            ["rabbitmqctl", "-q", "list_connections", "client_properties"],
            capture_output=True,
            text=True,
            timeout=20,
            check=True,
        )
        assert '{"connection_name","gongji-test:named"}' in listing.stdout
    finally:
        await connection.close()
