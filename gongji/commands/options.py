"""Argument types and option groups shared by the subcommands, with clear errors."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from contracts.identifiers import is_region_code

DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"
DEFAULT_METRICS_PORT = 9464


def region_code(value: str) -> str:
    if not is_region_code(value):
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a 6-digit region code (e.g. 420100 for Wuhan)"
        )
    return value


def positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
    if number <= 0:
        raise argparse.ArgumentTypeError(f"{value!r} must be positive")
    return number


def port_number(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a port number") from None
    if not 0 <= number <= 65535:
        raise argparse.ArgumentTypeError(f"{value!r} is not a port number (0..65535)")
    return number


def add_broker_options(parser: argparse.ArgumentParser, *, default_url: bool = True) -> None:
    parser.add_argument(
        "--amqp-url",
        default=os.environ.get("AMQP_URL", DEFAULT_AMQP_URL if default_url else None),
        help="RabbitMQ URL (default: $AMQP_URL"
        + (f" or {DEFAULT_AMQP_URL})" if default_url else ")"),
    )
    parser.add_argument(
        "--namespace",
        default=os.environ.get("GONGJI_NAMESPACE", "gongji"),
        help="prefix of exchange and queue names (default: %(default)s)",
    )


def add_service_options(parser: argparse.ArgumentParser) -> None:
    add_broker_options(parser)
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=Path(os.environ.get("GONGJI_DATA_DIR", "data")),
        help="where the service keeps its SQLite file (default: %(default)s)",
    )
    parser.add_argument(
        "--metrics-port",
        type=port_number,
        default=int(os.environ.get("GONGJI_METRICS_PORT", DEFAULT_METRICS_PORT)),
        help="Prometheus metrics port, 0 for any free port (default: %(default)s)",
    )
    parser.add_argument(
        "--metrics-host",
        default=os.environ.get("GONGJI_METRICS_HOST", "127.0.0.1"),
        help="address the metrics server binds (default: %(default)s; 0.0.0.0 in containers)",
    )
    parser.add_argument(
        "--log-level",
        default=os.environ.get("GONGJI_LOG_LEVEL", "INFO"),
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
    )
