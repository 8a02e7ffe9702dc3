"""``gongji province --code 420000``: host a province's pooling regions in one process."""

from __future__ import annotations

import argparse
from pathlib import Path

from contracts.identifiers import is_province_code, province_of
from gongji.commands.options import UsageError, add_service_options
from gongji.commands.region import region_codes, serve_regions
from gongji.scenario import ScenarioError, load_scenario


def province_code(value: str) -> str:
    if not is_province_code(value):
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a province code (6 digits ending 0000, e.g. 420000 for Hubei)"
        )
    return value


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "province",
        help="host a province's pooling regions in one process (one connection)",
        description="Run the services of a province's regions in one process: each region "
        "keeps its own SQLite file, core, policy and queue; they share one broker connection "
        "(as the province host's broker user, which speaks for exactly its province's "
        "regions) and one event loop.",
    )
    parser.add_argument("--code", type=province_code, required=True, help="e.g. 420000")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument(
        "--regions", type=region_codes, help="the region codes to host, e.g. 420100,420500"
    )
    which.add_argument(
        "--scenario", type=Path, help="host every region of the province this scenario lists"
    )
    add_service_options(parser, metrics_port=0)


def hosted_codes(args: argparse.Namespace) -> list[str]:
    """The regions to host: as listed, or the scenario's regions of the province."""
    if args.regions is not None:
        codes: list[str] = args.regions
    else:
        try:
            scenario = load_scenario(args.scenario)
        except ScenarioError as error:
            raise UsageError(str(error)) from None
        codes = [code for code in scenario.codes if province_of(code) == args.code]
        if not codes:
            raise UsageError(f"{args.scenario} lists no region of province {args.code}")
    foreign = [code for code in codes if province_of(code) != args.code]
    if foreign:
        raise UsageError(f"--regions: {', '.join(foreign)} not in province {args.code}")
    return codes


def run(args: argparse.Namespace) -> int:
    return serve_regions(args, f"province-{args.code}", hosted_codes(args))
