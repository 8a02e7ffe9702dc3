"""``gongji admin seed``: the population it would publish, as compose's seed runs it."""

from __future__ import annotations

from pathlib import Path

import pytest

from gongji.cli import build_parser
from gongji.commands.admin import _population
from tests.cli.conftest import gongji

CODES = "110000,310000"  # Beijing is not enabled in the catalog, Shanghai is


def enabled_by_code(*argv: str) -> dict[str, bool]:
    args = build_parser().parse_args(["admin", "seed", "--codes", CODES, "--persons", "4", *argv])
    return {region.code: region.enabled for region in _population(args).regions}


def test_seed_enables_regions_as_the_catalog_says() -> None:
    assert enabled_by_code() == {"110000": False, "310000": True}


def test_seed_enable_all_enables_every_region() -> None:
    assert enabled_by_code("--enable-all") == {"110000": True, "310000": True}


@pytest.mark.timeout(30)
def test_enable_all_with_a_scenario_is_refused_in_one_line(tmp_path: Path) -> None:
    scenario = Path(__file__).resolve().parents[2] / "gongji" / "scenarios" / "default.toml"

    done = gongji("admin", "seed", "--scenario", str(scenario), "--enable-all", cwd=tmp_path)

    assert done.returncode == 2
    assert done.stderr == (
        "gongji admin seed: --enable-all goes with --codes (a scenario says what is enabled)\n"
    )
