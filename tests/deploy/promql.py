"""What a PromQL expression refers to: metric names and label names.

Not a parser: promtool checks the syntax (see test_grafana.py and test_prometheus.py).
This lexes well-formed expressions far enough to find the names they use, so the tests
can hold them against the metrics gongji and RabbitMQ really export.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.metrics import MetricWrapperBase

import telemetry.metrics

# Exported by RabbitMQ's rabbitmq_prometheus plugin (3.10-3.13): the core metrics
# collector (per-object series carry `vhost` and `queue`) and the global counters.
# The names the dashboard and alerts use are also checked against a live broker in
# test_rabbitmq_live.py.
RABBITMQ_METRICS: frozenset[str] = frozenset(
    {
        "rabbitmq_queue_messages_ready",
        "rabbitmq_queue_messages_unacked",
        "rabbitmq_queue_messages",
        "rabbitmq_queue_process_reductions_total",
        "rabbitmq_queue_consumers",
        "rabbitmq_queue_consumer_utilisation",
        "rabbitmq_queue_messages_bytes",
        "rabbitmq_queue_messages_published_total",
        "rabbitmq_connections",
        "rabbitmq_channels",
        "rabbitmq_consumers",
        "rabbitmq_queues",
        "rabbitmq_connections_opened_total",
        "rabbitmq_connections_closed_total",
        "rabbitmq_global_messages_dead_lettered_confirmed_total",
        "rabbitmq_global_messages_dead_lettered_delivery_limit_total",
        "rabbitmq_global_messages_dead_lettered_expired_total",
        "rabbitmq_global_messages_dead_lettered_maxlen_total",
        "rabbitmq_global_messages_dead_lettered_rejected_total",
    }
)
RABBITMQ_LABELS: frozenset[str] = frozenset(
    {"vhost", "queue", "exchange", "channel", "protocol", "queue_type", "dead_letter_strategy"}
)
SCRAPE_LABELS: frozenset[str] = frozenset({"job", "instance"})
"""Labels Prometheus adds to every scraped series (and to ``up``)."""

_KEYWORDS = frozenset(
    {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring"}
    | {"group_left", "group_right", "inf", "nan", "atan2"}
)
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_SELECTOR = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{([^}]*)\}")
_MATCHER = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)")
_GROUPING = re.compile(
    r"\b(by|without|on|ignoring|group_left|group_right)\s*\(([^()]*)\)", re.IGNORECASE
)
_IDENT = re.compile(r"(?<![\w.$])([a-zA-Z_:][a-zA-Z0-9_:]*)(?!\s*\()(?![\w:])")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


@dataclass(frozen=True)
class KnownMetric:
    """One exported series name (e.g. ``gongji_transfer_duration_seconds_bucket``)."""

    name: str
    labels: frozenset[str]


def gongji_metrics() -> dict[str, KnownMetric]:
    """Every series name telemetry.metrics exports, with its labels."""
    found: dict[str, KnownMetric] = {}
    for value in vars(telemetry.metrics).values():
        if not isinstance(value, MetricWrapperBase):
            continue
        base = value._name
        labels = frozenset(value._labelnames)
        if isinstance(value, Counter):
            names = {f"{base}_total": labels, f"{base}_created": labels}
        elif isinstance(value, Histogram):
            names = {
                f"{base}_bucket": labels | {"le"},
                f"{base}_sum": labels,
                f"{base}_count": labels,
                f"{base}_created": labels,
            }
        elif isinstance(value, Gauge):
            names = {base: labels}
        else:
            raise AssertionError(f"telemetry.metrics.{base}: a metric type the tests don't know")
        found.update({n: KnownMetric(n, ls) for n, ls in names.items()})
    return found


def histogram_buckets() -> dict[str, frozenset[float]]:
    """Upper bounds of each gongji histogram's buckets, by ``<name>_bucket``."""
    found: dict[str, frozenset[float]] = {}
    for value in vars(telemetry.metrics).values():
        if isinstance(value, Histogram):
            found[f"{value._name}_bucket"] = frozenset(value._upper_bounds)
    return found


@dataclass
class References:
    metrics: set[str] = field(default_factory=set)
    selector_labels: dict[str, set[str]] = field(default_factory=dict)
    """Label names matched in each metric's ``{...}`` selector."""
    selector_values: dict[str, dict[str, set[str]]] = field(default_factory=dict)
    """Values matched with ``=``, by metric and label (e.g. ``le="0.25"``)."""
    grouping_labels: list[set[str]] = field(default_factory=list)
    """Label lists of ``by``/``on``/... clauses, in the order they appear."""
    created_labels: set[str] = field(default_factory=set)
    """Labels ``label_replace`` may create (every label-like string literal in its call)."""


def references(expr: str) -> References:
    refs = References()
    if "label_replace" in expr:
        for literal in _STRING.findall(expr):
            if _LABEL_NAME.fullmatch(literal[1:-1]):
                refs.created_labels.add(literal[1:-1])
    for name, body in _SELECTOR.findall(expr):
        refs.selector_labels.setdefault(name, set()).update(_MATCHER.findall(body))
        for label, value in re.findall(r'([a-zA-Z_]\w*)\s*=\s*"([^"]*)"', body):
            refs.selector_values.setdefault(name, {}).setdefault(label, set()).add(value)
    text = _STRING.sub('""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    for match in _GROUPING.finditer(text):
        refs.grouping_labels.append({s.strip() for s in match.group(2).split(",") if s.strip()})
    text = _GROUPING.sub(" ", text)
    for name in _IDENT.findall(text):
        if name.lower() not in _KEYWORDS:
            refs.metrics.add(name)
    return refs


def problems(
    expr: str,
    *,
    extra_labels: frozenset[str] = frozenset(),
    legend: str | None = None,
) -> list[str]:
    """Why ``expr`` refers to something neither gongji nor RabbitMQ exports (empty: fine).

    ``extra_labels`` are labels the scrape config adds to targets; ``legend`` is a
    Grafana legend format whose ``{{label}}`` references must be labels of the result.
    """
    known = gongji_metrics()
    refs = references(expr)
    found: list[str] = []
    all_labels: set[str] = set(SCRAPE_LABELS | extra_labels | refs.created_labels)
    for name in sorted(refs.metrics):
        if name in known:
            labels: frozenset[str] = known[name].labels
        elif name in RABBITMQ_METRICS:
            labels = RABBITMQ_LABELS
        elif name == "up":
            labels = frozenset()
        else:
            found.append(f"{name}: not a metric of telemetry.metrics nor of RabbitMQ")
            continue
        labels = labels | SCRAPE_LABELS | extra_labels
        all_labels |= labels
        unknown = refs.selector_labels.get(name, set()) - labels
        if unknown:
            found.append(f"{name}{{{', '.join(sorted(unknown))}}}: {name} has no such label")
    buckets = histogram_buckets()
    for name, by_label in refs.selector_values.items():
        for value in by_label.get("le", set()):
            if name in buckets and float(value) not in buckets[name]:
                bounds = sorted(buckets[name])
                found.append(f'{name}{{le="{value}"}}: no such bucket (buckets: {bounds})')
    for grouping in refs.grouping_labels:
        unknown = grouping - all_labels
        if unknown:
            found.append(f"by/on ({', '.join(sorted(unknown))}): no metric here has these labels")
    if legend is not None:
        used = set(re.findall(r"\{\{\s*([a-zA-Z_]\w*)\s*\}\}", legend))
        result = refs.grouping_labels[0] - {"le"} if refs.grouping_labels else all_labels
        if used - result:
            found.append(
                f"legend {legend!r} uses {sorted(used - result)}, not labels of the result"
            )
    return found
