"""``gongji load --report DIR``'s page and charts, from a load result made up here."""

from __future__ import annotations

import random
import re
from collections import Counter
from pathlib import Path

from contracts.reasons import COMMITTED
from gongji.load.charts import CHARTS, write_html_report
from gongji.load.generator import LoadConfig, LoadResult, SecondBin
from gongji.load.histogram import LatencyHistogram
from gongji.load.nemesis import Fault
from gongji.load.report import LoadReport, format_report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
REGIONS = ["310000", "420100", "510100", "110000"]


def synthetic_result(seconds: int = 12, rate: int = 40) -> LoadResult:
    """What a 10 s run at ``rate``/s could have seen, with a dip and slow answers from 4 s
    to 6 s (as a region kill makes), filled in the way the generator fills it."""
    rng = random.Random(5)
    result = LoadResult(LoadConfig(rate=rate, duration_s=10), list(REGIONS))
    result.latency["copay"] = LatencyHistogram()
    result.outcomes["copay"] = Counter()
    for second in range(seconds):
        bin_ = SecondBin()
        result.seconds.append(bin_)
        hurt = 4 <= second < 6
        count = 0 if second >= 11 else rate // 4 if hurt else rate
        for _ in range(count):
            region = rng.choice(REGIONS)
            outcome = "REGION_NOT_ENABLED" if region == "110000" else COMMITTED
            latency_s = rng.uniform(2.0, 6.0) if hurt else rng.uniform(0.005, 0.05)
            bin_.outcomes[outcome] += 1
            bin_.by_region[region] += 1
            bin_.latency.record_seconds(latency_s)
            result.latency["copay"].record_seconds(latency_s)
            result.outcomes["copay"][outcome] += 1
        result.timeline += [count // 10] * 10
    result.sent = result.completed
    result.send_seconds = 10.0
    result.last_outcome = result.started + 11.0
    return result


def report_with_faults() -> LoadReport:
    faults = [
        Fault("region-kill", "region-420100", at_s=4.1, ended_s=6.3, recovery_s=2.4),
        Fault("pause", "region-310000", at_s=7.5, ended_s=8.2, recovery_s=None),
    ]
    return LoadReport("charts-test", synthetic_result(), books=None, faults=faults)


def test_the_page_shows_every_chart_the_parameters_the_text_report_and_the_faults(
    tmp_path: Path,
) -> None:
    report = report_with_faults()
    page = write_html_report(report, tmp_path / "report", {"nemesis": "region-kill=1,seed=3"})
    assert page == tmp_path / "report" / "index.html"
    text = page.read_text(encoding="utf-8")
    images = re.findall(r'<img src="([^"]+)"', text)
    assert images == [chart.file for chart in CHARTS]
    for name in images:
        png = (page.parent / name).read_bytes()
        assert png.startswith(PNG_MAGIC), name
        assert len(png) > 20_000, (name, len(png))  # drawn, not an empty canvas
    # Self-contained: nothing outside the directory is referenced.
    assert "http://" not in text and "https://" not in text and "<script" not in text
    assert "region-kill" in text and "region-420100" in text and "4.10" in text
    assert "pause" in text and "not back" in text
    assert "nemesis" in text and "region-kill=1,seed=3" in text  # the command's parameters
    assert "rate (target, /s)" in text and "charts-test" in text
    first_line = format_report(report).splitlines()[0]
    assert first_line in text
    assert "REGION_NOT_ENABLED" in text


def test_two_identical_runs_write_identical_files(tmp_path: Path) -> None:
    first = write_html_report(report_with_faults(), tmp_path / "a").parent
    second = write_html_report(report_with_faults(), tmp_path / "b").parent
    names = sorted(p.name for p in first.iterdir())
    assert (
        names
        == sorted(p.name for p in second.iterdir())
        == [
            "index.html",
            "outcomes.png",
            "rate_latency.png",
            "regions.png",
        ]
    )
    for name in names:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name


def test_a_run_without_nemesis_or_outcomes_still_writes_a_page(tmp_path: Path) -> None:
    result = LoadResult(LoadConfig(rate=10, duration_s=2), list(REGIONS))
    page = write_html_report(LoadReport("empty", result, books=None), tmp_path)
    text = page.read_text(encoding="utf-8")
    assert "Faults" not in text  # no nemesis: no faults section
    for chart in CHARTS:
        assert (tmp_path / chart.file).read_bytes().startswith(PNG_MAGIC)
