"""Broker users and their permissions: one generator for compose, the local cluster and
the tests.

Each participant (``contracts.participants``) is a RabbitMQ user of its own. Its vhost
permissions confine it to publishing on the namespace's exchange and to its own queue
(only an operator configures the exchanges and the dead-letter queue); its topic
permissions on the namespace's (topic) exchange say which routing keys it may publish
to, so the broker itself refuses a region addressing another region:

=============  ==============================================  ==========================
participant    may publish to                                  may bind (its queues)
=============  ==============================================  ==========================
clearinghouse  ``region.<code>``, ``province.<code>``,          its own, ``region.<code>``,
               ``client.<name>``                               ``province.<code>``
region         ``clearinghouse``, ``client.<name>``            ``region.<its code>``
province       ``clearinghouse``, ``client.<name>``            ``region.<its province's>``,
                                                               ``province.<its code>``
client         ``region.<code>``, ``province.<code>``          ``client.<its name>``
admin          ``clearinghouse``, ``region.<code>``            any of the namespace
=============  ==============================================  ==========================

The set is written as RabbitMQ definitions (``definitions``), which compose loads at boot
and ``apply_with_rabbitmqctl`` imports into a running broker.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import os
import re
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from yarl import URL

from contracts.participants import Participant, Role

VHOST = "/"

_REGION_KEY = r"region\.[1-9][0-9]{5}"
_MAILBOX_KEY = r"province\.[1-9][0-9]0000"
_CLIENT_KEY = r"client\.[a-z0-9][a-z0-9_-]{0,39}"


def _province_regions_key(participant: Participant) -> str:
    """The routing keys of a province's regions, as a regex (``region\\.42[0-9]{4}``),
    and of its mailbox (``province\\.420000``)."""
    code = participant.name[:2]
    return rf"region\.{code}[0-9]{{4}}|province\.{code}0000"


class BrokerAdminError(RuntimeError):
    """Users could not be created or removed; ``str(error)`` says why and what to do."""


@dataclass(frozen=True, slots=True)
class BrokerUser:
    """One participant's broker user: name, password and permissions in a namespace."""

    participant: Participant
    namespace: str
    password: str

    @property
    def name(self) -> str:
        return self.participant.user(self.namespace)

    def url(self, base_url: str) -> str:
        """``base_url`` (any user) with this user's credentials."""
        return str(URL(base_url).with_user(self.name).with_password(self.password))

    def permissions(self) -> dict[str, str]:
        """Vhost permissions (configure, write, read regexes over resource names)."""
        ns = re.escape(self.namespace)
        role = self.participant.role
        if role is Role.ADMIN:
            everything = f"^{ns}(\\..*)?$"
            return {"configure": everything, "write": everything, "read": everything}
        if role is Role.PROVINCE:
            # The queues of its province's regions, which it declares and consumes.
            queues = f"{ns}\\.({_province_regions_key(self.participant)})"
        else:
            queues = re.escape(f"{self.namespace}.{self.participant.address}")
        if role is Role.CLEARINGHOUSE:
            # It declares (and binds) the queue of each region it registers, and of
            # each province mailbox through which it serves them.
            queues = f"{queues}|{ns}\\.{_REGION_KEY}|{ns}\\.{_MAILBOX_KEY}"
        # No configure on the shared exchange and dead-letter objects: the operator
        # declares them, and a service that could configure them could delete them.
        # Declaring a queue that dead-letters needs write on the dead-letter exchange and
        # read on the queue (RabbitMQ checks both), so a declarer reads what it declares;
        # binding its queue needs read on the exchange.
        return {
            "configure": f"^({queues})$",
            "write": f"^({ns}|{ns}\\.dlx|{queues})$",
            "read": f"^({ns}|{queues})$",
        }

    def topic_permissions(self) -> dict[str, str]:
        """Routing keys it may publish to (write) and bind its queues with (read)."""
        return topic_permissions(self.participant)


def topic_permissions(participant: Participant) -> dict[str, str]:
    """The routing keys a participant may publish to (write) and bind with (read)."""
    role = participant.role
    if role is Role.PROVINCE:
        return {
            "write": f"^(clearinghouse|{_CLIENT_KEY})$",
            "read": f"^({_province_regions_key(participant)})$",
        }
    own = re.escape(participant.address)
    if role is Role.CLEARINGHOUSE:
        write = f"{_REGION_KEY}|{_MAILBOX_KEY}|{_CLIENT_KEY}"
        read = f"{own}|{_REGION_KEY}|{_MAILBOX_KEY}"
    elif role is Role.REGION:
        write, read = f"clearinghouse|{_CLIENT_KEY}", own
    elif role is Role.CLIENT:
        # A mailbox takes what its regions' queues take (the engine checks each
        # operation against its sender, and each region against the host).
        write, read = f"{_REGION_KEY}|{_MAILBOX_KEY}", own
    else:
        write = f"clearinghouse|{_REGION_KEY}"
        read = f"clearinghouse|{_REGION_KEY}|{_MAILBOX_KEY}|{_CLIENT_KEY}"
    return {"write": f"^({write})$", "read": f"^({read})$"}


def may_publish(participant: Participant, address: str) -> bool:
    """Whether the broker lets ``participant`` publish to ``address`` (its topic write
    permission; the simulator's broker asks the same)."""
    return _write_pattern(participant).match(address) is not None


@functools.lru_cache(maxsize=4096)
def _write_pattern(participant: Participant) -> re.Pattern[str]:
    return re.compile(topic_permissions(participant)["write"])


def new_password() -> str:
    return secrets.token_urlsafe(18)


def users_for(
    namespace: str, participants: Iterable[Participant], passwords: dict[str, str] | None = None
) -> list[BrokerUser]:
    """A user per participant, with the given password (by user name) or a new one."""
    known = passwords or {}
    users = []
    for participant in participants:
        name = participant.user(namespace)
        users.append(BrokerUser(participant, namespace, known.get(name) or new_password()))
    return users


def password_hash(password: str, salt: bytes | None = None) -> str:
    """RabbitMQ's ``rabbit_password_hashing_sha256``: base64(salt + sha256(salt + pw))."""
    salt = os.urandom(4) if salt is None else salt
    digest = hashlib.sha256(salt + password.encode()).digest()
    return base64.b64encode(salt + digest).decode()


def definitions(
    users: Sequence[BrokerUser], *, hashed: bool = True, vhost: str = VHOST
) -> dict[str, Any]:
    """RabbitMQ definitions (users, permissions, topic permissions) for ``users``."""
    entries: list[dict[str, Any]] = []
    for user in users:
        entry: dict[str, Any] = {"name": user.name, "tags": [], "limits": {}}
        if hashed:
            entry["password_hash"] = password_hash(user.password)
            entry["hashing_algorithm"] = "rabbit_password_hashing_sha256"
        else:
            entry["password"] = user.password
        entries.append(entry)
    return {
        "users": entries,
        "permissions": [{"user": u.name, "vhost": vhost, **u.permissions()} for u in users],
        "topic_permissions": [
            {"user": u.name, "vhost": vhost, "exchange": u.namespace, **u.topic_permissions()}
            for u in users
        ],
    }


# --- applying them to a running broker ----------------------------------------------------


def rabbitmqctl() -> list[str]:
    """The command that administers the broker: ``GONGJI_RABBITMQCTL`` (e.g. ``docker exec
    rabbit rabbitmqctl``), else ``rabbitmqctl`` on the PATH."""
    configured = os.environ.get("GONGJI_RABBITMQCTL", "").split()
    if configured:
        return configured
    found = shutil.which("rabbitmqctl")
    if found is None:
        raise BrokerAdminError(
            "cannot create the cluster's broker users: rabbitmqctl is not on the PATH; "
            "run on the broker's host as root (or a member of the rabbitmq group), or set "
            "GONGJI_RABBITMQCTL to a command that runs it (e.g. 'docker exec rabbit rabbitmqctl')"
        )
    return [found]


def _run(args: Sequence[str], input_path: str | None = None) -> str:
    command = [*rabbitmqctl(), *args]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise BrokerAdminError(f"rabbitmqctl failed: {error}") from None
    if done.returncode != 0:
        last = (done.stderr.strip() or done.stdout.strip()).splitlines()[-1:] or ["no output"]
        hint = ""
        if "cookie" in done.stderr.lower() or "eacces" in done.stderr.lower():
            hint = " (run as root or as the rabbitmq user, whose Erlang cookie it needs)"
        raise BrokerAdminError(f"rabbitmqctl {args[0]} failed: {last[0]}{hint}")
    return done.stdout


def list_users() -> set[str]:
    out = _run(["list_users", "--silent", "--no-table-headers"])
    return {line.split("\t", 1)[0] for line in out.splitlines() if line.strip()}


def apply_with_rabbitmqctl(users: Sequence[BrokerUser], timeout_s: float = 30.0) -> None:
    """Create (or update) ``users`` with their permissions, in one import; wait until the
    broker has them (rabbitmqctl imports asynchronously)."""
    if not users:
        return
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as file:
        json.dump(definitions(users, hashed=True), file)
        path = file.name
    try:
        os.chmod(path, 0o644)  # the broker's own process reads it
        _run(["import_definitions", path])
        wanted = {u.name for u in users}
        deadline = time.monotonic() + timeout_s
        while not wanted <= list_users():
            if time.monotonic() > deadline:
                raise BrokerAdminError("the broker did not create the users in time")
            time.sleep(0.1)
    finally:
        os.unlink(path)


def delete_users(names: Iterable[str]) -> None:
    """Remove broker users, all in one rabbitmqctl call (a missing one is no error)."""
    wanted = sorted(set(names))
    if not wanted:
        return
    binaries = ",".join("<<" + json.dumps(name) + ">>" for name in wanted)
    acting = '<<"gongji">>'
    delete = f"rabbit_auth_backend_internal:delete_user(U, {acting})"
    _run(["eval", f"[{delete} || U <- [{binaries}]], ok."])


class Credentials:
    """Connection URLs of a namespace's participants (each its own broker user)."""

    def __init__(self, base_url: str, namespace: str, users: Sequence[BrokerUser]) -> None:
        self.base_url = base_url
        self.namespace = namespace
        self.users = {u.participant: u for u in users}

    def url(self, participant: Participant) -> str:
        user = self.users.get(participant)
        if user is None:
            raise KeyError(f"no broker user for {participant} in namespace {self.namespace!r}")
        return user.url(self.base_url)

    def passwords(self) -> dict[str, str]:
        """By user name (what the cluster's state keeps, readable by its owner only)."""
        return {u.name: u.password for u in self.users.values()}


def provision(
    base_url: str,
    namespace: str,
    participants: Iterable[Participant],
    passwords: dict[str, str] | None = None,
) -> Credentials:
    """Create (or update) a broker user for each participant; their URLs."""
    users = users_for(namespace, participants, passwords)
    apply_with_rabbitmqctl(users)
    return Credentials(base_url, namespace, users)


def with_base_url(credentials: Credentials, base_url: str) -> Credentials:
    """The same users, reached through another address (e.g. a test's TCP proxy)."""
    return Credentials(base_url, credentials.namespace, list(credentials.users.values()))
