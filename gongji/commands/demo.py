"""``gongji demo``: a scenario played end to end on a whole cluster, then audited.

On RabbitMQ when a broker is given (``--amqp-url`` or ``AMQP_URL``), else on the
simulated network, so the first command of the README works with nothing installed.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import sys

from gongji.commands.options import add_broker_options, positive_int
from gongji.demo import format_result, play_on_rabbitmq, play_on_sim
from gongji.scenario import ScenarioError, load_default_scenario, load_scenario
from gongji.scenario.loader import scenario_path
from telemetry.logs import configure_logging


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "demo", help="play a scenario on a whole cluster in one process, then audit it"
    )
    # No default URL: without a broker the demo runs on the simulated network. No
    # --namespace: the demo makes a namespace of its own, and deletes it afterwards.
    add_broker_options(parser, default_url=False, namespace=False)
    parser.add_argument(
        "--scenario",
        metavar="NAME|FILE",
        help="a shipped scenario (default, rollout, national) or a TOML file (default: the"
        " 31-region default)",
    )
    parser.add_argument("--transfers", type=positive_int, help="bills to submit (overrides)")
    parser.add_argument("--persons", type=positive_int, help="persons per region (overrides)")
    parser.add_argument("--seed", type=int, help="population and requests seed (overrides)")
    parser.add_argument(
        "--faults",
        default="none",
        help="on the simulated network only: faults to inject, as for gongji sim "
        "(default: %(default)s)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace) -> int:
    configure_logging("WARNING")
    try:
        scenario = (
            load_scenario(scenario_path(args.scenario))
            if args.scenario
            else load_default_scenario()
        )
    except ScenarioError as error:
        print(f"gongji demo: {error}", file=sys.stderr)
        return 2
    if args.transfers is not None:
        scenario = dataclasses.replace(
            scenario, bills=dataclasses.replace(scenario.bills, count=args.transfers)
        )
    if args.persons is not None:
        scenario = dataclasses.replace(
            scenario,
            population=dataclasses.replace(scenario.population, persons_per_region=args.persons),
        )
    if args.seed is not None:
        scenario = dataclasses.replace(scenario, seed=args.seed)
    if args.amqp_url:
        result = asyncio.run(play_on_rabbitmq(args.amqp_url, scenario))
    else:
        result = asyncio.run(play_on_sim(scenario, args.faults))
    if args.json:
        print(json.dumps(result.as_json(), ensure_ascii=False))
    else:
        print(format_result(result))
    return 0 if result.books_balanced and result.conserved and not result.problems else 1
