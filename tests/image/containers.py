"""A gongji cluster of containers from the image, on the host's network.

What ``gongji cluster up`` does with processes, done with ``docker run``: the
clearinghouse and each region are a container of their own, as compose runs them (the
image's entrypoint and defaults, ``GONGJI_*`` variables, data in ``/data``), each
connecting as its own broker user to the test broker on loopback; the seed, the load
and the audit are one-shot containers of the same image. Every service's SQLite file is
in one host directory mounted at ``/data``, so the host reads the books too.

Host networking, because this engine has no bridge: so each service gets a metrics port
of its own, on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import aiormq.exceptions

from broker.connection import connect
from broker.topology import Topology, ensure_topology
from broker.users import Credentials, provision
from contracts.participants import HUB, Participant, region
from gongji.cluster.catalog import regions_by_code
from gongji.cluster.local import (
    OPERATOR,
    ClusterState,
    cluster_participants,
    consumers,
    delete_queues,
    free_port_block,
    seeded_counts,
)
from tests.image.engine import Engine

IMAGE_UID = 10001
"""The Dockerfile's ``USER``: what every service runs as."""
LABEL = "org.gongji.image-test"
"""On every container the test starts (its value: the namespace), to remove them all."""
READY_TIMEOUT_S = 120.0


@dataclass
class Service:
    name: str
    """``clearinghouse`` or ``region-<code>``, as in compose and ``cluster up``."""
    participant: Participant
    argv: list[str]
    metrics_port: int


@dataclass
class ContainerCluster:
    engine: Engine
    image: str
    amqp_url: str
    data_dir: Path
    namespace: str
    codes: list[str]
    persons_per_region: int
    population_seed: int = 1
    services: list[Service] = field(default_factory=list)
    credentials: Credentials | None = None

    def state(self) -> ClusterState:
        """The cluster as ``gongji cluster up`` records one (no processes): what
        ``seeded_counts`` and ``delete_queues`` read."""
        return ClusterState(
            namespace=self.namespace,
            data_dir=str(self.data_dir),
            regions=list(regions_by_code(self.codes)),
            persons_per_region=self.persons_per_region,
            seed=self.population_seed,
            base_port=0,
            scrape_config="",
            amqp_url=self.amqp_url,
            users=self.credentials.passwords() if self.credentials else {},
        )

    # --- up ---------------------------------------------------------------------------

    def provision(self) -> None:
        """A broker user per participant, as ``cluster up`` makes them."""
        self.credentials = provision(
            self.amqp_url, self.namespace, cluster_participants(self.codes)
        )

    async def declare_topology(self) -> None:
        """The namespace's exchanges and dead-letter queue, which only its operator may
        declare: before any service starts, as ``cluster up`` and compose's definitions do."""
        assert self.credentials is not None, "provision first"
        connection = await connect(self.credentials.url(OPERATOR), name="gongji-image-test")
        try:
            await ensure_topology(connection, Topology(self.namespace))
        finally:
            await connection.close()

    def start_services(self) -> None:
        """``docker run -d`` the clearinghouse and every region."""
        base = free_port_block(len(self.codes) + 1)
        self.services = [Service("clearinghouse", HUB, ["clearinghouse"], base)]
        for i, code in enumerate(self.codes, 1):
            self.services.append(
                Service(f"region-{code}", region(code), ["region", "--code", code], base + i)
            )
        for service in self.services:
            self.engine.docker(
                "run",
                "--detach",
                *self._run_options(service.participant, service.name),
                "--env",
                "GONGJI_METRICS_HOST=127.0.0.1",
                "--env",
                f"GONGJI_METRICS_PORT={service.metrics_port}",
                "--env",
                "GONGJI_LOG_LEVEL=INFO",
                self.image,
                *service.argv,
            )

    def container(self, name: str) -> str:
        return f"{self.namespace}-{name}"

    def _run_options(self, participant: Participant, name: str) -> list[str]:
        assert self.credentials is not None, "provision first"
        return [
            "--name",
            self.container(name),
            "--label",
            f"{LABEL}={self.namespace}",
            "--network",
            "host",
            "--volume",
            f"{self.data_dir}:/data",
            "--env",
            f"AMQP_URL={self.credentials.url(participant)}",
            "--env",
            f"GONGJI_NAMESPACE={self.namespace}",
        ]

    async def wait_consuming(self) -> None:
        """Until every service runs, serves its metrics and consumes its queue."""
        assert self.credentials is not None
        connection = await connect(self.credentials.url(OPERATOR), name="gongji-image-test")
        topology = Topology(self.namespace)
        pending = {s.name: s for s in self.services}
        deadline = time.monotonic() + READY_TIMEOUT_S
        try:
            while pending:
                for service in list(pending.values()):
                    self._fail_if_exited(service)
                    if not _metrics_answer(service.metrics_port):
                        continue
                    queue = topology.queue_for(service.participant.address)
                    with contextlib.suppress(aiormq.exceptions.AMQPError):  # not declared yet
                        if (await consumers(connection, queue))[1]:
                            del pending[service.name]
                if time.monotonic() > deadline:
                    raise AssertionError(
                        f"not consuming within {READY_TIMEOUT_S:.0f} s: {sorted(pending)}; "
                        + self.logs(next(iter(pending)))
                    )
                await asyncio.sleep(0.2)
        finally:
            await connection.close()

    def wait_seeded(self) -> None:
        """Until every service's SQLite file holds the seed (read from the host)."""
        deadline = time.monotonic() + READY_TIMEOUT_S
        state = self.state()
        while True:
            short = {n: c for n, c in seeded_counts(state).items() if c[0] < c[1]}
            if not short:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"not seeded within {READY_TIMEOUT_S:.0f} s: {short}")
            time.sleep(0.2)

    def _fail_if_exited(self, service: Service) -> None:
        running = self.engine.docker(
            "inspect", "--format", "{{.State.Running}}", self.container(service.name)
        ).stdout.strip()
        if running != "true":
            raise AssertionError(
                f"{service.name} exited while starting; " + self.logs(service.name)
            )

    def logs(self, name: str, lines: int = 15) -> str:
        done = self.engine.docker("logs", "--tail", str(lines), self.container(name), check=False)
        return f"the end of its log:\n{done.stdout}{done.stderr}"

    # --- one-shot commands ------------------------------------------------------------

    def run(
        self, participant: Participant, name: str, *argv: str, timeout_s: float = 180.0
    ) -> subprocess.CompletedProcess[str]:
        """``docker run --rm IMAGE ARGV`` as ``participant``'s broker user (not checked)."""
        return self.engine.docker(
            "run",
            "--rm",
            *self._run_options(participant, name),
            self.image,
            *argv,
            timeout_s=timeout_s,
            check=False,
        )

    def population_options(self) -> list[str]:
        return [
            "--codes",
            ",".join(self.codes),
            "--persons",
            str(self.persons_per_region),
            "--population-seed",
            str(self.population_seed),
        ]

    # --- down -------------------------------------------------------------------------

    def down(self) -> None:
        """Remove every container of this cluster, then its broker users and queues."""
        listed = self.engine.docker(
            "ps", "--all", "--quiet", "--filter", f"label={LABEL}={self.namespace}", check=False
        ).stdout.split()
        try:
            if listed:
                self.engine.docker("rm", "--force", "--volumes", *listed, timeout_s=120)
        finally:
            asyncio.run(delete_queues(self.amqp_url, self.state()))


def _metrics_answer(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=1) as reply:
            return bool(reply.status == 200)
    except OSError:
        return False


def remove_stopped(engine: Engine) -> None:
    """Containers of earlier runs that stopped with their engine (a killed session leaves
    them behind); running ones, of another session, are left alone."""
    engine.docker("container", "prune", "--force", "--filter", f"label={LABEL}")
