"""``gongji admin``: set up and change a running cluster (seed it, enable or disable a
region, close a clearing window)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import uuid
from pathlib import Path

from broker.connection import connect
from broker.publisher import Publisher, Unroutable
from broker.topology import Topology
from contracts.identifiers import CLEARINGHOUSE
from contracts.operations import CloseWindow, SetRegionEnabled
from gongji.client import BillClient
from gongji.cluster.catalog import regions_by_code, with_enabled
from gongji.cluster.local import OPERATOR
from gongji.cluster.seed import seed_population
from gongji.commands.options import (
    ClusterTarget,
    add_cluster_options,
    cluster_target,
    positive_int,
    region_code,
)
from gongji.population import Population
from gongji.scenario import ScenarioError, load_scenario, population_of
from gongji.windows import format_window_report, read_window_report


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("admin", help="change a running cluster")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    for name, text in (("enable", "enable"), ("disable", "disable")):
        sub = actions.add_parser(name, help=f"{text} cross-region mutual aid for a region")
        sub.add_argument("region", type=region_code, help="6-digit region code")
        add_cluster_options(sub)
    close = actions.add_parser("close-window", help="close the open clearing window")
    close.add_argument("--json", action="store_true", help="print the report as JSON")
    add_cluster_options(close)
    seed = actions.add_parser(
        "seed",
        help="register regions and enroll a population (idempotent set-up of a cluster)",
        description="Publish the set-up operations of a population: register the regions"
        " (with their policies and enabled flags), enroll persons, record bindings. Either"
        " a scenario file, or the load population (--codes, --persons, --population-seed)"
        " that `gongji load` draws on. Re-running re-registers the regions as listed.",
    )
    source = seed.add_mutually_exclusive_group(required=True)
    source.add_argument("--scenario", type=Path, help="a scenario TOML file")
    source.add_argument("--codes", type=_codes, help="comma-separated region codes")
    seed.add_argument("--persons", type=positive_int, default=1000, help="persons per region")
    seed.add_argument("--population-seed", type=int, default=1)
    seed.add_argument(
        "--enable-all",
        action="store_true",
        help="with --codes: enable every region (default: as the catalog says)",
    )
    add_cluster_options(seed)


def _codes(value: str) -> list[str]:
    return [region_code(code.strip()) for code in value.split(",") if code.strip()]


def _population(args: argparse.Namespace) -> Population:
    """The population to set up, or raise ScenarioError / ValueError with a clear message."""
    if args.scenario is not None:
        if args.enable_all:
            raise ValueError("--enable-all goes with --codes (a scenario says what is enabled)")
        return population_of(load_scenario(args.scenario))
    regions = with_enabled(regions_by_code(args.codes), True if args.enable_all else None)
    return seed_population(regions, args.persons, args.population_seed).population


async def _seed(target: ClusterTarget, population: Population) -> int:
    topology = Topology(namespace=target.namespace)
    connection = await connect(target.url_for(OPERATOR), name="gongji-admin-seed")
    try:
        publisher = await Publisher.open(connection, topology, OPERATOR.address)
        try:
            # Registrations first: the clearinghouse then configures each region.
            await publisher.publish_outgoing(population.setup_operations())
        except Unroutable as error:
            print(f"gongji admin seed: {error}; is the service running?", file=sys.stderr)
            return 1
        finally:
            await publisher.close()
    finally:
        await connection.close()
    enabled = sum(1 for r in population.regions if r.enabled)
    print(
        f"seeded {len(population.regions)} regions ({enabled} enabled),"
        f" {len(population.persons)} persons, {len(population.bindings)} bindings"
    )
    return 0


async def _run(args: argparse.Namespace, target: ClusterTarget) -> int:
    topology = Topology(namespace=target.namespace)
    connection = await connect(target.url_for(OPERATOR), name=f"gongji-admin-{args.action}")
    client = await BillClient.open(connection, topology, f"admin-{uuid.uuid4().hex[:8]}")
    try:
        if args.action in ("enable", "disable"):
            enabled = args.action == "enable"
            await client.send(CLEARINGHOUSE, SetRegionEnabled(args.region, enabled))
            print(f"region {args.region}: {'enabled' if enabled else 'disabled'} (sent)")
            return 0
        request = CloseWindow(f"close-{uuid.uuid4().hex}", client.address)
        await client.send(CLEARINGHOUSE, request)
        report = await read_window_report(client)
        if args.json:
            print(json.dumps(report.as_json()))
        else:
            print(format_window_report(report))
        return 0
    finally:
        await client.close()
        await connection.close()


def run(args: argparse.Namespace) -> int:
    target = cluster_target(args)
    if args.action == "seed":
        try:
            population = _population(args)
        except (ScenarioError, ValueError) as error:
            print(f"gongji admin seed: {error}", file=sys.stderr)
            return 2
        return asyncio.run(_seed(target, population))
    return asyncio.run(_run(args, target))
