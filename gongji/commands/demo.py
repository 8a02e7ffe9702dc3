"""``gongji demo``: a small cluster in one process, a few hundred bills, an audit."""

from __future__ import annotations

import argparse
import asyncio
import json

from gongji.commands.options import add_broker_options, positive_int
from gongji.demo import format_report, run_demo
from telemetry.logs import configure_logging


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("demo", help="run a small cluster in one process and audit it")
    add_broker_options(parser)
    parser.add_argument("--transfers", type=positive_int, default=400, help="bills to submit")
    parser.add_argument("--persons", type=positive_int, default=200, help="persons per region")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace) -> int:
    configure_logging("WARNING")
    report = asyncio.run(
        run_demo(
            args.amqp_url,
            transfers=args.transfers,
            persons_per_region=args.persons,
            seed=args.seed,
        )
    )
    if args.json:
        print(json.dumps(report.as_json(), ensure_ascii=False))
    else:
        print(format_report(report))
    return 0 if report.books_balanced and report.conserved else 1
