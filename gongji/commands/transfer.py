"""``gongji transfer show ID``: one transfer's timeline, from the services' SQLite files
(read-only); another name for ``gongji report transfer ID``."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from gongji.commands.options import DEFAULT_CLUSTER_DIR
from gongji.commands.report import print_timeline
from gongji.commands.requesting import identifier


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
    return print_timeline(args)  # the same as `gongji report transfer ID`
