"""``gongji region --code 420100[,420500,...]``: run pooling regions' services in one
process (one region, or several of one province on one connection)."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Sequence

from aio_pika.abc import AbstractRobustConnection

from broker.publisher import broker_user
from broker.topology import Topology
from contracts.identifiers import province_of
from contracts.participants import Role, participant_of
from gongji.commands.options import add_service_options, region_code
from gongji.commands.serve import Service, StartupError, serve
from regions.host import HostError, RegionHost, check_hosted


def region_codes(value: str) -> list[str]:
    """``420100`` or ``420100,420500``: one or more region codes."""
    codes = [region_code(code) for code in value.replace(",", " ").split()]
    if not codes:
        raise argparse.ArgumentTypeError("no region code given")
    try:
        return check_hosted(codes)
    except HostError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "region",
        help="run pooling regions' services: one, or several of one province in one process",
    )
    parser.add_argument(
        "--code",
        type=region_codes,
        required=True,
        help="6-digit region code, or codes of one province (420100,420500): several share "
        "one process and connection, which logs in as the province host's broker user",
    )
    # Any free port by default: regions run side by side with each other and with the
    # clearinghouse (9464). Compose and `cluster up` give each one its port.
    add_service_options(parser, metrics_port=0)


def host_name(codes: Sequence[str]) -> str:
    """``region-420100`` for one region, ``province-420000`` for several."""
    return f"region-{codes[0]}" if len(codes) == 1 else f"province-{province_of(codes[0])}"


def serve_regions(args: argparse.Namespace, name: str, codes: Sequence[str]) -> int:
    """Run the services of ``codes`` in this process until SIGINT/SIGTERM."""

    def build(connection: AbstractRobustConnection, topology: Topology) -> Service:
        user = participant_of(broker_user(connection), topology.namespace)
        try:
            # A user that is no participant (guest) is left to the clearinghouse, which
            # refuses whatever it sends; a participant must speak for every region.
            check_hosted(codes, user)
        except HostError as error:
            raise StartupError(f"{name}: {error}") from None
        if args.mailboxes == "province" and user is not None and user.role is not Role.PROVINCE:
            raise StartupError(
                f"{name}: province mailboxes (--mailboxes province) are read by the "
                f"province host's broker user, not by {user}"
            )
        return RegionHost(
            codes,
            data_dir=args.data_dir,
            connection=connection,
            topology=topology,
            mailbox=args.mailboxes == "province",
        )

    asyncio.run(serve(args, name, build))
    return 0


def run(args: argparse.Namespace) -> int:
    return serve_regions(args, host_name(args.code), args.code)
