"""Argument types and option groups shared by the subcommands, with clear errors."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path

from yarl import URL

from broker.topology import (
    MAILBOXES,
    MAILBOXES_ENV,
    NAMESPACE_RULE,
    check_namespace,
    province_mailboxes,
)
from contracts.identifiers import is_region_code
from contracts.participants import Participant, participant_of
from gongji.cluster.local import ClusterState, read_state

DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"
DEFAULT_NAMESPACE = "gongji"
DEFAULT_CLUSTER_DIR = Path("data") / "cluster"
DEFAULT_METRICS_PORT = 9464
NAMESPACE_HELP = f"prefix of every exchange and queue name: {NAMESPACE_RULE}"


class UsageError(Exception):
    """A command line that parses but cannot be carried out: ``gongji: <message>``, exit 2."""


def mailboxes(value: str) -> str:
    """``region`` or ``province`` (``broker.topology.MAILBOXES_ENV``)."""
    try:
        province_mailboxes({MAILBOXES_ENV: value})
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not one of {', '.join(MAILBOXES)}"
        ) from None
    return value or "region"


def namespace_of(value: str) -> str:
    """``value`` as a namespace, or UsageError saying what a namespace may be."""
    try:
        return check_namespace(value)
    except ValueError as error:
        raise UsageError(f"--namespace: {error}") from None


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


def non_negative_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
    if number < 0:
        raise argparse.ArgumentTypeError(f"{value!r} must be 0 or more")
    return number


def port_number(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a port number") from None
    if not 0 <= number <= 65535:
        raise argparse.ArgumentTypeError(f"{value!r} is not a port number (0..65535)")
    return number


def add_broker_options(
    parser: argparse.ArgumentParser, *, default_url: bool = True, namespace: bool = True
) -> None:
    parser.add_argument(
        "--amqp-url",
        default=os.environ.get("AMQP_URL", DEFAULT_AMQP_URL if default_url else None),
        help="RabbitMQ URL (default: $AMQP_URL"
        + (f" or {DEFAULT_AMQP_URL})" if default_url else ")"),
    )
    if not namespace:
        return
    parser.add_argument(
        "--namespace",
        default=os.environ.get("GONGJI_NAMESPACE") or DEFAULT_NAMESPACE,
        help=f"{NAMESPACE_HELP} (default: $GONGJI_NAMESPACE or {DEFAULT_NAMESPACE})",
    )


def add_cluster_options(parser: argparse.ArgumentParser) -> None:
    """``--amqp-url``, ``--namespace`` and ``--data-dir`` of a command that talks to a
    running cluster; what is not given is found by :func:`cluster_target`."""
    # The environment is read here, so that what a command runs with shows in its args.
    parser.add_argument(
        "--amqp-url",
        default=os.environ.get("AMQP_URL") or None,
        help="RabbitMQ URL (default: $AMQP_URL, else the local cluster's, else "
        f"{DEFAULT_AMQP_URL})",
    )
    parser.add_argument(
        "--namespace",
        default=os.environ.get("GONGJI_NAMESPACE") or None,
        help=f"{NAMESPACE_HELP} (default: $GONGJI_NAMESPACE, else the local cluster's, "
        f"else {DEFAULT_NAMESPACE})",
    )
    parser.add_argument(
        "--data-dir",
        dest="cluster_dir",
        metavar="DIR",
        type=Path,
        default=Path(os.environ.get("GONGJI_CLUSTER_DIR", DEFAULT_CLUSTER_DIR)),
        help="the local cluster's directory, whose state file `gongji cluster up` wrote "
        "(default: $GONGJI_CLUSTER_DIR or %(default)s)",
    )


def add_local_cluster_options(
    parser: argparse.ArgumentParser, *, namespace_check: bool = True
) -> None:
    """``--data-dir`` of a command that works on a local cluster's files, and (with
    ``namespace_check``) a ``--namespace`` that must be the cluster's
    (see :func:`local_cluster_state`)."""
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=Path(os.environ.get("GONGJI_CLUSTER_DIR", DEFAULT_CLUSTER_DIR)),
        help="SQLite files, logs, state file and scrape config "
        "(default: $GONGJI_CLUSTER_DIR or %(default)s)",
    )
    if namespace_check:
        parser.add_argument(
            "--namespace",
            default=os.environ.get("GONGJI_NAMESPACE") or None,
            help=f"{NAMESPACE_HELP}; refuse to act unless it is the cluster's "
            "(default: $GONGJI_NAMESPACE, else whatever the cluster's is)",
        )


def local_cluster_state(args: argparse.Namespace) -> ClusterState | None:
    """The state of the cluster in --data-dir (None when none is up there), refused with
    UsageError when --namespace names another one."""
    state = read_state(args.data_dir.resolve())
    wanted = None if args.namespace is None else namespace_of(args.namespace)
    if state is not None and wanted is not None and wanted != state.namespace:
        raise UsageError(
            f"the local cluster in {state.data_dir} runs namespace {state.namespace!r}, "
            f"not {wanted!r}"
        )
    return state


@dataclass(frozen=True, slots=True)
class ClusterTarget:
    """Where a command finds the cluster it talks to."""

    amqp_url: str
    namespace: str
    cluster_dir: Path
    state: ClusterState | None
    """The local cluster's state, when ``gongji cluster up`` started one in ``cluster_dir``."""

    def url_for(self, participant: Participant) -> str:
        """The URL ``participant`` connects with: the given URL when its user is a
        participant of the namespace (compose, or a user's own credentials), else the
        local cluster's broker user for it, else the given URL as it is."""
        if participant_of(URL(self.amqp_url).user, self.namespace) is not None:
            return self.amqp_url
        state = self.state
        if state is not None and state.users and state.namespace == self.namespace:
            return state.url_for(participant)
        return self.amqp_url


def cluster_target(args: argparse.Namespace) -> ClusterTarget:
    """The broker URL and namespace: the command line's (or the environment's), else the
    local cluster's (its state file), else the defaults. So after ``gongji cluster up
    --namespace nc1``, ``gongji admin ...`` talks to nc1.

    Raises UsageError for an invalid namespace, ClusterError for an unreadable state file.
    """
    cluster_dir = args.cluster_dir.resolve()
    state = read_state(cluster_dir)
    namespace = _first(
        args.namespace,
        state.namespace if state else None,
        DEFAULT_NAMESPACE,
    )
    amqp_url = _first(
        args.amqp_url,
        state.amqp_url if state and state.amqp_url else None,
        DEFAULT_AMQP_URL,
    )
    return ClusterTarget(amqp_url, namespace_of(namespace), cluster_dir, state)


def _first(*values: str | None) -> str:
    """The first value given; an empty --namespace counts (it is given, then refused)."""
    return next(value for value in values if value is not None)


def add_service_options(
    parser: argparse.ArgumentParser, *, metrics_port: int = DEFAULT_METRICS_PORT
) -> None:
    """The options of a long-lived service. ``metrics_port`` 0: any free port (printed)."""
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
        default=int(os.environ.get("GONGJI_METRICS_PORT", metrics_port)),
        help="Prometheus metrics port, 0 for any free port; the port served is printed at "
        "start (default: $GONGJI_METRICS_PORT or %(default)s)",
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
    parser.add_argument(
        "--mailboxes",
        type=mailboxes,
        default=os.environ.get(MAILBOXES_ENV, "region"),
        help="province: the clearinghouse sends each province host one envelope for all its "
        "regions (its mailbox), and hosts consume their mailbox; region: to each region's "
        "queue. The same for every service of a cluster (default: $GONGJI_MAILBOXES or "
        "%(default)s)",
    )
