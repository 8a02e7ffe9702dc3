"""``gongji report window N``: a clearing window's net positions and reconciliation;
``gongji report calibration``: a load run against its scenario's targets;
``gongji report transfer ID``: one transfer's timeline, from the services' SQLite files;
``gongji report flows``: money moved between provinces per window, from the clearinghouse's
file."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import uuid
from pathlib import Path

from broker.connection import connect
from broker.topology import Topology
from gongji.client import BillClient
from gongji.cluster.local import OPERATOR
from gongji.commands import calibration
from gongji.commands.options import (
    DEFAULT_CLUSTER_DIR,
    add_cluster_options,
    cluster_target,
    positive_int,
)
from gongji.flows import flows_json, format_flows, read_flows_file
from gongji.ledger_snapshot import SnapshotError
from gongji.timeline import TimelineError, format_timeline, read_timeline
from gongji.windows import format_window_report, query_window_report


def _window_number(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a window number") from None
    if number < 0:
        raise argparse.ArgumentTypeError(f"{value!r}: window numbers start at 1 (0: latest)")
    return number


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("report", help="print reports of the clearinghouse")
    kinds = parser.add_subparsers(dest="kind", required=True, metavar="KIND")
    window = kinds.add_parser("window", help="a clearing window's settlement report")
    window.add_argument(
        "number", type=_window_number, nargs="?", default=0, help="window (default: latest)"
    )
    window.add_argument("--json", action="store_true", help="print one JSON object")
    add_cluster_options(window)
    transfer = kinds.add_parser(
        "transfer", help="one transfer's timeline (reads the SQLite files, read-only)"
    )
    transfer.add_argument("transfer_id", metavar="ID", help="the transfer id")
    transfer.add_argument("--json", action="store_true", help="print one JSON object")
    _data_dir_option(transfer)
    flows = kinds.add_parser(
        "flows",
        help="money moved between provinces and their net positions, per clearing window"
        " (reads the clearinghouse's SQLite file, read-only)",
    )
    flows.add_argument("--window", type=positive_int, help="one window (default: every one)")
    flows.add_argument("--json", action="store_true", help="print one JSON object")
    _data_dir_option(flows)
    calibration.add_parser(kinds)


def _data_dir_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=Path(os.environ.get("GONGJI_CLUSTER_DIR", DEFAULT_CLUSTER_DIR)),
        help="where the clearinghouse and region files are (default: %(default)s)",
    )


def print_flows(args: argparse.Namespace) -> int:
    try:
        windows = read_flows_file(args.data_dir, args.window)
    except SnapshotError as error:
        print(f"gongji: {error}", file=sys.stderr)
        return 1
    if args.window is not None and not windows:
        print(f"gongji: no clearing window {args.window}", file=sys.stderr)
        return 1
    print(json.dumps(flows_json(windows)) if args.json else format_flows(windows), end="")
    if args.json:
        print()
    return 0


async def _run(args: argparse.Namespace) -> int:
    target = cluster_target(args)
    topology = Topology(namespace=target.namespace)
    connection = await connect(target.url_for(OPERATOR), name="gongji-report")
    client = await BillClient.open(connection, topology, f"report-{uuid.uuid4().hex[:8]}")
    try:
        report = await query_window_report(client, args.number)
    except TimeoutError:
        print("gongji: no answer from the clearinghouse (is it running?)", file=sys.stderr)
        return 1
    finally:
        await client.close()
        await connection.close()
    if report.summary.state == "unknown":
        print(f"gongji: no clearing window {args.number}")
        return 1
    print(json.dumps(report.as_json()) if args.json else format_window_report(report))
    return 0


def print_timeline(args: argparse.Namespace) -> int:
    """Print one transfer's timeline (``transfer_id``, ``data_dir``, ``json`` of args)."""
    try:
        timeline = read_timeline(args.data_dir, args.transfer_id)
    except TimelineError as error:
        print(f"gongji: {error}", file=sys.stderr)
        return 1
    if timeline is None:
        print(f"gongji: no transfer {args.transfer_id} in {args.data_dir}", file=sys.stderr)
        return 1
    print(json.dumps(timeline.as_json()) if args.json else format_timeline(timeline))
    return 0


def run(args: argparse.Namespace) -> int:
    if args.kind == "transfer":
        return print_timeline(args)
    if args.kind == "calibration":
        return calibration.run(args)
    if args.kind == "flows":
        return print_flows(args)
    return asyncio.run(_run(args))
