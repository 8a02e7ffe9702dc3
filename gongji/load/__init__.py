"""``gongji load``: an open-loop load generator with coordinated-omission-corrected
latency, a progress bar and a report that checks the money it moved."""

from gongji.load.flows import FLOWS, MixError, parse_mix
from gongji.load.generator import LoadConfig, LoadGenerator, LoadResult, ProgressBar
from gongji.load.histogram import LatencyHistogram
from gongji.load.report import LoadReport, Target, format_report, run_load

__all__ = [
    "FLOWS",
    "LatencyHistogram",
    "LoadConfig",
    "LoadGenerator",
    "LoadReport",
    "LoadResult",
    "MixError",
    "ProgressBar",
    "Target",
    "format_report",
    "parse_mix",
    "run_load",
]
