"""``gongji transfer show ID``: one transfer's timeline, from the services' SQLite files
(read-only); another name for ``gongji report transfer ID``."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from gongji.commands.options import DEFAULT_CLUSTER_DIR
from gongji.commands.requesting import identifier
from gongji.timeline import TimelineError, format_timeline, read_timeline


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("transfer", help="look at one transfer")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    show = actions.add_parser(
        "show",
        help="one transfer's timeline (reads the SQLite files, read-only)",
        description="The same as `gongji report transfer ID`.",
    )
    show.add_argument("transfer_id", metavar="ID", type=identifier, help="the transfer id")
    show.add_argument("--json", action="store_true", help="print one JSON object")
    show.add_argument(
        "--data-dir",
        type=Path,
        default=Path(os.environ.get("GONGJI_CLUSTER_DIR", DEFAULT_CLUSTER_DIR)),
        help="where the clearinghouse and region files are (default: $GONGJI_CLUSTER_DIR "
        "or %(default)s)",
    )


def run(args: argparse.Namespace) -> int:
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
