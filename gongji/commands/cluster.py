"""``gongji cluster up|down|status|kill|stop|cont|restart``: the compose topology as
local processes, no Docker."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path

from gongji.cluster.catalog import CATALOG, first_regions, regions_by_code, with_enabled
from gongji.cluster.local import (
    DEFAULT_BASE_PORT,
    DEFAULT_PERSONS,
    ClusterConfig,
    ClusterError,
    cluster_down,
    cluster_up,
    is_running,
    restart_service,
    signal_service,
)
from gongji.commands.options import (
    add_broker_options,
    add_local_cluster_options,
    local_cluster_state,
    port_number,
    positive_int,
    region_code,
)
from gongji.population import RegionSpec
from gongji.scenario import ScenarioError, load_scenario
from gongji.scenario.loader import SCENARIO_DIR


def scenario_file(value: str) -> Path:
    """A scenario file's path, or the name of one shipped with gongji (``national``)."""
    path = Path(value)
    if path.is_file():
        return path
    shipped = SCENARIO_DIR / f"{value}.toml"
    if "/" not in value and shipped.is_file():
        return shipped
    names = ", ".join(sorted(p.stem for p in SCENARIO_DIR.glob("*.toml")))
    raise argparse.ArgumentTypeError(f"{value!r} is no scenario file nor one of: {names}")


def _codes(value: str) -> list[str]:
    return [region_code(code) for code in value.replace(",", " ").split()]


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "cluster", help="start or stop a local multi-process cluster (no Docker)"
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")

    up = actions.add_parser("up", help="start the clearinghouse and regions, seed a population")
    which = up.add_mutually_exclusive_group()
    which.add_argument(
        "--regions",
        type=positive_int,
        default=5,
        help=f"the first N regions of the catalog, 1..{len(CATALOG)} (default: %(default)s; "
        "the fifth, Beijing, is not enabled)",
    )
    which.add_argument("--codes", type=_codes, help="region codes, e.g. 310000,420100")
    which.add_argument(
        "--scenario",
        type=scenario_file,
        help="the regions (policies, enabled or not) of a scenario file, or of a shipped "
        "scenario by name (national, rollout, default)",
    )
    up.add_argument("--enable-all", action="store_true", help="enable every region")
    up.add_argument(
        "--process-per-region",
        action="store_true",
        help="one process (and broker user) per region, instead of one per province "
        "hosting all of its regions on one connection",
    )
    add_broker_options(up)
    add_local_cluster_options(up, namespace_check=False)
    up.add_argument(
        "--base-port",
        type=port_number,
        default=DEFAULT_BASE_PORT,
        help="metrics port of the clearinghouse; process i gets base+i (default: %(default)s)",
    )
    up.add_argument(
        "--persons",
        type=positive_int,
        default=None,
        help=f"persons seeded per region (default: {DEFAULT_PERSONS}, or the scenario's)",
    )
    up.add_argument(
        "--seed", type=int, default=None, help="population seed (default: 1, or the scenario's)"
    )
    up.add_argument(
        "--scrape-interval",
        type=float,
        default=5.0,
        help="seconds, in the written Prometheus config (default: %(default)s)",
    )
    up.add_argument(
        "--sqlite-synchronous",
        choices=["FULL", "NORMAL"],
        default=None,
        help="FULL (default): a commit survives power loss; NORMAL: it survives a process "
        "crash only, and is faster",
    )
    up.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="services' log level (default: %(default)s: every finished transfer with its "
        "id, for `gongji logs`; WARNING for the fastest runs)",
    )

    down = actions.add_parser("down", help="stop exactly the processes `cluster up` started")
    add_local_cluster_options(down)
    down.add_argument(
        "--grace",
        type=float,
        default=10.0,
        help="seconds between SIGTERM and SIGKILL (default: %(default)s)",
    )

    status = actions.add_parser("status", help="list the cluster's processes")
    add_local_cluster_options(status)

    for action, what in SERVICE_ACTIONS.items():
        one = actions.add_parser(action, help=what)
        one.add_argument(
            "service",
            metavar="SERVICE",
            help="clearinghouse, province-420000, region-420100 or 420100 (a region hosted "
            "by province names its province's process)",
        )
        add_local_cluster_options(one)


SERVICE_ACTIONS = {
    "kill": "kill -9 one service (as a crash would; `restart` brings it back)",
    "stop": "SIGSTOP one service (a pause: it holds its messages; `cont` resumes it)",
    "cont": "SIGCONT a stopped service",
    "restart": "start one service again (killing it first if it runs)",
}
_SIGNALS = {"kill": signal.SIGKILL, "stop": signal.SIGSTOP, "cont": signal.SIGCONT}


def run(args: argparse.Namespace) -> int:
    try:
        if args.action == "up":
            return _up(args)
        if args.action == "down":
            return _down(args)
        if args.action in SERVICE_ACTIONS:
            return _one_service(args)
        return _status(args)
    except ClusterError as error:
        print(f"gongji cluster {args.action}: {error}", file=sys.stderr)
        return 1


def _up(args: argparse.Namespace) -> int:
    persons, seed = args.persons or DEFAULT_PERSONS, 1 if args.seed is None else args.seed
    regions: tuple[RegionSpec, ...]
    try:
        if args.scenario is not None:
            scenario = load_scenario(args.scenario)
            regions = scenario.regions
            persons = args.persons or scenario.population.persons_per_region
            seed = scenario.seed if args.seed is None else args.seed
        elif args.codes:
            regions = regions_by_code(args.codes)
        else:
            regions = first_regions(args.regions)
    except (ValueError, ScenarioError) as error:
        raise ClusterError(str(error)) from None
    config = ClusterConfig(
        amqp_url=args.amqp_url,
        data_dir=args.data_dir,
        regions=with_enabled(regions, True if args.enable_all else None),
        namespace=args.namespace,
        base_port=args.base_port,
        persons_per_region=persons,
        seed=seed,
        hosting="region" if args.process_per_region else "province",
        scenario=str(args.scenario.resolve()) if args.scenario else "",
        scrape_interval_s=args.scrape_interval,
        log_level=args.log_level,
        sqlite_synchronous=args.sqlite_synchronous,
    )

    def say(text: str) -> None:
        print(f"gongji cluster up: {text}", file=sys.stderr)

    state = asyncio.run(cluster_up(config, say))
    for service in state.services:
        hosted = f"  ({len(service.codes)} regions)" if len(service.codes) > 1 else ""
        print(
            f"{service.name:<16} pid {service.pid:<8} metrics "
            f"http://127.0.0.1:{service.metrics_port}/metrics{hosted}"
        )
    disabled = [r.code for r in state.regions if not r.enabled]
    if disabled:
        print(f"not enabled: {', '.join(disabled)}")
    print(f"state:         {Path(state.data_dir) / 'cluster.json'}")
    print(f"logs:          {state.log_dir}  (gongji logs SERVICE [--transfer ID] [--follow])")
    print(f"scrape config: {state.scrape_config}")
    return 0


def _down(args: argparse.Namespace) -> int:
    # Refuses another namespace's cluster; cluster_down says so when none is up.
    local_cluster_state(args)
    report = cluster_down(args.data_dir, grace_s=args.grace)
    for name in report.stopped:
        print(f"stopped {name}")
    for name in report.killed:
        print(f"killed  {name} (still running {args.grace:g} s after SIGTERM)")
    for name in report.gone:
        print(f"gone    {name} (was not running)")
    return 0


def _one_service(args: argparse.Namespace) -> int:
    if local_cluster_state(args) is None:
        raise ClusterError(f"no local cluster in {args.data_dir.resolve()}")
    if args.action == "restart":
        record = restart_service(args.data_dir, args.service)
        print(f"restarted {record.name} (pid {record.pid})")
    else:
        record = signal_service(args.data_dir, args.service, _SIGNALS[args.action])
        print(f"{args.action} {record.name} (pid {record.pid})")
    return 0


def _status(args: argparse.Namespace) -> int:
    state = local_cluster_state(args)
    if state is None:
        print(f"no local cluster in {args.data_dir.resolve()}")
        return 1
    print(f"namespace {state.namespace} in {state.data_dir}")
    for service in state.services:
        status = "running" if is_running(service) else "not running"
        hosted = f"  regions {','.join(service.codes)}" if len(service.codes) > 1 else ""
        print(
            f"{service.name:<16} pid {service.pid:<8} port {service.metrics_port}  {status}{hosted}"
        )
    return 0
