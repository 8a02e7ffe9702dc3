"""deploy/rabbitmq: users, permissions and ports, held against compose.yaml and the topology.

RabbitMQ matches permission regexes unanchored (like ``re.search``) against exchange and
queue names; these tests compute the names from broker.topology, so a renamed queue or
namespace shows up here. test_rabbitmq_live.py proves the same on a real broker.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from functools import cache
from typing import Any

import pytest

from broker.topology import Topology
from contracts.identifiers import CLEARINGHOUSE, client_address, region_address
from contracts.participants import HUB, Participant, Role, participant_of, province
from gongji import deploy
from gongji.deploy import compose_definitions, shipped_regions
from tests.deploy.artefacts import (
    COMPOSE,
    RABBITMQ_CONF,
    RABBITMQ_DEFINITIONS,
    command,
    conf_settings,
    container_env,
    container_ports,
    enabled_plugins,
    gongji_services,
    parse_amqp_url,
    services,
)

pytestmark = pytest.mark.timeout(60)

ADMIN = ("admin", "admin-dev-only")
"""The management UI's user, documented at the top of compose.yaml (dev only)."""


@cache
def definitions() -> dict[str, Any]:
    data = json.loads(RABBITMQ_DEFINITIONS.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def users() -> dict[str, dict[str, Any]]:
    return {u["name"]: u for u in definitions()["users"]}


def permissions(user: str, vhost: str) -> dict[str, str]:
    found = [p for p in definitions()["permissions"] if p["user"] == user and p["vhost"] == vhost]
    assert len(found) == 1, f"{user} has {len(found)} permission entries on vhost {vhost!r}"
    return {kind: str(found[0][kind]) for kind in ("configure", "write", "read")}


def password_matches(user: dict[str, Any], password: str) -> bool:
    """RabbitMQ's rabbit_password_hashing_sha256: base64(salt + sha256(salt + password))."""
    assert user["hashing_algorithm"] == "rabbit_password_hashing_sha256"
    raw = base64.b64decode(user["password_hash"])
    salt, digest = raw[:4], raw[4:]
    return hashlib.sha256(salt + password.encode()).digest() == digest


def service_urls() -> dict[str, Any]:
    return {
        name: parse_amqp_url(container_env(service)["AMQP_URL"])
        for name, service in gongji_services().items()
    }


def test_the_vhost_exists_and_guest_does_not() -> None:
    vhosts = {v["name"] for v in definitions()["vhosts"]}
    assert {url.vhost for url in service_urls().values()} == vhosts == {"gongji"}
    assert "guest" not in users()


def test_every_service_user_exists_with_the_password_compose_gives_it() -> None:
    for name, url in service_urls().items():
        assert url.user in users(), f"{name}: broker user {url.user} is not in definitions.json"
        assert password_matches(users()[url.user], url.password), f"{name}: wrong password"
        assert users()[url.user]["tags"] == [], f"{url.user} needs no management tag"
        permissions(url.user, url.vhost)


def test_no_user_is_left_over_but_the_documented_admin() -> None:
    used = {url.user for url in service_urls().values()}
    assert set(users()) == used | {ADMIN[0]}
    admin = users()[ADMIN[0]]
    assert password_matches(admin, ADMIN[1]) and admin["tags"] == ["administrator"]
    assert f"{ADMIN[0]} / {ADMIN[1]}" in COMPOSE.read_text(encoding="utf-8")


def test_users_and_permissions_are_the_generators_output() -> None:
    """definitions.json is ``gongji compose``'s output (the same generator as
    the local cluster's users): regenerate it rather than edit it."""
    want = compose_definitions(shipped_regions())
    for key in ("permissions", "topic_permissions", "vhosts"):
        assert definitions()[key] == want[key], (
            f"{key}: run gongji compose --scenario deploy/scenario.toml"
        )
    assert [u["name"] for u in definitions()["users"]] == [u["name"] for u in want["users"]]


def test_each_service_connects_as_the_participant_it_is() -> None:
    """A province's service is that province's user, the seed an operator, load a client."""
    for name, service in gongji_services().items():
        url = service_urls()[name]
        argv = command(service)
        if argv[:1] == ["clearinghouse"]:
            want = HUB
        elif argv[:1] == ["province"]:
            want = province(argv[argv.index("--code") + 1])
        elif argv[:1] == ["admin"]:
            want = deploy.SEED
        else:
            want = deploy.LOAD
        assert participant_of(url.user, deploy.NAMESPACE) == want, name
        assert url.password == deploy.dev_password(want), name


@pytest.mark.parametrize("participant", deploy.participants(shipped_regions()), ids=str)
def test_routing_keys_each_user_may_publish_to(participant: Participant) -> None:
    """Topic permissions: regions only to the hub and clients, clients only to regions."""
    [granted] = [
        p
        for p in definitions()["topic_permissions"]
        if p["user"] == participant.user(deploy.NAMESPACE)
    ]
    assert granted["exchange"] == Topology(deploy.NAMESPACE).exchange
    keys = {
        "hub": CLEARINGHOUSE,
        "region": region_address("420100"),
        "client": client_address("load"),
    }
    may = {k for k, key in keys.items() if re.match(granted["write"], key)}
    expected = {
        Role.CLEARINGHOUSE: {"region", "client"},
        Role.REGION: {"hub", "client"},
        Role.PROVINCE: {"hub", "client"},
        Role.CLIENT: {"region"},
        Role.ADMIN: {"hub", "region"},
    }[participant.role]
    assert may == expected


def test_the_broker_listens_where_the_services_and_compose_expect() -> None:
    settings = conf_settings(RABBITMQ_CONF)
    rabbitmq = services()["rabbitmq"]
    amqp_port = int(settings["listeners.tcp.default"])
    assert {url.port for url in service_urls().values()} == {amqp_port}
    assert {url.host for url in service_urls().values()} == {"rabbitmq"}
    ports = container_ports(rabbitmq)
    for key in ("listeners.tcp.default", "management.tcp.port", "prometheus.tcp.port"):
        assert int(settings[key]) in ports, f"{key} is not exposed"
    published = [str(p) for p in rabbitmq.get("ports", [])]
    management = settings["management.tcp.port"]
    assert published == [f"127.0.0.1:{management}:{management}"], "management UI on loopback"


def test_management_and_prometheus_plugins_are_enabled() -> None:
    assert enabled_plugins() == {"rabbitmq_management", "rabbitmq_prometheus"}
