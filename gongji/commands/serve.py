"""Run one long-lived service until SIGINT/SIGTERM, with metrics and JSON logs.

A service that cannot start (its metrics port taken, its database not openable, the
broker refusing its queues) exits with one ``gongji: ...`` line (:class:`StartupError`);
failures once it runs are logged as they happen.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sqlite3
from collections.abc import Callable
from typing import Protocol

import aiormq
from aio_pika.abc import AbstractRobustConnection

from broker.connection import connect
from broker.topology import Topology
from telemetry.logs import configure_logging, get_logger
from telemetry.metrics import serve_metrics


class StartupError(Exception):
    """A service could not start; the message says why and what to do."""


class Service(Protocol):
    @property
    def started(self) -> bool:
        """Whether it consumes (a refusal before that is a failure to start)."""
        ...

    async def run(self, stop: asyncio.Event) -> None: ...


Build = Callable[[AbstractRobustConnection, Topology], Service]
"""Opens a service's database and wires it to the broker (it does not consume yet)."""


async def serve(args: argparse.Namespace, name: str, build: Build) -> None:
    configure_logging(args.log_level)
    log = get_logger(service=name)
    topology = Topology(namespace=args.namespace)
    # Before the broker: a taken port is found at once, whatever the broker's state.
    try:
        port = serve_metrics(args.metrics_port, args.metrics_host)
    except OSError as error:
        raise StartupError(
            f"{name}: cannot serve metrics on {args.metrics_host}:{args.metrics_port} "
            f"({error.strerror or error}); choose another --metrics-port, or 0 for any free port"
        ) from None
    log.info("metrics_serving", port=port, host=args.metrics_host)
    connection = await connect(args.amqp_url, name=name)
    # The port served, for a person (with --metrics-port 0 there is no other way to know).
    print(f"{name}: metrics on http://{args.metrics_host}:{port}/metrics", flush=True)
    try:
        try:
            service = build(connection, topology)
        except (OSError, sqlite3.Error) as error:
            raise StartupError(
                f"{name}: cannot open its database in {args.data_dir}: {error}"
            ) from None
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            await service.run(stop)
        except aiormq.exceptions.AMQPError as error:
            if service.started:
                raise
            raise StartupError(f"{name}: the broker refused to set it up: {error!r}") from None
    finally:
        await connection.close()
