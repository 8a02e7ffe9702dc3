"""``gongji demo``: a small cluster in one process, a few hundred bills, an audit.

On RabbitMQ when a broker is given (``--amqp-url`` or ``AMQP_URL``), else on the
simulated network, so the first command of the README works with nothing installed.
"""

from __future__ import annotations

import argparse
import asyncio
import json

from gongji.commands.options import add_broker_options, positive_int
from gongji.demo import format_report, run_demo, run_demo_simulated
from telemetry.logs import configure_logging


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("demo", help="run a small cluster in one process and audit it")
    # No default URL: without a broker the demo runs on the simulated network.
    add_broker_options(parser, default_url=False)
    parser.add_argument("--transfers", type=positive_int, default=400, help="bills to submit")
    parser.add_argument("--persons", type=positive_int, default=200, help="persons per region")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--faults",
        default="none",
        help="on the simulated network only: faults to inject, as for gongji sim "
        "(default: %(default)s)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace) -> int:
    configure_logging("WARNING")
    if args.amqp_url:
        report = asyncio.run(
            run_demo(
                args.amqp_url,
                transfers=args.transfers,
                persons_per_region=args.persons,
                seed=args.seed,
            )
        )
    else:
        report = run_demo_simulated(
            transfers=args.transfers,
            persons_per_region=args.persons,
            seed=args.seed,
            faults=args.faults,
        )
    if args.json:
        print(json.dumps(report.as_json(), ensure_ascii=False))
    else:
        print(format_report(report))
    return 0 if report.books_balanced and report.conserved else 1
