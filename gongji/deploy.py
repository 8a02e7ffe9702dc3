"""The broker definitions compose loads: written by the same generator as the local
cluster's users (``broker.users``), never by hand.

    python -m gongji.deploy > deploy/rabbitmq/definitions.json

DEV ONLY: the passwords are public (``<user>-dev-only``); compose.yaml gives each
service the URL of its own user. Anything beyond a laptop needs its own secrets.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from broker.topology import Topology
from broker.users import BrokerUser, definitions, password_hash
from contracts.participants import HUB, Participant, Role, admin, client, region

NAMESPACE = "gongji"
VHOST = "gongji"
REGIONS = ("110000", "310000", "420100", "510100", "440100")
"""The regions compose runs (Beijing, 110000, is registered but not enabled)."""
SEED = admin("seed")
"""The one-shot seeding (and ad hoc admin commands): an operator."""
LOAD = client("load")
"""The load generator: a plain client."""
MANAGEMENT = ("admin", "admin-dev-only")
"""The management UI's user: no participant, and no service connects as it."""


def participants() -> list[Participant]:
    return [HUB, *(region(code) for code in REGIONS), SEED, LOAD]


def dev_password(participant: Participant) -> str:
    """``clearinghouse-dev-only``, ``region-420100-dev-only``, ``seed-dev-only``, ..."""
    name = "clearinghouse" if participant.role is Role.CLEARINGHOUSE else participant.name
    if participant.role is Role.REGION:
        name = f"region-{participant.name}"
    return f"{name}-dev-only"


def users() -> list[BrokerUser]:
    return [BrokerUser(p, NAMESPACE, dev_password(p)) for p in participants()]


def url_of(participant: Participant, host: str = "rabbitmq", port: int = 5672) -> str:
    """The AMQP URL compose gives the service of ``participant``."""
    user = BrokerUser(participant, NAMESPACE, dev_password(participant))
    return f"amqp://{user.name}:{user.password}@{host}:{port}/{VHOST}"


def compose_definitions() -> dict[str, Any]:
    """The whole definitions document of compose's broker."""
    generated = definitions(users(), vhost=VHOST)
    topology = Topology(NAMESPACE)
    management_user = {
        "name": MANAGEMENT[0],
        "password_hash": password_hash(MANAGEMENT[1]),
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


def main() -> int:
    json.dump(compose_definitions(), sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
