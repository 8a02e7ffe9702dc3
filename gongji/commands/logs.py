"""``gongji logs SERVICE [--transfer ID] [--follow]``: a local cluster's service log."""

from __future__ import annotations

import argparse
import os
import sys

from gongji.cluster.logs import follow_logs, host_of, log_files, read_logs
from gongji.commands.options import UsageError, add_local_cluster_options, local_cluster_state

ALL = "all"


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "logs",
        help="show a local cluster's service log, or one transfer's lines",
        description="Print the JSON log lines of a service of the local cluster (from the "
        "log directory `gongji cluster up` printed; the logs stay after `cluster down`).",
    )
    parser.add_argument(
        "service",
        metavar="SERVICE",
        help=f"clearinghouse, province-420000, region-420100 (or just 420100: its host's log "
        f"when hosted by province), or {ALL} (every service, in time order)",
    )
    parser.add_argument(
        "--transfer", metavar="ID", help="only the lines of this transfer id (transfer_id)"
    )
    parser.add_argument(
        "-f", "--follow", action="store_true", help="keep printing lines as they are written"
    )
    add_local_cluster_options(parser)


def run(args: argparse.Namespace) -> int:
    data_dir = args.data_dir.resolve()
    state = local_cluster_state(args)
    files = log_files(data_dir, state)
    if not files:
        raise UsageError(
            f"no service logs in {data_dir} (start a cluster with `gongji cluster up`, "
            "or give its --data-dir)"
        )
    if args.service != ALL:
        name = f"region-{args.service}" if args.service.isdigit() else args.service
        # A region hosted by province logs in its host's file (each line names it).
        name = name if name in files else host_of(state, name) or name
        if name not in files:
            raise UsageError(
                f"no service {args.service!r} in {data_dir}; there are: "
                f"{', '.join(files)} (or {ALL})"
            )
        files = {name: files[name]}

    def write(line: str) -> None:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()

    try:
        if args.follow:
            follow_logs(files, args.transfer, write)
        else:
            for line in read_logs(files, args.transfer):
                write(line)
    except BrokenPipeError:
        # The reader (``| head``) is gone: stop quietly, and let nothing flush at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0
