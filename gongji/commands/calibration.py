"""``gongji report calibration``: a load run's figures against its scenario's targets."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from gongji.calibration import CalibrationError, compare, format_figures
from gongji.scenario import ScenarioError, load_scenario
from gongji.scenario.loader import scenario_path, shipped_scenarios


def add_parser(kinds: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = kinds.add_parser(
        "calibration",
        help="a load run's figures against the scenario's [calibration] targets",
        description="Compare the figures of a run (amount per wallet transfer, premiums'"
        " share of the money, flow shares, bills paid in full / in part / refused) with"
        " the targets of a scenario's [calibration] table, with the deviation of each."
        " The run is the report `gongji load --json` printed, saved to a file.",
    )
    parser.add_argument(
        "load_report", type=Path, metavar="LOAD_JSON", help="the output of gongji load --json"
    )
    parser.add_argument(
        "--scenario",
        required=True,
        metavar="NAME|FILE",
        help=f"the scenario with the targets: shipped ({', '.join(shipped_scenarios())}) or a"
        " TOML file",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace) -> int:
    try:
        scenario = load_scenario(scenario_path(args.scenario))
    except ScenarioError as error:
        print(f"gongji report calibration: {error}", file=sys.stderr)
        return 2
    try:
        load = json.loads(args.load_report.read_text(encoding="utf-8"))
        if not isinstance(load, dict):
            raise CalibrationError("not a gongji load --json report (not a JSON object)")
        figures = compare(scenario.calibration, load)
    except OSError as error:
        print(f"gongji report calibration: {args.load_report}: {error}", file=sys.stderr)
        return 2
    except (json.JSONDecodeError, CalibrationError) as error:
        print(f"gongji report calibration: {args.load_report}: {error}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps({"scenario": scenario.name, "figures": [f.as_json() for f in figures]}))
    else:
        print(format_figures(scenario.name, figures))
    return 0
