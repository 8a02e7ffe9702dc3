"""The raw broker baseline: round trips through RabbitMQ at the services' durability.

A pinger publishes envelopes of K operations to an echo service's quorum queue
(persistent, publisher confirms); the echo runs the real ``ServiceShell`` (same batching,
same confirm-then-ack) in its own OS process over a core that only sends each operation
back, and an in-memory database, so nothing but the transport is measured; the pinger
consumes the answers from its own quorum queue and acks them. ``python -m bench.baseline
--echo NAMESPACE`` is the echo side.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from broker.connection import connect
from broker.inbox import Inbox
from broker.publisher import Publisher
from broker.shell import ServiceShell
from broker.topology import Topology, declare_service_queue, declare_topology, delete_namespace
from broker.users import BrokerAdminError, delete_users, provision
from contracts.effects import Effects, Outgoing
from contracts.operations import Commit, Operation
from contracts.participants import HUB, region
from storage.sqlite import Database
from telemetry.logs import configure_logging

ECHO = "region.100000"
PINGER = "clearinghouse"
ECHO_USER = region("100000")
PINGER_USER = HUB
"""Each side logs in as the participant it plays: the echo's shell authorizes every
delivery by its sender, as the services do."""


class EchoCore:
    """Sends every operation back to the pinger."""

    def handle(self, op: Operation, now_ms: int) -> Effects:
        return Effects([Outgoing(PINGER, op)])

    def tick(self, now_ms: int) -> Effects:
        return Effects()


async def run_echo(amqp_url: str, namespace: str) -> None:
    """The echo service, until SIGTERM."""
    configure_logging("WARNING")
    topology = Topology(namespace=namespace)
    connection = await connect(amqp_url, name=f"bench-echo:{namespace}")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    shell = ServiceShell(
        service="bench-echo",
        address=ECHO,
        core=EchoCore(),
        db=Database(":memory:"),
        connection=connection,
        topology=topology,
    )
    try:
        await shell.run(stop)
    finally:
        await connection.close()


@dataclass(slots=True)
class BaselineResult:
    ops_per_message: int
    window: int
    seconds: float
    round_trips: int
    messages: int
    """Envelopes both ways: pings published and answers received."""

    @property
    def round_trips_per_second(self) -> float:
        return self.round_trips / self.seconds

    @property
    def messages_per_second(self) -> float:
        """Envelopes carried per second, both ways (each published, confirmed, acked)."""
        return self.messages / self.seconds


async def measure_baseline(
    amqp_url: str,
    *,
    ops_per_message: int = 10,
    window: int = 64,
    seconds: float = 8.0,
    warmup_s: float = 1.0,
) -> BaselineResult:
    """Round trips of operations per second through an echo service in another process."""
    namespace = f"bench-base-{uuid.uuid4().hex[:8]}"
    topology = Topology(namespace=namespace)
    credentials = await asyncio.to_thread(provision, amqp_url, namespace, [ECHO_USER, PINGER_USER])
    # The operator's login (``amqp_url``) declares; the pinger plays the clearinghouse.
    admin = await connect(amqp_url, name=f"bench-admin:{namespace}")
    connection = await connect(credentials.url(PINGER_USER), name=f"bench-pinger:{namespace}")
    echo: asyncio.subprocess.Process | None = None
    try:
        channel = await admin.channel()
        await declare_topology(channel, topology)
        await declare_service_queue(channel, topology, ECHO)
        await declare_service_queue(channel, topology, PINGER)
        inbox = await Inbox.open(connection, topology, PINGER, prefetch=4 * window)
        publisher = await Publisher.open(connection, topology, PINGER)
        echo = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.baseline",
            "--echo",
            namespace,
            stdin=subprocess.DEVNULL,
            # In the environment, not on the command line (ps shows that).
            env={**os.environ, "AMQP_URL": credentials.url(ECHO_USER)},
        )
        ops = [Commit(f"b{i}") for i in range(ops_per_message)]
        # Wait for the echo: one envelope must come back.
        await publisher.publish({ECHO: ops})
        got = 0
        async with asyncio.timeout(30):
            while got < ops_per_message:
                batch = await inbox.next_batch(64, timeout=None)
                got += sum(len(d.envelope.operations) for d in batch)
                await inbox.ack(batch)
        counting = False
        counted_ops = counted_messages = 0
        credits = asyncio.Semaphore(window)
        done = asyncio.Event()

        async def sender() -> None:
            nonlocal counted_messages
            while not done.is_set():
                await credits.acquire()
                await publisher.publish({ECHO: ops})
                if counting:
                    counted_messages += 1

        answered = released = 0

        async def receiver() -> None:
            nonlocal counted_ops, counted_messages, answered, released
            while not done.is_set():
                batch = await inbox.next_batch(256, timeout=0.2)
                for delivery in batch:
                    if counting:
                        counted_ops += len(delivery.envelope.operations)
                        counted_messages += 1
                await inbox.ack(batch)
                # One credit per ping's worth of operations answered: the echo packs
                # several pings' operations into one envelope, so count them all.
                answered += sum(len(d.envelope.operations) for d in batch)
                while released < answered // ops_per_message:
                    released += 1
                    credits.release()

        senders = [asyncio.create_task(sender()) for _ in range(window)]
        reader = asyncio.create_task(receiver())
        await asyncio.sleep(warmup_s)
        counting = True
        started = time.perf_counter()
        await asyncio.sleep(seconds)
        counting = False
        elapsed = time.perf_counter() - started
        done.set()
        for _ in range(window):
            credits.release()
        for task in [*senders, reader]:
            task.cancel()
        await asyncio.gather(*senders, reader, return_exceptions=True)
        await inbox.close()
        await publisher.close()
        await channel.close()
        return BaselineResult(ops_per_message, window, elapsed, counted_ops, counted_messages)
    finally:
        if echo is not None and echo.returncode is None:
            echo.terminate()
            try:
                async with asyncio.timeout(15):
                    await echo.wait()
            except TimeoutError:
                echo.kill()
                await echo.wait()
        with contextlib.suppress(Exception):
            channel = await admin.channel()
            await delete_namespace(channel, topology, [ECHO, PINGER])
        await connection.close()
        await admin.close()
        with contextlib.suppress(BrokerAdminError):
            await asyncio.to_thread(delete_users, credentials.passwords())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--echo", metavar="NAMESPACE", help="run the echo side")
    parser.add_argument(
        "--amqp-url", default=os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
    )
    parser.add_argument("--ops", type=int, default=10)
    parser.add_argument("--window", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=8.0)
    args = parser.parse_args(argv)
    if args.echo:
        asyncio.run(run_echo(args.amqp_url, args.echo))
        return 0
    result = asyncio.run(
        measure_baseline(
            args.amqp_url, ops_per_message=args.ops, window=args.window, seconds=args.seconds
        )
    )
    print(
        f"baseline: {result.round_trips_per_second:,.0f} round trips/s "
        f"({result.messages_per_second:,.0f} messages/s, {result.ops_per_message} ops/message, "
        f"window {result.window})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
