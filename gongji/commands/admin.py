"""``gongji admin``: change a running cluster (enable or disable a region, close a window)."""

from __future__ import annotations

import argparse
import asyncio
import json
import uuid

from broker.connection import connect
from broker.topology import Topology
from contracts.identifiers import CLEARINGHOUSE
from contracts.operations import CloseWindow, SetRegionEnabled
from gongji.client import BillClient
from gongji.commands.options import add_broker_options, region_code
from gongji.windows import format_window_report, read_window_report


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("admin", help="change a running cluster")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    for name, text in (("enable", "enable"), ("disable", "disable")):
        sub = actions.add_parser(name, help=f"{text} cross-region mutual aid for a region")
        sub.add_argument("region", type=region_code, help="6-digit region code")
        add_broker_options(sub)
    close = actions.add_parser("close-window", help="close the open clearing window")
    close.add_argument("--json", action="store_true", help="print the report as JSON")
    add_broker_options(close)


async def _run(args: argparse.Namespace) -> int:
    topology = Topology(namespace=args.namespace)
    connection = await connect(args.amqp_url, name=f"gongji-admin-{args.action}")
    client = await BillClient.open(connection, topology, f"admin-{uuid.uuid4().hex[:8]}")
    try:
        if args.action in ("enable", "disable"):
            enabled = args.action == "enable"
            await client.send(CLEARINGHOUSE, SetRegionEnabled(args.region, enabled))
            print(f"region {args.region}: {'enabled' if enabled else 'disabled'} (sent)")
            return 0
        request = CloseWindow(f"close-{uuid.uuid4().hex}", client.address)
        await client.send(CLEARINGHOUSE, request)
        report = await read_window_report(client)
        if args.json:
            print(json.dumps(report.as_json()))
        else:
            print(format_window_report(report))
        return 0
    finally:
        await client.close()
        await connection.close()


def run(args: argparse.Namespace) -> int:
    return asyncio.run(_run(args))
