"""``gongji load``: open-loop load against a cluster, with a report of latency and money."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

from broker.connection import connect
from broker.publisher import Publisher
from broker.topology import Topology
from gongji.cluster.catalog import first_regions, regions_by_code, with_enabled
from gongji.cluster.local import DEFAULT_PERSONS, LOAD_CLIENT, OPERATOR, ClusterError
from gongji.cluster.seed import SeededPopulation, seed_population, seeded_from
from gongji.commands.options import (
    ClusterTarget,
    add_cluster_options,
    cluster_target,
    positive_int,
    region_code,
)
from gongji.load import (
    LoadConfig,
    MixError,
    ProgressBar,
    Target,
    format_report,
    parse_mix,
    run_load,
)
from gongji.load.nemesis import Nemesis, NemesisError, parse_nemesis
from gongji.scenario import ScenarioError, load_scenario, population_of
from gongji.scenario.loader import scenario_path
from telemetry.logs import configure_logging


def _share(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None
    if not 0 <= number <= 1:
        raise argparse.ArgumentTypeError(f"{value!r} is not a share between 0 and 1")
    return number


def _positive_float(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None
    if number <= 0:
        raise argparse.ArgumentTypeError(f"{value!r} must be positive")
    return number


def _codes(value: str) -> list[str]:
    return [region_code(code) for code in value.replace(",", " ").split()]


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "load",
        help="open-loop load against a cluster: latency percentiles, outcomes, money check",
        description="Send requests on a fixed schedule (open loop) and report latency from "
        "each request's intended send time, outcomes, errors and whether the money moved "
        "is conserved in the regions' books. The population comes from the local cluster's "
        "state file (--data-dir), or from --codes/--regions, --persons and "
        "--population-seed (then --setup seeds it first, e.g. under compose).",
    )
    parser.add_argument("--rate", type=_positive_float, default=100.0, help="requests per second")
    parser.add_argument("--duration", type=_positive_float, default=10.0, help="seconds")
    parser.add_argument(
        "--mix", default="copay=1.0", help="flows and weights (default: %(default)s)"
    )
    parser.add_argument(
        "--cross-province",
        type=_share,
        default=1.0,
        help="share of requests whose co-payer is in another province (default: %(default)s)",
    )
    parser.add_argument(
        "--skew",
        type=float,
        default=0.0,
        help="zipf exponent over payee regions: 0 uniform, 1 region i gets 1/(i+1) "
        "(default: %(default)s)",
    )
    parser.add_argument("--seed", type=int, default=1, help="seed of the request stream")
    parser.add_argument(
        "--drain",
        type=_positive_float,
        default=30.0,
        help="seconds to wait for outcomes after the last send (default: %(default)s)",
    )
    parser.add_argument(
        "--max-in-flight",
        type=positive_int,
        default=None,
        help="hold back sends while this many are unanswered (for saturation runs)",
    )
    add_cluster_options(parser)
    population = parser.add_argument_group("population without a local cluster state file")
    which = population.add_mutually_exclusive_group()
    which.add_argument("--codes", type=_codes, help="region codes, e.g. 310000,420100")
    which.add_argument("--regions", type=positive_int, help="the first N catalog regions")
    which.add_argument(
        "--scenario",
        metavar="NAME|FILE",
        help="the regions of a scenario, shipped (e.g. national) or a file (as `admin seed"
        " --scenario F --load-population`)",
    )
    population.add_argument(
        "--scenario-population",
        action="store_true",
        help="with --scenario: the scenario's own population (drawn and named, as `admin"
        " seed --scenario F` seeds it: zero and short balances, several co-payers,"
        " migration) and its bill and wallet amounts, instead of the load population",
    )
    population.add_argument("--enable-all", action="store_true")
    population.add_argument(
        "--mailboxes",
        action="store_true",
        help="send each province's requests to its host's mailbox, one envelope for all "
        "its regions (a cluster whose services run with --mailboxes province, as compose's "
        "do; with a local cluster state file, its own setting is used)",
    )
    population.add_argument("--persons", type=positive_int, default=DEFAULT_PERSONS)
    population.add_argument("--population-seed", type=int, default=1)
    population.add_argument(
        "--setup",
        action="store_true",
        help="publish the population's set-up operations first (idempotent)",
    )
    parser.add_argument(
        "--nemesis",
        metavar="SPEC",
        help="inject faults into the local cluster during the load: 'all', or kinds with "
        "counts and a seed, e.g. region-kill=2,clearinghouse-kill=1,crash-loop=1,pause=1,"
        "broker-restart=1,seed=7 (broker-restart needs rabbitmqctl as root); the run then "
        "fails if a request is lost, stuck or moved money twice, or the audit fails",
    )
    parser.add_argument("--json", action="store_true", help="print the report as one JSON object")
    parser.add_argument(
        "--report",
        metavar="DIR",
        type=Path,
        help="also write DIR/index.html: the report with PNG charts beside it (rate and "
        "latency, outcomes by reason, throughput per region, the faults), for a browser",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")


def _target(args: argparse.Namespace) -> tuple[ClusterTarget, Target]:
    """The broker URL and what to load."""
    if args.scenario_population and args.scenario is None:
        raise ClusterError("--scenario-population goes with --scenario")
    cluster = cluster_target(args)
    state = cluster.state
    given = args.codes or args.regions or args.scenario
    if state is not None and not given:
        target = Target(cluster.namespace, state.population(), Path(state.data_dir))
        target.mailboxes = state.mailboxes
        return cluster, target
    if not given:
        raise ClusterError(
            f"no local cluster state in {cluster.cluster_dir} (start one with "
            "`gongji cluster up`), and no --codes, --regions or --scenario to build the "
            "population from"
        )
    if args.scenario is not None:
        scenario = load_scenario(scenario_path(args.scenario))
        if args.scenario_population:
            bills = scenario.bills
            seeded = seeded_from(
                population_of(scenario),
                bill_fen=(bills.amount_fen.min, bills.amount_fen.max),
                wallet_fen=(bills.wallet_amount_fen.min, bills.wallet_amount_fen.max),
            )
            data_dir = cluster.cluster_dir if cluster.cluster_dir.is_dir() else None
            return cluster, Target(cluster.namespace, seeded, data_dir, args.mailboxes)
        regions = scenario.regions
    elif args.codes:
        regions = regions_by_code(args.codes)
    else:
        regions = first_regions(args.regions)
    regions = with_enabled(regions, True if args.enable_all else None)
    seeded = seed_population(regions, args.persons, args.population_seed)
    # Without a state file, the books are read only if the cluster's files are there.
    data_dir = cluster.cluster_dir if cluster.cluster_dir.is_dir() else None
    return cluster, Target(cluster.namespace, seeded, data_dir, mailboxes=args.mailboxes)


async def _setup(amqp_url: str, namespace: str, seeded: SeededPopulation) -> None:
    connection = await connect(amqp_url, name=f"gongji-load-setup:{namespace}")
    try:
        publisher = await Publisher.open(connection, Topology(namespace), OPERATOR.address)
        await publisher.publish_outgoing(seeded.population.setup_operations())
        await publisher.close()
    finally:
        await connection.close()


def run(args: argparse.Namespace) -> int:
    configure_logging("WARNING")
    try:
        mix = parse_mix(args.mix)
        cluster, target = _target(args)
        config = LoadConfig(
            rate=args.rate,
            duration_s=args.duration,
            mix=mix,
            cross_province=args.cross_province,
            skew=args.skew,
            seed=args.seed,
            drain_s=args.drain,
            max_in_flight=args.max_in_flight,
        )
        nemesis = None
        if args.nemesis is not None:
            if target.data_dir is None:
                raise NemesisError("--nemesis needs a local cluster's --data-dir")
            nemesis = Nemesis(
                parse_nemesis(args.nemesis),
                target.data_dir,
                config.duration_s,
                say=lambda line: print(line, file=sys.stderr, flush=True),
            )
            nemesis.check()
    except (MixError, ClusterError, ScenarioError, ValueError) as error:
        print(f"gongji load: {error}", file=sys.stderr)
        return 2
    if args.setup:
        asyncio.run(_setup(cluster.url_for(OPERATOR), target.namespace, target.seeded))
    progress = None if args.no_progress else ProgressBar(sys.stderr)
    url = cluster.url_for(LOAD_CLIENT)
    report = asyncio.run(run_load(url, target, config, progress=progress, nemesis=nemesis))
    if args.json:
        print(json.dumps(report.as_json(), ensure_ascii=False))
    else:
        print(format_report(report))
    if args.report is not None:
        # matplotlib loads only when a report is asked for (a second or so).
        from gongji.load.charts import write_html_report

        extra = {"nemesis": args.nemesis or "none"}
        page = write_html_report(report, args.report, extra)
        print(f"gongji load: report written to {page}", file=sys.stderr)
    return 1 if report.failed else 0
