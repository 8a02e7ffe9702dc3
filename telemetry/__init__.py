"""Metrics and structured logs shared by every gongji service."""

from telemetry.logs import STABLE_KEYS, configure_logging, get_logger
from telemetry.metrics import REGISTRY, ServiceMetrics, serve_metrics, stop_metrics_servers

__all__ = [
    "REGISTRY",
    "STABLE_KEYS",
    "ServiceMetrics",
    "configure_logging",
    "get_logger",
    "serve_metrics",
    "stop_metrics_servers",
]
