"""Compose files for a scenario: the services, their broker users and the scrape config,
written by one generator, never by hand (``gongji compose --scenario FILE``).

For a scenario it writes ``compose.yaml`` (RabbitMQ, the clearinghouse, one service per
province hosting that province's regions, the seed, the load generator, Prometheus,
Grafana), ``deploy/rabbitmq/definitions.json`` (a broker user per participant, made by
``broker.users``, the generator of the local cluster's users) and
``deploy/prometheus/prometheus.yml`` (a target per gongji service). The shipped files
are its output for ``deploy/scenario.toml``.

DEV ONLY: the passwords are public (``<user>-dev-only``); compose.yaml gives each
service the URL of its own user. Anything beyond a laptop needs its own secrets.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from broker.topology import Topology
from broker.users import BrokerUser, definitions, password_hash
from contracts.participants import HUB, Participant, Role, admin, client, province
from gongji.cluster.local import provinces_of
from gongji.population import RegionSpec
from gongji.scenario import load_scenario

NAMESPACE = "gongji"
VHOST = "gongji"
SHIPPED_SCENARIO = Path(__file__).resolve().parent.parent / "deploy" / "scenario.toml"
"""The small scenario the shipped compose.yaml is made for (in a source checkout)."""
SCENARIO_IN_CONTAINER = "/etc/gongji/scenario.toml"
"""Where the seed and the load generator find the scenario (a read-only bind mount)."""
SEED = admin("seed")
"""The one-shot seeding (and ad hoc admin commands): an operator."""
LOAD = client("load")
"""The load generator: a plain client."""
MANAGEMENT = ("admin", "admin-dev-only")
"""The management UI's user: no participant, and no service connects as it."""
PERSONS = 1000
POPULATION_SEED = 1
METRICS_PORT = 9464

COMPOSE_FILE = "compose.yaml"
DEFINITIONS_FILE = Path("deploy") / "rabbitmq" / "definitions.json"
PROMETHEUS_FILE = Path("deploy") / "prometheus" / "prometheus.yml"


def shipped_regions() -> tuple[RegionSpec, ...]:
    """The regions of the scenario the shipped compose.yaml is written for."""
    return load_scenario(SHIPPED_SCENARIO).regions


@dataclass(frozen=True, slots=True)
class Host:
    """One compose service hosting a province's regions."""

    participant: Participant
    codes: tuple[str, ...]

    @property
    def service(self) -> str:
        return f"province-{self.participant.name}"


def hosts(regions: Sequence[RegionSpec]) -> list[Host]:
    """A host per province, its regions in the scenario's order."""
    codes = [r.code for r in regions]
    return [Host(province(p), tuple(c)) for p, c in provinces_of(codes).items()]


def participants(regions: Sequence[RegionSpec]) -> list[Participant]:
    return [HUB, *(h.participant for h in hosts(regions)), SEED, LOAD]


def dev_password(participant: Participant) -> str:
    """``clearinghouse-dev-only``, ``province-420000-dev-only``, ``seed-dev-only``, ..."""
    if participant.role is Role.CLEARINGHOUSE:
        return "clearinghouse-dev-only"
    if participant.role in (Role.REGION, Role.PROVINCE):
        return f"{participant.role}-{participant.name}-dev-only"
    return f"{participant.name}-dev-only"


def users(regions: Sequence[RegionSpec]) -> list[BrokerUser]:
    return [BrokerUser(p, NAMESPACE, dev_password(p)) for p in participants(regions)]


def url_of(participant: Participant, host: str = "rabbitmq", port: int = 5672) -> str:
    """The AMQP URL compose gives the service of ``participant``."""
    user = BrokerUser(participant, NAMESPACE, dev_password(participant))
    return f"amqp://{user.name}:{user.password}@{host}:{port}/{VHOST}"


def _stable_hash(user: str, password: str) -> str:
    """The password's hash with a salt derived from the user name: the same file every
    time it is generated (the passwords are public anyway)."""
    return password_hash(password, hashlib.sha256(user.encode()).digest()[:4])


def compose_definitions(regions: Sequence[RegionSpec]) -> dict[str, Any]:
    """The whole definitions document of compose's broker."""
    made = users(regions)
    generated = definitions(made, hashed=False, vhost=VHOST)
    for entry in generated["users"]:
        password = entry.pop("password")
        entry["password_hash"] = _stable_hash(entry["name"], password)
        entry["hashing_algorithm"] = "rabbit_password_hashing_sha256"
    topology = Topology(NAMESPACE)
    management_user = {
        "name": MANAGEMENT[0],
        "password_hash": _stable_hash(*MANAGEMENT),
        "hashing_algorithm": "rabbit_password_hashing_sha256",
        "tags": ["administrator"],
        "limits": {},
    }
    return {
        "rabbit_version": "3.13.7",
        "rabbitmq_version": "3.13.7",
        "users": [management_user, *generated["users"]],
        "vhosts": [{"name": VHOST, "description": "gongji services (compose.yaml)", "tags": []}],
        "permissions": [
            {"user": MANAGEMENT[0], "vhost": VHOST, "configure": ".*", "write": ".*", "read": ".*"},
            *generated["permissions"],
        ],
        "topic_permissions": generated["topic_permissions"],
        "parameters": [],
        "global_parameters": [],
        "policies": [],
        # The topology, declared by the broker at boot: the services may not declare it.
        "queues": [
            {
                "name": topology.dead_letter_queue,
                "vhost": VHOST,
                "durable": True,
                "auto_delete": False,
                "arguments": {"x-queue-type": "quorum"},
            }
        ],
        "exchanges": [
            {
                "name": topology.exchange,
                "vhost": VHOST,
                "type": "topic",
                "durable": True,
                "auto_delete": False,
                "internal": False,
                "arguments": {},
            },
            {
                "name": topology.dead_letter_exchange,
                "vhost": VHOST,
                "type": "fanout",
                "durable": True,
                "auto_delete": False,
                "internal": False,
                "arguments": {},
            },
        ],
        "bindings": [
            {
                "source": topology.dead_letter_exchange,
                "vhost": VHOST,
                "destination": topology.dead_letter_queue,
                "destination_type": "queue",
                "routing_key": "",
                "arguments": {},
            }
        ],
    }


# --- compose.yaml ---------------------------------------------------------------------------

_HEADER = """\
# gongji as a cluster of containers: RabbitMQ, the national clearinghouse, one service
# per province hosting its pooling regions, Prometheus and Grafana, all from the one
# image the Dockerfile builds. The load generator runs only under the `load` profile.
#
# Scenario: {scenario} ({summary}).
# Written by `gongji compose --scenario {scenario}`, with
# deploy/rabbitmq/definitions.json and deploy/prometheus/prometheus.yml: regenerate them
# rather than edit them.
#
#   docker compose up -d --build              # broker, services, seed, monitoring
#   docker compose --profile load up load     # open-loop load against the running cluster
#   docker compose down                       # stop (add -v to drop the SQLite volumes)
#
#   Grafana     http://127.0.0.1:3000   (dashboard "gongji flows"; admin / grafana-dev-only)
#   Prometheus  http://127.0.0.1:9090   (alerts: deploy/prometheus/alerts.yml)
#   RabbitMQ    http://127.0.0.1:15672  (management; admin / admin-dev-only)
#
# DEV ONLY: every password in this file, and its hash in deploy/rabbitmq/definitions.json,
# is public. Each service has its own broker user limited to its own queues (a province's
# user to its regions' queues); guest does not exist. Anything beyond a laptop needs its
# own definitions and secrets.
# tests/deploy/ checks this file against the schema and against gongji's code.

name: gongji

x-gongji-image: &gongji-image
  image: gongji:dev
  build: .
  depends_on:
    rabbitmq:
      condition: service_healthy

# A long-running gongji service: metrics on 0.0.0.0:{port} for Prometheus, SQLite in /data.
x-gongji-service: &gongji-service
  <<: *gongji-image
  restart: unless-stopped
  expose:
    - "{port}"
  healthcheck:
    test:
      - CMD
      - python
      - -c
      - import urllib.request; urllib.request.urlopen('http://127.0.0.1:{port}/metrics', timeout=3)
    interval: 10s
    timeout: 5s
    retries: 6
    start_period: 20s

x-gongji-env: &gongji-env
  GONGJI_NAMESPACE: {namespace}
  GONGJI_DATA_DIR: /data
  GONGJI_METRICS_HOST: 0.0.0.0
  GONGJI_METRICS_PORT: "{port}"
  GONGJI_LOG_LEVEL: INFO
  # The clearinghouse sends each province host one envelope for all its regions.
  GONGJI_MAILBOXES: province

services:
  rabbitmq:
    image: rabbitmq:3.13.7-management
    hostname: rabbitmq
    restart: unless-stopped
    volumes:
      - ./deploy/rabbitmq/enabled_plugins:/etc/rabbitmq/enabled_plugins:ro
      - ./deploy/rabbitmq/rabbitmq.conf:/etc/rabbitmq/conf.d/20-gongji.conf:ro
      - ./deploy/rabbitmq/definitions.json:/etc/rabbitmq/definitions.json:ro
      - rabbitmq-data:/var/lib/rabbitmq
    expose:
      - "5672"
      - "15692"
    ports:
      - "127.0.0.1:15672:15672"
    healthcheck:
      test: ["CMD", "rabbitmq-diagnostics", "-q", "check_port_connectivity"]
      interval: 5s
      timeout: 10s
      retries: 24
      start_period: 20s

  clearinghouse:
    <<: *gongji-service
    command: ["clearinghouse"]
    environment:
      <<: *gongji-env
      AMQP_URL: {hub_url}
    volumes:
      - clearinghouse-data:/data
"""

_HOST = """
  # {names}
  {service}:
    <<: *gongji-service
    command: ["province", "--code", "{province}", "--regions", "{codes}"]
    environment:
      <<: *gongji-env
      AMQP_URL: {url}
    volumes:
      - {service}-data:/data
"""

_REST = """
  # One-shot: register the scenario's regions (with their policies, enabled or not as it
  # says) and enroll the population `load` draws on. Idempotent; retried until the
  # services' queues exist. Ad hoc admin commands run the same way and as the same user:
  #   docker compose run --rm seed admin enable <code>
  seed:
    <<: *gongji-image
    restart: on-failure
    command:
      - admin
      - seed
      - --scenario
      - {scenario_in_container}
      - --load-population
      - --persons
      - "{persons}"
      - --population-seed
      - "{population_seed}"
    environment:
      GONGJI_NAMESPACE: {namespace}
      AMQP_URL: {seed_url}
    volumes:
      - {scenario_mount}:{scenario_in_container}:ro
    depends_on: &after-services
      rabbitmq:
        condition: service_healthy
      clearinghouse:
        condition: service_healthy
{host_dependencies}
  # Open-loop load over the seeded population (same scenario, persons and seed):
  #   docker compose --profile load up load
  #   docker compose run --rm load load --scenario {scenario_in_container} --persons {persons} \\
  #       --population-seed {population_seed} --mailboxes --rate 500 --duration 20 --json
  load:
    <<: *gongji-image
    profiles: [load]
    restart: "no"
    command:
      - load
      - --scenario
      - {scenario_in_container}
      - --persons
      - "{persons}"
      - --population-seed
      - "{population_seed}"
      - --mailboxes
      - --rate
      - "200"
      - --duration
      - "600"
      - --no-progress
    environment:
      AMQP_URL: {load_url}
    volumes:
      - {scenario_mount}:{scenario_in_container}:ro
    depends_on:
      <<: *after-services
      seed:
        condition: service_completed_successfully

  prometheus:
    image: prom/prometheus:v2.54.1
    restart: unless-stopped
    command:
      - --config.file=/etc/prometheus/prometheus.yml
      - --storage.tsdb.path=/prometheus
      - --web.listen-address=0.0.0.0:9090
    volumes:
      - ./deploy/prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro
      - ./deploy/prometheus/alerts.yml:/etc/prometheus/alerts.yml:ro
      - prometheus-data:/prometheus
    expose:
      - "9090"
    ports:
      - "127.0.0.1:9090:9090"

  grafana:
    image: grafana/grafana:11.3.0
    restart: unless-stopped
    environment:
      GF_SECURITY_ADMIN_USER: admin
      GF_SECURITY_ADMIN_PASSWORD: grafana-dev-only
      GF_AUTH_ANONYMOUS_ENABLED: "true"
      GF_AUTH_ANONYMOUS_ORG_ROLE: Viewer
      GF_USERS_ALLOW_SIGN_UP: "false"
      GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH: /etc/grafana/dashboards/gongji.json
    volumes:
      - ./deploy/grafana/provisioning:/etc/grafana/provisioning:ro
      - ./deploy/grafana/dashboards:/etc/grafana/dashboards:ro
      - grafana-data:/var/lib/grafana
    ports:
      - "127.0.0.1:3000:3000"
    depends_on:
      prometheus:
        condition: service_started

volumes:
  rabbitmq-data:
  clearinghouse-data:
{host_volumes}  prometheus-data:
  grafana-data:
"""


def compose_yaml(
    regions: Sequence[RegionSpec],
    scenario: str,
    scenario_mount: str,
    persons: int = PERSONS,
    population_seed: int = POPULATION_SEED,
) -> str:
    """The compose file: ``scenario`` as the header names it, ``scenario_mount`` the host
    path the seed and load containers mount it from (relative to the compose file)."""
    by_code = {r.code: r for r in regions}
    placed = hosts(regions)
    enabled = sum(1 for r in regions if r.enabled)
    summary = (
        f"{len(regions)} regions in {len(placed)} provinces, {enabled} enabled"
        if enabled != len(regions)
        else f"{len(regions)} regions in {len(placed)} provinces, all enabled"
    )
    text = _HEADER.format(
        scenario=scenario,
        summary=summary,
        port=METRICS_PORT,
        namespace=NAMESPACE,
        hub_url=url_of(HUB),
    )
    for host in placed:
        names = ", ".join(
            f"{c} {by_code[c].name}{'' if by_code[c].enabled else ' (not enabled)'}"
            for c in host.codes
        )
        text += _HOST.format(
            names=names,
            service=host.service,
            province=host.participant.name,
            codes=",".join(host.codes),
            url=url_of(host.participant),
        )
    dependencies = "".join(
        f"      {h.service}:\n        condition: service_healthy\n" for h in placed
    )
    text += _REST.format(
        scenario_in_container=SCENARIO_IN_CONTAINER,
        scenario_mount=scenario_mount,
        persons=persons,
        population_seed=population_seed,
        namespace=NAMESPACE,
        seed_url=url_of(SEED),
        load_url=url_of(LOAD),
        host_dependencies=dependencies,
        host_volumes="".join(f"  {h.service}-data:\n" for h in placed),
    )
    return text


def prometheus_yaml(regions: Sequence[RegionSpec]) -> str:
    """Prometheus for the compose file: every gongji service and RabbitMQ."""
    targets = "".join(f"          - {h.service}:{METRICS_PORT}\n" for h in hosts(regions))
    return f"""\
# Prometheus for compose.yaml: every gongji service and RabbitMQ, with gongji's alert rules.
# Targets are compose service names; each gongji service serves /metrics on {METRICS_PORT}.
# Written by `gongji compose` (regenerate rather than edit).

global:
  scrape_interval: 5s
  evaluation_interval: 5s

rule_files:
  - alerts.yml

scrape_configs:
  - job_name: prometheus
    static_configs:
      - targets: ["localhost:9090"]

  # Per-queue depths (prometheus.return_per_object_metrics) and dead-lettering counters.
  - job_name: rabbitmq
    static_configs:
      - targets: ["rabbitmq:15692"]

  - job_name: gongji-clearinghouse
    static_configs:
      - targets: ["clearinghouse:{METRICS_PORT}"]

  # The alert rules find regions by this job name: a province host serves the metrics of
  # each of its regions. No target labels: gongji's own series carry `service`
  # (region-<code>) and `region` (clearing positions) already.
  - job_name: gongji-regions
    static_configs:
      - targets:
{targets}"""


def definitions_json(regions: Sequence[RegionSpec]) -> str:
    return json.dumps(compose_definitions(regions), indent=2) + "\n"


def mount_path(scenario: Path, out_dir: Path) -> str:
    """The scenario's path as compose mounts it: relative to the compose file's folder
    when it lies inside it, else absolute."""
    scenario, out_dir = scenario.resolve(), out_dir.resolve()
    if out_dir in scenario.parents:
        return "./" + os.path.relpath(scenario, out_dir)
    return str(scenario)


def write_compose(
    regions: Sequence[RegionSpec],
    scenario: Path,
    out_dir: Path,
    persons: int = PERSONS,
    population_seed: int = POPULATION_SEED,
    scenario_name: str | None = None,
) -> list[Path]:
    """Write compose.yaml, the broker definitions and the scrape config under
    ``out_dir`` (a gongji checkout: compose builds its Dockerfile and mounts its
    deploy/ files); the paths written."""
    mount = mount_path(scenario, out_dir)
    files = {
        out_dir / COMPOSE_FILE: compose_yaml(
            regions, scenario_name or mount, mount, persons, population_seed
        ),
        out_dir / DEFINITIONS_FILE: definitions_json(regions),
        out_dir / PROMETHEUS_FILE: prometheus_yaml(regions),
    }
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return list(files)
