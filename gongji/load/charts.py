"""``gongji load --report DIR``: the load report as one HTML page with PNG charts beside it.

The page opens from disk with nothing fetched: it carries the run's parameters, the text
report (as ``format_report`` prints it), the nemesis's faults and three charts drawn with
matplotlib's Agg renderer from ``LoadResult.seconds`` (outcomes by reason and by payee
region, and their latency, per second by the time each outcome arrived):

- ``rate_latency.png``: the achieved rate against the target, and p50/p99 latency;
- ``outcomes.png``: outcomes by reason, stacked, per second;
- ``regions.png``: throughput per payee region over time, and each region's mean.

Each fault is a shaded span (from its start to its end) on every time axis. Figures have
fixed sizes and DPI and carry no date, so two identical runs write identical files.
"""

from __future__ import annotations

import html
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from contracts.reasons import COMMITTED
from gongji.load.generator import LoadResult
from gongji.load.nemesis import Fault
from gongji.load.report import LoadReport, format_report

DPI = 100
WIDTH_IN = 10.0
MAX_REGION_LINES = 8
"""More payee regions than this: the smallest are drawn as one line, "other"."""
FAULT_COLOURS = {
    "region-kill": "tab:red",
    "clearinghouse-kill": "tab:purple",
    "crash-loop": "tab:brown",
    "pause": "tab:orange",
    "broker-restart": "tab:gray",
}
PNG_METADATA = {"Software": "gongji load (matplotlib Agg)"}
"""Instead of matplotlib's default, which names its version: the files differ only when
the run does."""


@dataclass(frozen=True, slots=True)
class Chart:
    """One PNG of the report and what it shows."""

    file: str
    title: str
    caption: str


CHARTS = (
    Chart(
        "rate_latency.png",
        "Achieved rate and latency",
        "Outcomes per second (by arrival) against the target rate, and the p50 and p99 "
        "latency of the outcomes of each second, from each request's intended send time.",
    ),
    Chart(
        "outcomes.png",
        "Outcomes by reason",
        "Outcomes per second, stacked by outcome: COMMITTED or the reason code.",
    ),
    Chart(
        "regions.png",
        "Throughput per payee region",
        "Outcomes per second by the region the request was sent to, and each region's mean "
        "over the run.",
    ),
)


def write_html_report(
    report: LoadReport, directory: Path, extra_parameters: Mapping[str, object] | None = None
) -> Path:
    """Write ``index.html`` and its charts into ``directory`` (made if missing); the path of
    the page. Its parameters are ``run_parameters(report)`` and ``extra_parameters`` (what
    the command knows besides, e.g. the nemesis's SPEC)."""
    directory.mkdir(parents=True, exist_ok=True)
    faults = report.faults or []
    result = report.result
    figures = {
        "rate_latency.png": rate_latency_figure(result, faults),
        "outcomes.png": outcomes_figure(result, faults),
        "regions.png": regions_figure(result, faults),
    }
    for name, figure in figures.items():
        FigureCanvasAgg(figure)
        figure.savefig(directory / name, dpi=DPI, format="png", metadata=PNG_METADATA)
    page = directory / "index.html"
    params = run_parameters(report, **(extra_parameters or {}))
    page.write_text(_page(report, params), encoding="utf-8")
    return page


def run_parameters(report: LoadReport, **extra: object) -> dict[str, object]:
    """What the run was asked to do (``extra``: what the command adds, e.g. the nemesis)."""
    config = report.result.config
    params: dict[str, object] = {
        "namespace": report.namespace,
        "regions": ", ".join(report.result.regions),
        "rate (target, /s)": f"{config.rate:g}",
        "duration (s)": f"{config.duration_s:g}",
        "mix": ", ".join(f"{flow}={weight:g}" for flow, weight in config.mix.items()),
        "cross-province share": f"{config.cross_province:g}",
        "skew (zipf exponent)": f"{config.skew:g}",
        "seed": config.seed,
        "drain (s)": f"{config.drain_s:g}",
        "max in flight": "none" if config.max_in_flight is None else config.max_in_flight,
        "linger (ms)": f"{config.linger_ms:g}",
        "max per envelope": config.max_per_envelope,
        "resubmit after (s)": f"{config.resubmit_after_s:g}",
    }
    params.update(extra)
    return params


# --- the figures ----------------------------------------------------------------------------


def _seconds_axis(result: LoadResult, faults: Sequence[Fault]) -> tuple[list[float], float]:
    """The middle of each 1 s bin, and where the time axis ends."""
    xs = [i + 0.5 for i in range(len(result.seconds))]
    end = max([len(result.seconds), result.config.duration_s, *(f.ended_s for f in faults)])
    return xs, math.ceil(end)


def _mark_faults(ax: Axes, faults: Sequence[Fault], *, label: bool) -> None:
    """A shaded span per fault; with ``label``, its kind and target written above it."""
    for fault in faults:
        colour = FAULT_COLOURS.get(fault.kind, "tab:gray")
        end = max(fault.ended_s, fault.at_s + 0.2)  # a fault over at once is still seen
        ax.axvspan(fault.at_s, end, color=colour, alpha=0.15, linewidth=0)
        ax.axvline(fault.at_s, color=colour, linewidth=1.0, linestyle="--")
        if label:
            ax.annotate(
                f"{fault.kind}\n{fault.target}",
                xy=(fault.at_s, 1.0),
                xycoords=("data", "axes fraction"),
                xytext=(2, -2),
                textcoords="offset points",
                fontsize=7,
                va="top",
                color=colour,
            )


def _fault_legend(faults: Sequence[Fault]) -> list[Patch]:
    kinds = sorted({f.kind for f in faults})
    return [
        Patch(color=FAULT_COLOURS.get(k, "tab:gray"), alpha=0.3, label=f"fault: {k}") for k in kinds
    ]


def _empty(ax: Axes) -> None:
    ax.text(0.5, 0.5, "no outcomes", ha="center", va="center", transform=ax.transAxes)


def rate_latency_figure(result: LoadResult, faults: Sequence[Fault]) -> Figure:
    """Achieved outcomes/s against the target, above p50/p99 latency per second."""
    figure = Figure(figsize=(WIDTH_IN, 6.5), dpi=DPI, layout="constrained")
    rate_ax, latency_ax = figure.subplots(2, 1, sharex=True)
    xs, end = _seconds_axis(result, faults)
    rates = [sum(second.outcomes.values()) for second in result.seconds]
    rate_ax.plot(xs, rates, color="tab:blue", marker=".", label="achieved (outcomes/s)")
    rate_ax.hlines(
        result.config.rate,
        0,
        result.config.duration_s,
        colors="black",
        linestyles="dotted",
        label=f"target ({result.config.rate:g}/s while sending)",
    )
    rate_ax.set_ylabel("outcomes / s")
    rate_ax.set_ylim(bottom=0)
    _mark_faults(rate_ax, faults, label=True)
    handles = [*rate_ax.get_legend_handles_labels()[0], *_fault_legend(faults)]
    rate_ax.legend(handles=handles, loc="lower right", fontsize=8)
    rate_ax.set_title("Achieved rate and latency (per 1 s bin, by outcome arrival)")
    rate_ax.grid(True, alpha=0.3)
    if not result.seconds:
        _empty(rate_ax)

    def ms(percent: float) -> list[float]:
        return [
            s.latency.percentile_us(percent) / 1000 if s.latency.count else math.nan
            for s in result.seconds
        ]

    latency_ax.plot(xs, ms(50), color="tab:green", marker=".", label="p50")
    latency_ax.plot(xs, ms(99), color="tab:red", marker=".", label="p99")
    latency_ax.set_ylabel("latency (ms, log)")
    if any(s.latency.count for s in result.seconds):
        latency_ax.set_yscale("log")
    latency_ax.set_xlabel("seconds since the load started")
    latency_ax.set_xlim(0, end)
    _mark_faults(latency_ax, faults, label=False)
    latency_ax.legend(loc="upper right", fontsize=8)
    latency_ax.grid(True, which="both", alpha=0.3)
    return figure


def _outcome_colours(names: Sequence[str]) -> dict[str, str]:
    """COMMITTED green; the reasons in a fixed palette, by name."""
    palette = "tab:red tab:orange tab:purple tab:brown tab:pink tab:gray tab:olive tab:cyan "
    palette += "tab:blue gold navy maroon teal black"
    palette_colours = palette.split()
    reasons = [n for n in names if n != COMMITTED]
    colours = {n: palette_colours[i % len(palette_colours)] for i, n in enumerate(reasons)}
    colours[COMMITTED] = "tab:green"
    return colours


def _repeat_last(values: list[int]) -> list[int]:
    return values + values[-1:]


def outcomes_figure(result: LoadResult, faults: Sequence[Fault]) -> Figure:
    """Outcomes per second, stacked by reason (COMMITTED at the bottom)."""
    figure = Figure(figsize=(WIDTH_IN, 4.5), dpi=DPI, layout="constrained")
    ax = figure.subplots()
    _, end = _seconds_axis(result, faults)
    totals: Counter[str] = Counter()
    for second in result.seconds:
        totals.update(second.outcomes)
    names = sorted(totals, key=lambda n: (n != COMMITTED, -totals[n], n))
    colours = _outcome_colours(names)
    if names:
        # Bin edges, the last count repeated: each second's band spans the whole second.
        edges = list(range(len(result.seconds) + 1))
        ax.stackplot(
            edges,
            [_repeat_last([second.outcomes.get(n, 0) for second in result.seconds]) for n in names],
            labels=[f"{n} ({totals[n]})" for n in names],
            colors=[colours[n] for n in names],
            step="post",
            alpha=0.85,
        )
    else:
        _empty(ax)
    _mark_faults(ax, faults, label=True)
    ax.set_xlim(0, end)
    ax.set_ylim(bottom=0)
    ax.set_xlabel("seconds since the load started")
    ax.set_ylabel("outcomes / s")
    ax.set_title("Outcomes by reason (per 1 s bin)")
    ax.grid(True, alpha=0.3)
    handles = [*ax.get_legend_handles_labels()[0], *_fault_legend(faults)]
    if handles:
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8)
    return figure


def regions_figure(result: LoadResult, faults: Sequence[Fault]) -> Figure:
    """Outcomes per second by payee region over time, and each region's mean."""
    figure = Figure(figsize=(WIDTH_IN, 4.5), dpi=DPI, layout="constrained")
    over_time, means = figure.subplots(1, 2, width_ratios=[3, 1])
    xs, end = _seconds_axis(result, faults)
    totals: Counter[str] = Counter({code: 0 for code in result.regions})
    for second in result.seconds:
        totals.update(second.by_region)
    ranked = sorted(totals, key=lambda code: (-totals[code], code))
    drawn = ranked if len(ranked) <= MAX_REGION_LINES else ranked[: MAX_REGION_LINES - 1]
    rest = [code for code in ranked if code not in drawn]
    for code in drawn:
        over_time.plot(xs, [s.by_region.get(code, 0) for s in result.seconds], label=code)
    if rest:
        over_time.plot(
            xs,
            [sum(s.by_region.get(code, 0) for code in rest) for s in result.seconds],
            label=f"other {len(rest)} regions",
            color="black",
            linestyle="--",
        )
    if not result.seconds:
        _empty(over_time)
    _mark_faults(over_time, faults, label=True)
    over_time.set_xlim(0, end)
    over_time.set_ylim(bottom=0)
    over_time.set_xlabel("seconds since the load started")
    over_time.set_ylabel("outcomes / s")
    over_time.set_title("Throughput per payee region (per 1 s bin)")
    over_time.grid(True, alpha=0.3)
    if drawn:
        over_time.legend(loc="lower right", fontsize=8, ncols=2)

    span = max(1, len(result.seconds))
    codes = sorted(totals)
    means.barh(codes, [totals[code] / span for code in codes], color="tab:blue")
    means.invert_yaxis()
    means.set_xlabel("mean outcomes / s")
    means.set_title("Mean per region")
    means.tick_params(axis="y", labelsize=7 if len(codes) > 12 else 9)
    means.grid(True, axis="x", alpha=0.3)
    return figure


# --- the page ---------------------------------------------------------------------------------

_STYLE = """
body { font-family: sans-serif; margin: 2em auto; max-width: 70em; color: #222; }
table { border-collapse: collapse; }
td, th { border: 1px solid #ccc; padding: 0.2em 0.6em; text-align: left; }
pre { background: #f6f6f6; padding: 1em; overflow-x: auto; }
figure { margin: 1.5em 0; }
img { max-width: 100%; border: 1px solid #ddd; }
.failed { color: #b00; font-weight: bold; }
"""


def _rows(pairs: Sequence[tuple[object, ...]]) -> str:
    return "\n".join(
        "<tr>" + "".join(f"<td>{html.escape(str(cell))}</td>" for cell in row) + "</tr>"
        for row in pairs
    )


def _page(report: LoadReport, parameters: Mapping[str, object]) -> str:
    title = f"gongji load report: {report.namespace}"
    verdict = (
        '<p class="failed">The run FAILED (a lost, stuck or duplicated request, a failed '
        "audit, or money not conserved): see the report below.</p>"
        if report.failed
        else "<p>The run passed its checks (see the report below).</p>"
    )
    parts = [
        "<!doctype html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        f"<title>{html.escape(title)}</title>",
        f"<style>{_STYLE}</style>",
        "</head>",
        "<body>",
        f"<h1>{html.escape(title)}</h1>",
        verdict,
        "<h2>Parameters</h2>",
        "<table>",
        _rows(list(parameters.items())),
        "</table>",
        "<h2>Charts</h2>",
    ]
    for chart in CHARTS:
        parts += [
            "<figure>",
            f'<img src="{chart.file}" alt="{html.escape(chart.title)}" '
            f'width="{int(WIDTH_IN * DPI)}">',
            f"<figcaption><b>{html.escape(chart.title)}.</b> {html.escape(chart.caption)}"
            "</figcaption>",
            "</figure>",
        ]
    if report.faults is not None:
        parts += ["<h2>Faults (the nemesis)</h2>"]
        if report.faults:
            parts += [
                "<table>",
                "<tr><th>at (s)</th><th>ended (s)</th><th>kind</th><th>target</th>"
                "<th>rate back after (s)</th></tr>",
                _rows(
                    [
                        (
                            f"{f.at_s:.2f}",
                            f"{f.ended_s:.2f}",
                            f.kind,
                            f.target,
                            "not back" if f.recovery_s is None else f"{f.recovery_s:.2f}",
                        )
                        for f in report.faults
                    ]
                ),
                "</table>",
            ]
        else:
            parts.append("<p>No fault was injected.</p>")
    parts += [
        "<h2>Report</h2>",
        f"<pre>{html.escape(format_report(report))}</pre>",
        "</body>",
        "</html>",
        "",
    ]
    return "\n".join(parts)
