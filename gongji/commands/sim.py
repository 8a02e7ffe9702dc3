"""``gongji sim``: the real cores on a simulated network, under seeded faults.

Prints one JSON object (``--json``) or a readable summary; exits 1 when an invariant
was violated, after printing the seed, the command that replays the run, and the story
of the transfers involved.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import TextIO

from gongji.commands.options import positive_int
from gongji.scenario import ScenarioError, load_scenario
from gongji.scenario.loader import scenario_path, shipped_scenarios
from gongji.sim import SimConfig, format_report, parse_faults, run_simulation
from gongji.sim.faults import KINDS, FaultRates
from gongji.sim.month import DAYS_IN_A_MONTH, month_config
from gongji.sim.places import MAX_REGIONS
from gongji.sim.planted import PLANTS


def _faults(value: str) -> FaultRates:
    try:
        return parse_faults(value)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _regions(value: str) -> int:
    count = positive_int(value)
    if not 2 <= count <= MAX_REGIONS:
        raise argparse.ArgumentTypeError(f"--regions takes 2 to {MAX_REGIONS}, not {count}")
    return count


def _ms(value: str) -> int:
    try:
        ms = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number of ms") from None
    if ms < 0:
        raise argparse.ArgumentTypeError(f"{value} ms: must be 0 (never) or more")
    return ms


def _share(value: str) -> float:
    try:
        share = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None
    if not 0 <= share <= 0.5:
        raise argparse.ArgumentTypeError(f"a share is between 0 and 0.5, not {value}")
    return share


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "sim",
        help="run regions and the clearinghouse on a simulated network under seeded faults",
        description="Deterministic simulation: the real region and clearinghouse cores over "
        "in-memory SQLite, a simulated broker and virtual time; the same seed replays the "
        "same run (same trace hash).",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--transfers", type=positive_int, default=10_000, help="requests to send")
    parser.add_argument("--regions", type=_regions, default=20, help="pooling regions (2-42)")
    parser.add_argument(
        "--faults",
        type=_faults,
        default="all",
        help=f"all, none, or a list such as delay,crash=0.01 (kinds: {', '.join(KINDS)})",
    )
    parser.add_argument(
        "--plant",
        choices=sorted(PLANTS),
        default="",
        help="run a core with a planted bug, to see the checker catch it",
    )
    defaults = SimConfig()
    parser.add_argument(
        "--client-retry-ms",
        type=_ms,
        default=defaults.client_retry_ms,
        help="the submitter re-sends an unanswered request after this long; 0: never "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--rate",
        type=positive_int,
        default=defaults.requests_per_second,
        help="requests per simulated second (default: %(default)s); lower stretches the "
        "run, so more faults happen while requests are under way",
    )
    parser.add_argument(
        "--wallet-share",
        type=_share,
        default=defaults.wallet_share,
        help="share of requests that are wallet transfers (default: %(default)s)",
    )
    parser.add_argument(
        "--premium-share",
        type=_share,
        default=defaults.premium_share,
        help="share of requests that are premium payments (default: %(default)s)",
    )
    parser.add_argument(
        "--away-share",
        type=_share,
        default=defaults.away_share,
        help="share of requests that are bills at a region of care, away from home"
        " (default: %(default)s)",
    )
    parser.add_argument(
        "--window-ms",
        type=_ms,
        default=defaults.window_ms,
        help="close a clearing window this often, 0: never (default: %(default)s)",
    )
    parser.add_argument(
        "--scenario",
        metavar="NAME|FILE",
        help="simulate a month of a scenario (shipped:"
        f" {', '.join(shipped_scenarios())}; or a TOML file): its regions, population and"
        " amounts; windows closed daily or monthly as its [clearing] says, settled between"
        " the regional funds; --regions, --rate and --window-ms then follow from the file"
        " and the days",
    )
    parser.add_argument(
        "--days",
        type=positive_int,
        default=DAYS_IN_A_MONTH,
        help="days of the month, with --scenario (default: %(default)s)",
    )
    parser.add_argument(
        "--day-ms",
        type=positive_int,
        default=defaults.day_ms,
        help="virtual time of one simulated day, with --scenario (default: %(default)s; a"
        " day's activity, compressed: the cores' timers keep their real lengths)",
    )
    parser.add_argument(
        "--mailboxes",
        action="store_true",
        help="host the regions by province with mailboxes, as `cluster up` does: the"
        " clearinghouse sends each province's host one envelope, and a host's regions die"
        " together",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace) -> int:
    config = SimConfig(
        seed=args.seed,
        transfers=args.transfers,
        regions=args.regions,
        faults=args.faults,
        plant=args.plant,
        client_retry_ms=args.client_retry_ms,
        requests_per_second=args.rate,
        wallet_share=args.wallet_share,
        premium_share=args.premium_share,
        away_share=args.away_share,
        window_ms=args.window_ms,
        mailboxes=args.mailboxes,
    )
    regions = None
    scenario = None
    if args.scenario is not None:
        path = scenario_path(args.scenario)
        try:
            config, regions = month_config(path, config, days=args.days, day_ms=args.day_ms)
            scenario = load_scenario(path)
        except ScenarioError as error:
            for problem in error.problems:
                print(f"gongji: {problem}", file=sys.stderr)
            return 2
    bar = None if args.json or not sys.stderr.isatty() else ProgressBar(sys.stderr)
    report = run_simulation(config, progress=bar, regions=regions, scenario=scenario)
    if bar is not None:
        bar.done()
    if args.json:
        print(json.dumps(report.as_json(), ensure_ascii=False))
    else:
        print(format_report(report, show_flows=regions is not None))
    return 0 if report.ok else 1


class ProgressBar:
    """One line on a terminal, redrawn at most ten times a second."""

    def __init__(self, out: TextIO, width: int = 30) -> None:
        self.out = out
        self.width = width
        self._last = 0.0

    def __call__(self, submitted: int, answered: int, total: int, phase: str) -> None:
        now = time.monotonic()
        if now - self._last < 0.1:
            return
        self._last = now
        filled = self.width * answered // total if total else self.width
        bar = "#" * filled + "." * (self.width - filled)
        what = "faults on" if phase == "faults" else "healed, waiting for every outcome"
        self.out.write(f"\r[{bar}] {answered}/{total} answered, {submitted} sent; {what} ")
        self.out.flush()

    def done(self) -> None:
        self.out.write("\r" + " " * (self.width + 80) + "\r")
        self.out.flush()
