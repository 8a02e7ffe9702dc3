"""Run one long-lived service until SIGINT/SIGTERM, with metrics and JSON logs."""

from __future__ import annotations

import argparse
import asyncio
import signal
from collections.abc import Callable, Coroutine
from typing import Any

from aio_pika.abc import AbstractRobustConnection

from broker.connection import connect
from broker.topology import Topology
from telemetry.logs import configure_logging, get_logger
from telemetry.metrics import serve_metrics

Runner = Callable[[AbstractRobustConnection, Topology, asyncio.Event], Coroutine[Any, Any, None]]


async def serve(args: argparse.Namespace, name: str, runner: Runner) -> None:
    configure_logging(args.log_level)
    log = get_logger(service=name)
    topology = Topology(namespace=args.namespace)
    connection = await connect(args.amqp_url, name=name)
    port = serve_metrics(args.metrics_port, args.metrics_host)
    log.info("metrics_serving", port=port, host=args.metrics_host)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await runner(connection, topology, stop)
    finally:
        await connection.close()
