"""``gongji region --code 420100``: run one pooling region's service."""

from __future__ import annotations

import argparse
import asyncio

from aio_pika.abc import AbstractRobustConnection

from broker.topology import Topology
from gongji.commands.options import add_service_options, region_code
from gongji.commands.serve import Service, serve
from regions.service import RegionService


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("region", help="run one pooling region's service")
    parser.add_argument("--code", type=region_code, required=True, help="6-digit region code")
    # Any free port by default: regions run side by side with each other and with the
    # clearinghouse (9464). Compose and `cluster up` give each one its port.
    add_service_options(parser, metrics_port=0)


def run(args: argparse.Namespace) -> int:
    def build(connection: AbstractRobustConnection, topology: Topology) -> Service:
        return RegionService(
            args.code, data_dir=args.data_dir, connection=connection, topology=topology
        )

    asyncio.run(serve(args, f"region-{args.code}", build))
    return 0
