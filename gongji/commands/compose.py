"""``gongji compose --scenario FILE``: the compose file of a scenario (a service per
province host), with its broker users and scrape config (``gongji.deploy``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gongji.commands.cluster import scenario_file
from gongji.commands.options import UsageError, positive_int
from gongji.deploy import PERSONS, POPULATION_SEED, write_compose
from gongji.scenario import ScenarioError, load_scenario


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "compose",
        help="write the compose file of a scenario: a service per province host, its "
        "broker users and permissions, the scrape config",
        description="Write DIR/compose.yaml, DIR/deploy/rabbitmq/definitions.json and "
        "DIR/deploy/prometheus/prometheus.yml for a scenario: RabbitMQ, the clearinghouse, "
        "one service per province hosting its regions, the seed and the load generator "
        "(which mount the scenario file), Prometheus and Grafana. DIR is a gongji checkout "
        "(compose builds its Dockerfile and mounts the rest of its deploy/ folder).",
    )
    parser.add_argument(
        "--scenario", type=scenario_file, required=True, help="a scenario file or name"
    )
    parser.add_argument(
        "--dir", type=Path, default=Path("."), help="where to write (default: the current folder)"
    )
    parser.add_argument(
        "--persons",
        type=positive_int,
        default=PERSONS,
        help="persons the seed enrolls per region, for the load (default: %(default)s)",
    )
    parser.add_argument(
        "--population-seed",
        type=int,
        default=POPULATION_SEED,
        help="seed of that population (default: %(default)s)",
    )


def run(args: argparse.Namespace) -> int:
    try:
        scenario = load_scenario(args.scenario)
    except ScenarioError as error:
        raise UsageError(str(error)) from None
    written = write_compose(
        scenario.regions, args.scenario, args.dir, args.persons, args.population_seed
    )
    for path in written:
        print(f"wrote {path}", file=sys.stderr)
    return 0
