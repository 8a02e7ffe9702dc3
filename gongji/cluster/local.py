"""A local cluster without Docker: the clearinghouse and the regions as OS processes.

``cluster_up`` starts ``gongji clearinghouse`` and the regions' hosts: by default one
``gongji province --code P --regions ...`` per province, hosting all of the province's
regions on one connection (``regions.host``), or one ``gongji region --code X`` per
region (``hosting="region"``). Each process serves Prometheus metrics on its own
loopback port. It seeds the population
once every service consumes, writes a Prometheus scrape config and a state file with the
PIDs. ``cluster_down`` stops exactly the processes named in that state file: a PID whose
process start time no longer matches was reused by someone else and is left alone.
Linux only (``/proc``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiormq
from aio_pika.abc import AbstractRobustConnection

from broker.connection import connect
from broker.publisher import Publisher
from broker.topology import (
    MAILBOXES_ENV,
    Topology,
    declare_service_queue,
    declare_topology,
    province_mailboxes,
)
from broker.users import BrokerAdminError, Credentials, delete_users, provision, users_for
from clearinghouse.service import clearinghouse_database
from contracts.identifiers import CLEARINGHOUSE, mailbox_of, province_of, region_address
from contracts.participants import (
    HUB,
    Participant,
    Role,
    admin,
    client,
    participant_of,
    province,
    region,
)
from contracts.policy import Policy
from contracts.vocabulary import PaymentOrder, Scope
from gongji.cluster.seed import SeededPopulation, seed_population
from gongji.population import RegionSpec
from regions.service import region_database
from storage.sqlite import SYNCHRONOUS_ENV

STATE_FILE = "cluster.json"
SCRAPE_FILE = "prometheus.yml"
LOG_DIR = "logs"
DEFAULT_BASE_PORT = 9500
DEFAULT_PERSONS = 1000
HOSTINGS = ("province", "region")
"""How regions are put in processes: a process per province (default) or per region."""
RABBITMQ_METRICS = "127.0.0.1:15692"
"""Where RabbitMQ's Prometheus plugin listens when enabled; scraped if it answers."""

Say = Callable[[str], None]


class ClusterError(RuntimeError):
    """A local cluster cannot be started or stopped; the message says why and what to do."""


class AlreadyUp(ClusterError):
    pass


class NotUp(ClusterError):
    pass


class PortInUse(ClusterError):
    pass


class ServiceFailed(ClusterError):
    pass


@dataclass(slots=True)
class ServiceRecord:
    """One started service process."""

    name: str
    """``clearinghouse``, ``province-<code>`` (a host of a province's regions) or
    ``region-<code>`` (a process of one region)."""
    address: str
    """The queue it consumes (a host: its first region's)."""
    pid: int
    start_ticks: int
    """The process start time (``/proc/<pid>/stat`` field 22): tells a reused PID apart."""
    metrics_port: int
    log: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    """The environment it was started with beyond the caller's (tunables), without its
    broker URL (rebuilt from the state's users at a restart)."""
    codes: list[str] = field(default_factory=list)
    """The regions it hosts (none for the clearinghouse); each keeps the ``service``
    label ``region-<code>`` on its metrics."""


@dataclass(slots=True)
class ClusterState:
    """What ``cluster.json`` holds: enough to stop the cluster and to load it."""

    namespace: str
    data_dir: str
    regions: list[RegionSpec]
    persons_per_region: int
    seed: int
    base_port: int
    scrape_config: str
    services: list[ServiceRecord] = field(default_factory=list)
    started_at: float = 0.0
    sqlite_synchronous: str = "FULL"
    amqp_url: str = ""
    """The broker the services use, so that ``gongji admin`` and the others need not be
    told again (the state file is readable by its owner only)."""
    users: dict[str, str] = field(default_factory=dict)
    """Broker user -> password of each participant (``cluster_participants``): every
    service and client connects as its own user."""
    hosting: str = "region"
    """``province`` (a process per province) or ``region`` (a process per region)."""
    scenario: str = ""
    """The scenario file its regions came from (empty: the catalog's)."""

    @property
    def mailboxes(self) -> bool:
        """Whether its regions are served through province mailboxes (the clearinghouse
        was started so)."""
        return any(
            s.address == CLEARINGHOUSE and s.env.get(MAILBOXES_ENV) == "province"
            for s in self.services
        )

    def credentials(self) -> Credentials | None:
        """The participants' URLs (None for a state written before users existed)."""
        if not self.users:
            return None
        participants = [
            p for p in (participant_of(u, self.namespace) for u in self.users) if p is not None
        ]
        return Credentials(
            self.amqp_url, self.namespace, users_for(self.namespace, participants, self.users)
        )

    def url_for(self, participant: Participant) -> str:
        """The URL a participant of this cluster connects with."""
        credentials = self.credentials()
        if credentials is None:
            return self.amqp_url
        return credentials.url(participant)

    @property
    def log_dir(self) -> Path:
        return Path(self.data_dir) / LOG_DIR

    @property
    def codes(self) -> list[str]:
        return [r.code for r in self.regions]

    def population(self) -> SeededPopulation:
        """The seeded population, rebuilt from regions, size and seed."""
        return seed_population(self.regions, self.persons_per_region, self.seed)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["regions"] = [asdict(r) for r in self.regions]
        data["version"] = 1
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ClusterState:
        return cls(
            namespace=data["namespace"],
            data_dir=data["data_dir"],
            regions=[_region_of(r) for r in data["regions"]],
            persons_per_region=data["persons_per_region"],
            seed=data["seed"],
            base_port=data["base_port"],
            scrape_config=data["scrape_config"],
            services=[ServiceRecord(**s) for s in data["services"]],
            started_at=data.get("started_at", 0.0),
            sqlite_synchronous=data.get("sqlite_synchronous", "FULL"),
            amqp_url=data.get("amqp_url", ""),
            users=dict(data.get("users", {})),
            hosting=data.get("hosting", "region"),
            scenario=data.get("scenario", ""),
        )


def _region_of(data: dict[str, Any]) -> RegionSpec:
    """A region as ``to_json`` wrote it, its policy's enums included."""
    fields = dict(data)
    policy = fields.pop("policy", None)
    if isinstance(policy, dict):
        policy = Policy(
            **policy
            | {
                "scope": Scope(policy["scope"]),
                "payment_order": PaymentOrder(policy["payment_order"]),
            }
        )
    return RegionSpec(**fields, policy=policy or Policy())


def state_path(data_dir: Path) -> Path:
    return data_dir / STATE_FILE


def read_state(data_dir: Path) -> ClusterState | None:
    """The state of the cluster in ``data_dir``, or None when none was started there."""
    path = state_path(data_dir)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ClusterError(f"cannot read {path}: {error}; remove it if no cluster runs") from None
    try:
        return ClusterState.from_json(data)
    except (KeyError, TypeError) as error:
        raise ClusterError(f"{path} is not a cluster state file ({error})") from None


def _write_state(state: ClusterState) -> None:
    path = state_path(Path(state.data_dir))
    tmp = path.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    # Owner only: it holds the broker URL, password included.
    with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as file:
        file.write(json.dumps(state.to_json(), ensure_ascii=False, indent=2) + "\n")
    tmp.replace(path)


# --- processes ---------------------------------------------------------------------------


def _proc_stat(pid: int) -> tuple[str, int] | None:
    """(state letter, start ticks) of a process, or None if there is none."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    fields = raw[raw.rfind(")") + 2 :].split()
    return fields[0], int(fields[19])


def _reap(pid: int) -> None:
    """Collect a child's exit status if it is ours (tests and bench start clusters in-process)."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def is_running(record: ServiceRecord) -> bool:
    """True while the recorded process (same PID and start time) lives."""
    _reap(record.pid)
    stat = _proc_stat(record.pid)
    if stat is None:
        return False
    state, ticks = stat
    return state not in ("Z", "X") and ticks == record.start_ticks


def _spawn(argv: list[str], log_path: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        # A session of its own: the services outlive `cluster up` and ignore the
        # terminal's Ctrl-C; `cluster down` stops them.
        # The log is stderr alone, JSON lines: on stdout a service only prints the
        # metrics address, which the state file holds.
        return subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=log,
            env=env,
            start_new_session=True,
            close_fds=True,
        )


def _log_tail(path: str, lines: int = 8) -> str:
    try:
        text = Path(path).read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join("    " + line for line in text[-lines:]) or "    (empty log)"


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether ``host:port`` can be bound now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # As the metrics server does: a closed connection in TIME_WAIT does not block it.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port_block(count: int, start: int = 20_000, end: int = 60_000) -> int:
    """The first port P >= ``start`` such that P..P+count-1 are all free now."""
    port = start
    while port + count < end:
        busy = next((p for p in range(port, port + count) if not port_free(p)), None)
        if busy is None:
            return port
        port = busy + 1
    raise ClusterError(f"no {count} consecutive free ports between {start} and {end}")


def _metrics_answer(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=1) as reply:
            return bool(reply.status == 200)
    except OSError:
        return False


# --- up ----------------------------------------------------------------------------------

OPERATOR = admin("cluster")
"""The cluster's operator: ``cluster up``'s seeding, ``gongji admin``, ``gongji report``
and the load generator's set-up connect as this broker user."""
LOAD_CLIENT = client("load")
"""The load generator's submitter (one load at a time per cluster: its queue is shared)."""


def cluster_participants(codes: Sequence[str], hosting: str = "region") -> list[Participant]:
    """Every participant of a local cluster, each a broker user of its own: the regions'
    (one process per region) or their provinces' hosts."""
    if hosting == "province":
        hosts = [province(code) for code in provinces_of(codes)]
    else:
        hosts = [region(code) for code in codes]
    return [HUB, *hosts, OPERATOR, LOAD_CLIENT]


def provinces_of(codes: Sequence[str]) -> dict[str, list[str]]:
    """Province code -> its regions among ``codes``, in the order first listed."""
    provinces: dict[str, list[str]] = {}
    for code in codes:
        provinces.setdefault(province_of(code), []).append(code)
    return provinces


@dataclass(frozen=True, slots=True)
class HostPlan:
    """One process to start: its name, participant, the regions it hosts, its command."""

    name: str
    participant: Participant
    codes: tuple[str, ...]

    @property
    def address(self) -> str:
        return CLEARINGHOUSE if not self.codes else region_address(self.codes[0])

    def command(self) -> list[str]:
        """The ``gongji`` subcommand and its arguments."""
        if self.participant.role is Role.CLEARINGHOUSE:
            return ["clearinghouse"]
        if self.participant.role is Role.PROVINCE:
            return ["province", "--code", self.participant.name, "--regions", ",".join(self.codes)]
        return ["region", "--code", self.codes[0]]


MANY_REGIONS = 64
"""From this many regions on, the clearinghouse gets a deeper pipeline (see below)."""
MANY_REGIONS_TUNING = {
    "GONGJI_SHELL_PIPELINE_DEPTH": "8",
    "GONGJI_SHELL_MAX_BATCH": "512",
    "GONGJI_SHELL_PREFETCH": "8192",
}
"""With ~146 regions a clearinghouse step answers up to one queue per region and waits for
all their confirms; at the shell's default depth of 2 a 200/s load left requests without
an outcome, at 8 none (docs/province-hosting.md). Only what the caller did not set."""


def clearinghouse_tuning(regions: int, env: dict[str, str]) -> dict[str, str]:
    """The clearinghouse's shell settings for a cluster of ``regions`` regions."""
    if regions < MANY_REGIONS:
        return {}
    return {k: v for k, v in MANY_REGIONS_TUNING.items() if not env.get(k)}


def host_plan(codes: Sequence[str], hosting: str) -> list[HostPlan]:
    """The clearinghouse, then the regions' processes: one per province or per region."""
    if hosting not in HOSTINGS:
        raise ClusterError(f"hosting is one of {', '.join(HOSTINGS)}, not {hosting!r}")
    plans = [HostPlan(CLEARINGHOUSE, HUB, ())]
    if hosting == "province":
        for code, hosted in provinces_of(codes).items():
            plans.append(HostPlan(f"province-{code}", province(code), tuple(hosted)))
    else:
        plans += [HostPlan(f"region-{code}", region(code), (code,)) for code in codes]
    return plans


@dataclass(slots=True)
class ClusterConfig:
    """How to start a local cluster."""

    amqp_url: str
    data_dir: Path
    regions: Sequence[RegionSpec]
    namespace: str = "gongji"
    base_port: int = DEFAULT_BASE_PORT
    persons_per_region: int = DEFAULT_PERSONS
    seed: int = 1
    scrape_interval_s: float = 5.0
    log_level: str = "WARNING"
    sqlite_synchronous: str | None = None
    """``NORMAL`` trades durability against power loss (not process crashes) for speed."""
    ready_timeout_s: float = 120.0
    env: dict[str, str] = field(default_factory=dict)
    """Extra environment for the services (e.g. shell tunables)."""
    hosting: str = "province"
    """``province``: a process per province hosting its regions; ``region``: one each."""
    scenario: str = ""
    """The scenario file the regions came from, kept in the state (for the record)."""


def _service_argv(plan: HostPlan, config: ClusterConfig, port: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "gongji.cli",
        *plan.command(),
        "--namespace",
        config.namespace,
        "--data-dir",
        str(config.data_dir),
        "--metrics-port",
        str(port),
        "--metrics-host",
        "127.0.0.1",
        "--log-level",
        config.log_level,
    ]


async def cluster_up(config: ClusterConfig, say: Say = lambda _: None) -> ClusterState:
    """Start the services, seed the population, write the scrape config and state file."""
    data_dir = config.data_dir = config.data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    previous = read_state(data_dir)
    if previous is not None:
        alive = [s.name for s in previous.services if is_running(s)]
        if alive:
            raise AlreadyUp(
                f"a local cluster is already up in {data_dir} ({len(alive)} services running, "
                f"e.g. {alive[0]}); run `gongji cluster down --data-dir {data_dir}` first"
            )
        say(f"removing the stale state of a cluster that is no longer running ({STATE_FILE})")
        state_path(data_dir).unlink()
    codes = [r.code for r in config.regions]
    plans = host_plan(codes, config.hosting)
    names = [plan.name for plan in plans]
    ports = {name: config.base_port + i for i, name in enumerate(names)}
    busy = [f"{p} ({n})" for n, p in ports.items() if not port_free(p)]
    if busy:
        raise PortInUse(
            f"metrics port(s) in use: {', '.join(busy)}; choose another --base-port "
            f"(the cluster needs {len(names)} consecutive ports from it)"
        )
    seeded = seed_population(config.regions, config.persons_per_region, config.seed)
    topology = Topology(namespace=config.namespace)
    participants = cluster_participants(codes, config.hosting)
    say(f"creating {len(participants)} broker users (one per process and client)")
    try:
        credentials = await asyncio.to_thread(
            provision, config.amqp_url, config.namespace, participants
        )
    except BrokerAdminError as error:
        raise ClusterError(str(error)) from None
    try:
        return await _start(config, data_dir, plans, ports, seeded, topology, credentials, say)
    except BaseException:
        # Nothing runs under these users now (a failed start stops what it started).
        with contextlib.suppress(BrokerAdminError):
            await asyncio.to_thread(delete_users, credentials.passwords())
        raise


async def _start(
    config: ClusterConfig,
    data_dir: Path,
    plans: list[HostPlan],
    ports: dict[str, int],
    seeded: SeededPopulation,
    topology: Topology,
    credentials: Credentials,
    say: Say,
) -> ClusterState:
    """Declare, spawn, seed and wait for the services of ``cluster_up``."""
    codes = [r.code for r in config.regions]
    names = [plan.name for plan in plans]
    connection = await connect(
        credentials.url(OPERATOR), name=f"gongji-cluster-up:{config.namespace}"
    )
    try:
        extra = dict(config.env)
        if config.sqlite_synchronous:
            extra[SYNCHRONOUS_ENV] = config.sqlite_synchronous
        mailboxes = _mailboxes(config, extra)
        if mailboxes:
            extra[MAILBOXES_ENV] = "province"
        await _declare(connection, topology, service_addresses(codes, mailboxes))
        state = ClusterState(
            namespace=config.namespace,
            data_dir=str(data_dir),
            regions=list(config.regions),
            persons_per_region=config.persons_per_region,
            seed=config.seed,
            base_port=config.base_port,
            scrape_config=str(data_dir / SCRAPE_FILE),
            started_at=time.time(),
            sqlite_synchronous=config.sqlite_synchronous
            or os.environ.get(SYNCHRONOUS_ENV, "").upper()
            or "FULL",
            amqp_url=config.amqp_url,
            users=credentials.passwords(),
            hosting=config.hosting,
            scenario=config.scenario,
        )
        env = dict(os.environ) | extra
        try:
            for plan in plans:
                name = plan.name
                argv = _service_argv(plan, config, ports[name])
                log = data_dir / LOG_DIR / f"{name}.log"
                own = extra
                if plan.participant == HUB:
                    own = clearinghouse_tuning(len(codes), env) | extra
                # Its own broker user; in the environment, not on the command line (ps).
                url = credentials.url(plan.participant)
                process = _spawn(argv, log, env | own | {"AMQP_URL": url})
                stat = _proc_stat(process.pid)
                ticks = stat[1] if stat else 0
                record = ServiceRecord(
                    name, plan.address, process.pid, ticks, ports[name], str(log), argv, own
                )
                record.codes = list(plan.codes)
                state.services.append(record)
                # Written after every start, so `down` finds whatever did start.
                _write_state(state)
            say(f"started {len(names)} processes; seeding {len(seeded.population.persons)} persons")
            await _seed(connection, topology, seeded)
            await _wait_ready(connection, topology, state, seeded, config.ready_timeout_s, say)
        except BaseException:
            # Stop whatever did start (the state file names it), then say what failed.
            with contextlib.suppress(NotUp):
                cluster_down(data_dir)
            raise
    finally:
        await connection.close()
    write_scrape_config(state, config.scrape_interval_s)
    return state


def _mailboxes(config: ClusterConfig, extra: dict[str, str]) -> bool:
    """Province mailboxes: by default when hosting by province (``MAILBOXES_ENV``)."""
    try:
        asked = extra.get(MAILBOXES_ENV) or os.environ.get(MAILBOXES_ENV, "")
        mailboxes = province_mailboxes({MAILBOXES_ENV: asked or "province"})
    except ValueError as error:
        raise ClusterError(str(error)) from None
    if config.hosting != "province":
        if asked == "province":
            raise ClusterError(
                f"{MAILBOXES_ENV}=province needs regions hosted by province, not by region"
            )
        return False
    return mailboxes


def service_addresses(codes: Sequence[str], mailboxes: bool) -> list[str]:
    """The clearinghouse's, the regions' and (with ``mailboxes``) their provinces'
    mailboxes' addresses: every service queue of a cluster."""
    regions = [region_address(code) for code in codes]
    provinces = list(dict.fromkeys(map(mailbox_of, regions))) if mailboxes else []
    return [CLEARINGHOUSE, *regions, *provinces]


async def _declare(
    connection: AbstractRobustConnection, topology: Topology, addresses: Sequence[str]
) -> None:
    """Declare every service queue now, so the seed can be sent before services consume."""
    channel = await connection.channel()
    try:
        await declare_topology(channel, topology)
        for address in addresses:
            await declare_service_queue(channel, topology, address)
    finally:
        await channel.close()


async def _seed(
    connection: AbstractRobustConnection, topology: Topology, seeded: SeededPopulation
) -> None:
    publisher = await Publisher.open(connection, topology, OPERATOR.address)
    try:
        await publisher.publish_outgoing(seeded.population.setup_operations())
    finally:
        await publisher.close()


async def consumers(connection: AbstractRobustConnection, queue: str) -> tuple[int, int]:
    """(ready messages, consumers) of an existing queue."""
    channel = await connection.channel()
    try:
        declared = await channel.declare_queue(queue, passive=True)
        result = declared.declaration_result
        return int(result.message_count or 0), int(result.consumer_count or 0)
    finally:
        with contextlib.suppress(Exception):
            await channel.close()


def _count(path: Path, sql: str) -> int:
    """A count from a service's SQLite file, read-only; -1 while it is not there yet."""
    if not path.exists():
        return -1
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            return int(db.execute(sql).fetchone()[0])
    except sqlite3.Error:
        return -1


def seeded_counts(
    state: ClusterState, seeded: SeededPopulation | None = None
) -> dict[str, tuple[int, int]]:
    """Per service: (found, expected) rows of the seed (persons; regions + bindings)."""
    seeded = seeded or state.population()
    data_dir = Path(state.data_dir)
    per_region: dict[str, int] = {r.code: 0 for r in state.regions}
    for person in seeded.population.persons:
        per_region[person.region] += 1
    counts = {
        f"region-{code}": (
            _count(region_database(data_dir, code), "SELECT COUNT(*) FROM persons"),
            expected,
        )
        for code, expected in per_region.items()
    }
    counts[CLEARINGHOUSE] = (
        _count(
            clearinghouse_database(data_dir),
            "SELECT (SELECT COUNT(*) FROM regions) + (SELECT COUNT(*) FROM bindings)",
        ),
        len(state.regions) + len(seeded.population.bindings),
    )
    return counts


async def _wait_ready(
    connection: AbstractRobustConnection,
    topology: Topology,
    state: ClusterState,
    seeded: SeededPopulation,
    timeout_s: float,
    say: Say,
) -> None:
    """Until every process lives, serves metrics, consumes its queue and holds the seed."""
    deadline = time.monotonic() + timeout_s
    pending = {s.name for s in state.services}
    by_name = {s.name: s for s in state.services}
    while True:
        for service in state.services:
            if not is_running(service):
                raise ServiceFailed(
                    f"{service.name} exited while starting; the end of {service.log}:\n"
                    + _log_tail(service.log)
                )
        counts = seeded_counts(state, seeded)
        for service in state.services:
            if service.name not in pending:
                continue
            parts = _parts(service)
            if any(counts[p][0] < counts[p][1] for p in parts):
                continue
            if not _metrics_answer(service.metrics_port):
                continue
            addresses = [region_address(c) for c in service.codes] or [service.address]
            if service.codes and service.env.get(MAILBOXES_ENV) == "province":
                addresses.append(mailbox_of(addresses[0]))
            for address in addresses:
                _, n_consumers = await consumers(connection, topology.queue_for(address))
                if not n_consumers:
                    break
            else:
                pending.discard(service.name)
        if not pending:
            say(f"all {len(state.services)} processes are up and seeded")
            return
        if time.monotonic() > deadline:
            detail = ", ".join(
                f"{n} ({sum(counts[p][0] for p in _parts(by_name[n]))}/"
                f"{sum(counts[p][1] for p in _parts(by_name[n]))} seeded)"
                for n in sorted(pending)[:5]
            )
            raise ServiceFailed(f"not ready within {timeout_s:.0f} s: {detail}")
        await asyncio.sleep(0.2)


def _parts(service: ServiceRecord) -> list[str]:
    """The keys of ``seeded_counts`` a process answers for: its regions, or itself."""
    return [f"region-{code}" for code in service.codes] or [service.name]


def write_scrape_config(state: ClusterState, interval_s: float) -> Path:
    """A Prometheus config scraping every service of the cluster (and RabbitMQ if it
    serves metrics on 15692); returns its path."""
    interval = f"{max(interval_s, 0.1):g}s"
    lines = [
        f"# Written by `gongji cluster up` for the local cluster in {state.data_dir}.",
        f"# Run: prometheus --config.file={state.scrape_config}",
        "global:",
        f"  scrape_interval: {interval}",
        f"  evaluation_interval: {interval}",
        "scrape_configs:",
    ]
    # The job names of compose's Prometheus, so deploy/prometheus/alerts.yml applies here too.
    for job, component in (("gongji-clearinghouse", "clearinghouse"), ("gongji-regions", "region")):
        lines += [f"  - job_name: {job}", "    static_configs:"]
        for service in state.services:
            if ("clearinghouse" if service.name == CLEARINGHOUSE else "region") != component:
                continue
            lines += [
                f"      - targets: [{json.dumps(f'127.0.0.1:{service.metrics_port}')}]",
                "        labels:",
                f"          component: {json.dumps(component)}",
            ]
    host, _, port = RABBITMQ_METRICS.partition(":")
    with socket.socket() as sock:
        sock.settimeout(0.5)
        rabbit = sock.connect_ex((host, int(port))) == 0
    if rabbit:
        lines += [
            "  - job_name: rabbitmq",
            "    static_configs:",
            f"      - targets: [{json.dumps(RABBITMQ_METRICS)}]",
        ]
    path = Path(state.scrape_config)
    path.write_text("\n".join(lines) + "\n")
    return path


# --- one service at a time: kill, stop, continue, restart ---------------------------------


def find_service(state: ClusterState, name: str) -> ServiceRecord:
    """``clearinghouse``, ``province-420000``, ``region-420100`` or just ``420100``: a
    region names the process that hosts it (killing a region kills its host)."""
    wanted = f"region-{name}" if name.isdigit() else name
    for record in state.services:
        if record.name == wanted:
            return record
    code = wanted.removeprefix("region-")
    for record in state.services:
        if code in record.codes:
            return record
    known = ", ".join(s.name for s in state.services)
    raise ClusterError(f"no service {name!r} in this cluster (it has: {known})")


def participant_of_service(record: ServiceRecord) -> Participant:
    """The broker user a recorded process connects as."""
    if record.name == CLEARINGHOUSE:
        return HUB
    kind, _, code = record.name.partition("-")
    return province(code) if kind == "province" else region(code)


def signal_service(data_dir: Path, name: str, signum: int) -> ServiceRecord:
    """Send ``signum`` (SIGKILL, SIGSTOP, SIGCONT, ...) to one running service."""
    state = _state_or_raise(data_dir)
    record = find_service(state, name)
    if not is_running(record):
        raise ClusterError(f"{record.name} is not running (pid {record.pid} is gone)")
    os.kill(record.pid, signum)
    if signum == signal.SIGKILL:
        deadline = time.monotonic() + 5.0
        while is_running(record) and time.monotonic() < deadline:
            time.sleep(0.01)
    return record


def restart_service(data_dir: Path, name: str) -> ServiceRecord:
    """Start one service again, as ``cluster up`` started it (SIGKILL first if it still
    runs); the state file then names the new process, so status and down know it."""
    state = _state_or_raise(data_dir)
    record = find_service(state, name)
    if is_running(record):
        os.kill(record.pid, signal.SIGCONT)  # a stopped process cannot die otherwise
        signal_service(data_dir, name, signal.SIGKILL)
    env = dict(os.environ) | record.env
    env["AMQP_URL"] = state.url_for(participant_of_service(record))
    process = _spawn(record.argv, Path(record.log), env)
    stat = _proc_stat(process.pid)
    record.pid, record.start_ticks = process.pid, stat[1] if stat else 0
    _write_state(state)
    return record


def metrics_answer(record: ServiceRecord) -> bool:
    """Whether the service's metrics endpoint answers (it has started)."""
    return _metrics_answer(record.metrics_port)


def _state_or_raise(data_dir: Path) -> ClusterState:
    state = read_state(data_dir.resolve())
    if state is None:
        raise NotUp(f"no local cluster is up in {data_dir} (no {STATE_FILE} there)")
    return state


# --- down --------------------------------------------------------------------------------


@dataclass(slots=True)
class DownReport:
    stopped: list[str] = field(default_factory=list)
    killed: list[str] = field(default_factory=list)
    """Stopped only by SIGKILL after the grace period."""
    gone: list[str] = field(default_factory=list)
    """Not running any more (exited earlier, or the PID now belongs to another process)."""


def cluster_down(data_dir: Path, grace_s: float = 10.0) -> DownReport:
    """SIGTERM every recorded service, SIGKILL what still runs after ``grace_s``."""
    data_dir = data_dir.resolve()
    state = read_state(data_dir)
    if state is None:
        raise NotUp(f"no local cluster is up in {data_dir} (no {STATE_FILE} there)")
    report = DownReport()
    running = [s for s in state.services if is_running(s)]
    report.gone = [s.name for s in state.services if s not in running]
    for service in running:
        with contextlib.suppress(ProcessLookupError):
            os.kill(service.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while running and time.monotonic() < deadline:
        time.sleep(0.05)
        still = [s for s in running if is_running(s)]
        report.stopped += [s.name for s in running if s not in still]
        running = still
    for service in running:
        with contextlib.suppress(ProcessLookupError):
            os.kill(service.pid, signal.SIGKILL)
        report.killed.append(service.name)
    deadline = time.monotonic() + 5.0
    while any(is_running(s) for s in running) and time.monotonic() < deadline:
        time.sleep(0.05)
    state_path(data_dir).unlink(missing_ok=True)
    return report


async def delete_queues(amqp_url: str, state: ClusterState) -> None:
    """Delete the cluster's service queues and broker users (after ``down``; for tests
    and benchmarks)."""
    if state.users:
        with contextlib.suppress(BrokerAdminError):
            await asyncio.to_thread(delete_users, state.users)
    connection = await connect(amqp_url, name=f"gongji-cluster-clean:{state.namespace}")
    try:
        channel = await connection.channel()
        topology = Topology(namespace=state.namespace)
        # (Deleting a mailbox that was never declared is no error.)
        for address in service_addresses(state.codes, mailboxes=True):
            with contextlib.suppress(aiormq.exceptions.AMQPError):
                await channel.queue_delete(topology.queue_for(address))
        with contextlib.suppress(aiormq.exceptions.AMQPError):
            await channel.queue_delete(topology.dead_letter_queue)
            await channel.exchange_delete(topology.exchange)
            await channel.exchange_delete(topology.dead_letter_exchange)
        with contextlib.suppress(Exception):
            await channel.close()
    finally:
        await connection.close()
