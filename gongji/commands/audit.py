"""``gongji audit --data-dir DIR``: an independent audit of a cluster's SQLite files."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from gongji.ledger_audit import KINDS, audit_data_dir
from gongji.ledger_snapshot import SnapshotError

DESCRIPTION = """\
Read the clearinghouse's and every region's SQLite file of a cluster's data directory
(clearinghouse.sqlite, region-<code>.sqlite) read-only, with plain SQL on the schema,
and check that money is conserved, no account is negative, every region's books balance
with their journal, no hold is pending past its expiry, every committed transfer was
posted once at its payer and credited once at its payee for the same amount (nothing for
an aborted one), inter-region positions agree pair by pair and with the
clearinghouse, and every closed window's settlement between the regional funds is whole
(nets summing to zero, advances as the rule says, booked once by every region). Safe
on a running cluster (no lock is taken; transfers in flight are set aside).

Expired holds: a hold still pending at or after its expiry is a violation, judged as of
--as-of-ms, by default the newest timestamp in the files; so audit a cluster once it is
quiet, or pass the current time.

Persons are never printed: they appear as psn#xxxxxx, a hash keyed anew for each run.
Exit status: 0 no violation, 1 violations (each printed with its transfer id and
region), 2 usage error."""


def _ms(value: str) -> int:
    try:
        ms = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number of ms") from None
    if ms < 0:
        raise argparse.ArgumentTypeError(f"{value}: a time in ms since the epoch is not negative")
    return ms


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "audit",
        help="audit a cluster's data directory, independently of the services",
        description=DESCRIPTION,
        epilog="kinds of violation: " + "; ".join(f"{k}: {v}" for k, v in KINDS.items()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--data-dir", type=Path, required=True, help="the cluster's data directory")
    parser.add_argument(
        "--as-of-ms",
        type=_ms,
        help="judge pending holds expired as of this time (ms since the epoch; "
        "default: the newest timestamp in the files)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace) -> int:
    try:
        result = audit_data_dir(args.data_dir, as_of_ms=args.as_of_ms)
    except SnapshotError as error:
        print(f"gongji: {error}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result.as_json(), ensure_ascii=False))
    else:
        for violation in result.violations:
            print(violation)
        print(f"gongji: {result.verdict()}")
    return 0 if result.ok else 1
