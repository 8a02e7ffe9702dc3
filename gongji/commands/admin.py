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
from broker.publisher import Publisher, PublishError, Unroutable
from broker.topology import Topology
from contracts.identifiers import CLEARINGHOUSE
from contracts.operations import CloseWindow, RegistryChanged, RegistryResult, SetRegionEnabled
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
from gongji.windows import format_window_report, read_window_report, reconciled_report

ANSWER_TIMEOUT_S = 10.0
"""How long an admin command waits for the clearinghouse's answer."""
NO_ANSWER = "gongji: no answer from the clearinghouse in {:g} s (is it running?)"

_SAID: dict[RegistryResult, str] = {
    RegistryResult.ENABLED: "enabled",
    RegistryResult.DISABLED: "disabled",
    RegistryResult.ALREADY_ENABLED: "already enabled (nothing changed)",
    RegistryResult.ALREADY_DISABLED: "already disabled (nothing changed)",
    RegistryResult.REGISTERED: "registered",
}
"""What a successful answer reads as; any other result is an error."""


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("admin", help="change a running cluster")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    for name, text in (("enable", "enable"), ("disable", "disable")):
        sub = actions.add_parser(name, help=f"{text} cross-region mutual aid for a region")
        sub.add_argument("region", type=region_code, help="6-digit region code")
        add_cluster_options(sub)
    close = actions.add_parser("close-window", help="close the open clearing window")
    close.add_argument("--json", action="store_true", help="print the report as JSON")
    close.add_argument(
        "--wait",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="wait this long for the regions to reconcile before printing (default: 30; 0: no)",
    )
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
    seed.add_argument(
        "--load-population",
        action="store_true",
        help="with --scenario: its regions (policies, enabled flags) with the load "
        "population (--persons, --population-seed) that `gongji load --scenario` draws on, "
        "as `gongji cluster up --scenario` seeds it",
    )
    add_cluster_options(seed)


def _codes(value: str) -> list[str]:
    return [region_code(code.strip()) for code in value.split(",") if code.strip()]


def _population(args: argparse.Namespace) -> Population:
    """The population to set up, or raise ScenarioError / ValueError with a clear message."""
    if args.scenario is not None:
        if args.enable_all:
            raise ValueError("--enable-all goes with --codes (a scenario says what is enabled)")
        scenario = load_scenario(args.scenario)
        if args.load_population:
            regions = scenario.regions
            return seed_population(regions, args.persons, args.population_seed).population
        return population_of(scenario)
    if args.load_population:
        raise ValueError("--load-population goes with --scenario")
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
            return await _set_enabled(client, args.region, args.action == "enable")
        return await _close_window(client, args.json, args.wait)
    except (Unroutable, PublishError) as error:
        print(f"gongji: {error}; is the clearinghouse running?", file=sys.stderr)
        return 1
    except TimeoutError:
        print(NO_ANSWER.format(ANSWER_TIMEOUT_S), file=sys.stderr)
        return 1
    finally:
        await client.close()
        await connection.close()


async def _set_enabled(client: BillClient, region: str, enabled: bool) -> int:
    """Ask the clearinghouse to enable or disable a region; report what it answered."""
    await client.send(CLEARINGHOUSE, SetRegionEnabled(region, enabled, client.address))
    answer = await _registry_answer(client, region)
    said = _SAID.get(answer.result)
    if said is None:
        problem = (
            "is not registered (nothing changed)"
            if answer.result is RegistryResult.UNKNOWN_REGION
            else f"refused ({answer.result})"
        )
        print(f"gongji: region {region} {problem}", file=sys.stderr)
        return 1
    print(f"region {region}: {said}")
    return 0


async def _registry_answer(client: BillClient, region: str) -> RegistryChanged:
    """The clearinghouse's answer about ``region``; TimeoutError when none comes in time."""
    async with asyncio.timeout(ANSWER_TIMEOUT_S):
        while True:
            reply = await client.replies.get()
            if isinstance(reply, RegistryChanged) and reply.region == region:
                return reply


async def _close_window(client: BillClient, as_json: bool, wait_s: float) -> int:
    """Close the open window; print its report once its regions reconciled (bounded)."""
    request = CloseWindow(f"close-{uuid.uuid4().hex}", client.address)
    await client.send(CLEARINGHOUSE, request)
    report = await read_window_report(client, ANSWER_TIMEOUT_S)
    report = await reconciled_report(client, report, wait_s)
    print(json.dumps(report.as_json()) if as_json else format_window_report(report))
    if wait_s > 0 and report.pending:
        print(
            f"gongji: window {report.summary.window} closed; not reconciled after {wait_s:g} s"
            f" by {', '.join(report.pending)}",
            file=sys.stderr,
        )
        return 1
    return 0


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
