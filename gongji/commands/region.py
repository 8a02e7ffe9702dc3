"""``gongji region --code 420100``: run one pooling region's service."""

from __future__ import annotations

import argparse
import asyncio

from aio_pika.abc import AbstractRobustConnection

from broker.topology import Topology
from gongji.commands.options import add_service_options, region_code
from gongji.commands.serve import serve
from regions.service import RegionService


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("region", help="run one pooling region's service")
    parser.add_argument("--code", type=region_code, required=True, help="6-digit region code")
    add_service_options(parser)


def run(args: argparse.Namespace) -> int:
    async def runner(
        connection: AbstractRobustConnection, topology: Topology, stop: asyncio.Event
    ) -> None:
        service = RegionService(
            args.code, data_dir=args.data_dir, connection=connection, topology=topology
        )
        await service.run(stop)

    asyncio.run(serve(args, f"region-{args.code}", runner))
    return 0
