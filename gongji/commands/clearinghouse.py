"""``gongji clearinghouse``: run the national clearinghouse service."""

from __future__ import annotations

import argparse
import asyncio

from aio_pika.abc import AbstractRobustConnection

from broker.topology import Topology
from clearinghouse.service import ClearinghouseService
from clearinghouse.settlement import SettlementRule
from gongji.commands.options import add_service_options, non_negative_int
from gongji.commands.serve import Service, serve


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("clearinghouse", help="run the national clearinghouse service")
    add_service_options(parser)
    parser.add_argument(
        "--advance-fen",
        type=non_negative_int,
        default=0,
        help="each region's advance (预付金) at the clearinghouse, topped up to this at every"
        " window's close; 0: none, each close settles the nets (default: %(default)s)",
    )


def run(args: argparse.Namespace) -> int:

    def build(connection: AbstractRobustConnection, topology: Topology) -> Service:
        return ClearinghouseService(
            data_dir=args.data_dir,
            connection=connection,
            topology=topology,
            rule=SettlementRule(args.advance_fen),
            mailboxes=args.mailboxes == "province",
        )

    asyncio.run(serve(args, "clearinghouse", build))
    return 0
