"""Prometheus metrics for every gongji service.

One process may host several services (``gongji demo`` runs the clearinghouse and
several regions together), so the metric objects live once, at module level, on one
registry (:data:`REGISTRY`), and every series carries a ``service`` label such as
``"clearinghouse"`` or ``"region-420100"``. Code records through a
:class:`ServiceMetrics` bound to its service name::

    metrics = ServiceMetrics("region-420100")
    metrics.transfer_started("copay")
    ...
    metrics.transfer_finished("copay", "COMMITTED", seconds=0.042)

Labels are low-cardinality only: ``service``, ``flow``, ``outcome``, ``direction``,
``reason``, ``kind``, ``step`` and ``region`` (a pooling region's code). Never put a
person number, transfer id or message id in a label; those belong in logs (see
:mod:`telemetry.logs`).
"""

from __future__ import annotations

import threading
from typing import TypeVar
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.metrics import MetricWrapperBase

REGISTRY = CollectorRegistry(auto_describe=True)
"""The registry every gongji metric is registered on and :func:`serve_metrics` serves."""

LATENCY_BUCKETS: tuple[float, ...] = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
"""Transfer duration buckets in seconds, dense around the 250 ms latency goal."""

BATCH_BUCKETS: tuple[float, ...] = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)
"""Operations-per-batch buckets."""

IN = "in"
OUT = "out"
"""Values of the ``direction`` label."""

TRANSFERS = Counter(
    "gongji_transfers_total",
    "Transfers that reached a final outcome (COMMITTED or a reason code).",
    ["service", "flow", "outcome"],
    registry=REGISTRY,
)
TRANSFER_DURATION = Histogram(
    "gongji_transfer_duration_seconds",
    "Time from a transfer's start to its final outcome, in seconds.",
    ["service", "flow"],
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
TRANSFERS_IN_FLIGHT = Gauge(
    "gongji_transfers_in_flight",
    "Transfers started and not yet finished.",
    ["service", "flow"],
    registry=REGISTRY,
)
MESSAGES = Counter(
    "gongji_messages_total",
    "Broker messages (envelopes) received (direction=in) or published (direction=out).",
    ["service", "direction"],
    registry=REGISTRY,
)
OPERATIONS = Counter(
    "gongji_operations_total",
    "Operations carried by the envelopes received (direction=in) or published (out).",
    ["service", "direction"],
    registry=REGISTRY,
)
BATCH_OPERATIONS = Histogram(
    "gongji_batch_operations",
    "Operations per handled batch (one broker message or one store transaction).",
    ["service"],
    buckets=BATCH_BUCKETS,
    registry=REGISTRY,
)
DEAD_LETTERS = Counter(
    "gongji_dead_letters_total",
    "Messages rejected to the dead-letter queue, by reason.",
    ["service", "reason"],
    registry=REGISTRY,
)
REJECTED = Counter(
    "gongji_rejected_messages_total",
    "Messages refused before any state changed (malformed, oversized, unauthenticated, "
    "forbidden, impersonating), by reason; each is also a dead letter.",
    ["service", "reason"],
    registry=REGISTRY,
)
MOVED_FEN = Counter(
    "gongji_moved_fen_total",
    "Money moved by committed transfers, in integer fen.",
    ["service", "flow"],
    registry=REGISTRY,
)

DISAGREEMENTS = Counter(
    "gongji_disagreements_total",
    "Reconciliation disagreements found between a region's books and a settlement report.",
    ["service", "kind"],
    registry=REGISTRY,
)

RETRIES = Counter(
    "gongji_retries_total",
    "Decided steps sent again because the region had not answered in time, by step.",
    ["service", "step", "region"],
    registry=REGISTRY,
)
REPAIRS = Counter(
    "gongji_repairs_total",
    "Disagreements repaired by driving a region to the clearinghouse's recorded decision.",
    ["service"],
    registry=REGISTRY,
)

CLEARING_POSITION = Gauge(
    "gongji_clearing_net_position_fen",
    "A region's net position in the last closed clearing window (received less paid), fen.",
    ["service", "region"],
    registry=REGISTRY,
)


M = TypeVar("M", bound=MetricWrapperBase)

_children: dict[tuple[MetricWrapperBase, tuple[str, ...]], MetricWrapperBase] = {}


def _child(metric: M, *labels: str) -> M:
    """``metric.labels(*labels)``, remembered: ``labels`` validates and looks up under a
    lock on every call, a few per cent of a busy service's CPU. Labels are
    low-cardinality (see above), so this stays small; no series is ever removed."""
    key = (metric, labels)
    child = _children.get(key)
    if child is None:
        child = _children[key] = metric.labels(*labels)
    return child  # type: ignore[return-value]  # stored by this function for this metric


class ServiceMetrics:
    """The metrics of one service, every series labelled ``service=<name>``.

    Cheap to create; several instances for the same name share the same series.
    """

    __slots__ = ("_service",)

    def __init__(self, service: str) -> None:
        if not service:
            raise ValueError("service name must not be empty")
        self._service = service

    @property
    def service(self) -> str:
        """The value of the ``service`` label."""
        return self._service

    def transfer_started(self, flow: str) -> None:
        """A transfer of ``flow`` started: one more in flight."""
        _child(TRANSFERS_IN_FLIGHT, self._service, flow).inc()

    def transfer_finished(self, flow: str, outcome: str, seconds: float) -> None:
        """A transfer reached its final ``outcome`` (``"COMMITTED"`` or a reason code).

        Counts it, records its duration and takes it off the in-flight gauge, so call it
        once per :meth:`transfer_started` (see :meth:`set_in_flight` after a restart).
        """
        _child(TRANSFERS, self._service, flow, str(outcome)).inc()
        _child(TRANSFER_DURATION, self._service, flow).observe(max(0.0, seconds))
        _child(TRANSFERS_IN_FLIGHT, self._service, flow).dec()

    def set_in_flight(self, flow: str, count: int) -> None:
        """Set the in-flight gauge outright, e.g. to the open transfers found on recovery."""
        _child(TRANSFERS_IN_FLIGHT, self._service, flow).set(count)

    def messages_in(self, n_messages: int = 1, n_operations: int = 0) -> None:
        """``n_messages`` envelopes carrying ``n_operations`` operations were received."""
        _child(MESSAGES, self._service, IN).inc(n_messages)
        _child(OPERATIONS, self._service, IN).inc(n_operations)

    def messages_out(self, n_messages: int = 1, n_operations: int = 0) -> None:
        """``n_messages`` envelopes carrying ``n_operations`` operations were published."""
        _child(MESSAGES, self._service, OUT).inc(n_messages)
        _child(OPERATIONS, self._service, OUT).inc(n_operations)

    def batch(self, n_ops: int) -> None:
        """One batch of ``n_ops`` operations was handled."""
        _child(BATCH_OPERATIONS, self._service).observe(n_ops)

    def dead_letter(self, reason: str) -> None:
        """One message was dead-lettered; ``reason`` is a short code, not free text."""
        _child(DEAD_LETTERS, self._service, str(reason)).inc()

    def rejected(self, reason: str) -> None:
        """One message was refused (and dead-lettered); ``reason`` is a short code."""
        _child(REJECTED, self._service, str(reason)).inc()
        self.dead_letter(reason)

    def disagreement(self, kind: str) -> None:
        """A reconciliation disagreement of ``kind`` was found."""
        _child(DISAGREEMENTS, self._service, kind).inc()

    def retried(self, step: str, region: str) -> None:
        """A decided ``step`` was sent to ``region`` again (it had not answered in time)."""
        _child(RETRIES, self._service, step, region).inc()

    def repaired(self) -> None:
        """A disagreement was repaired."""
        _child(REPAIRS, self._service).inc()

    def clearing_position(self, region: str, net_fen: int) -> None:
        """A region's net position in the window just closed."""
        _child(CLEARING_POSITION, self._service, region).set(net_fen)

    def moved(self, flow: str, fen: int) -> None:
        """``fen`` (integer, >= 0) was moved by a committed transfer of ``flow``."""
        if fen < 0:
            raise ValueError(f"moved amount must be >= 0 fen, got {fen}")
        _child(MOVED_FEN, self._service, flow).inc(fen)


_servers: list[tuple[WSGIServer, threading.Thread]] = []
_servers_lock = threading.Lock()


def serve_metrics(port: int, host: str = "127.0.0.1") -> int:
    """Serve :data:`REGISTRY` over HTTP (any path) from a daemon thread.

    ``port=0`` picks a free port. Returns the port actually bound.
    """
    server, thread = start_http_server(port, addr=host, registry=REGISTRY)
    with _servers_lock:
        _servers.append((server, thread))
    return int(server.server_port)


def stop_metrics_servers() -> None:
    """Shut down every server :func:`serve_metrics` started (for tests and clean exits)."""
    with _servers_lock:
        servers = list(_servers)
        _servers.clear()
    for server, thread in servers:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
