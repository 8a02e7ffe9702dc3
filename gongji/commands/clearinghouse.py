"""``gongji clearinghouse``: run the national clearinghouse service."""

from __future__ import annotations

import argparse
import asyncio

from aio_pika.abc import AbstractRobustConnection

from broker.topology import Topology
from clearinghouse.service import ClearinghouseService
from gongji.commands.options import add_service_options
from gongji.commands.serve import Service, serve


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("clearinghouse", help="run the national clearinghouse service")
    add_service_options(parser)


def run(args: argparse.Namespace) -> int:
    def build(connection: AbstractRobustConnection, topology: Topology) -> Service:
        return ClearinghouseService(
            data_dir=args.data_dir, connection=connection, topology=topology
        )

    asyncio.run(serve(args, "clearinghouse", build))
    return 0
