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


def region_codes() -> list[str]:
    codes = []
    for service in gongji_services().values():
        argv = command(service)
        if argv[:1] == ["region"]:
            codes.append(argv[argv.index("--code") + 1])
    return codes


def allowed(regex: str, resource: str) -> bool:
    return re.search(regex, resource) is not None


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


def resources(namespace: str = "gongji") -> dict[str, str]:
    """The broker names gongji uses, computed by broker.topology."""
    topology = Topology(namespace=namespace)
    names = {
        "exchange": topology.exchange,
        "dead-letter exchange": topology.dead_letter_exchange,
        "dead-letter queue": topology.dead_letter_queue,
        "clearinghouse queue": topology.queue_for(CLEARINGHOUSE),
        "a client queue": topology.queue_for(client_address("load-1a2b3c")),
    }
    for code in region_codes():
        names[f"region {code} queue"] = topology.queue_for(region_address(code))
    return names


def needs(service: str) -> dict[str, set[str]]:
    """What a service must be allowed (declare: configure; publish/bind: write; consume:
    read; declaring a queue with a dead-letter exchange also needs read on the queue and
    write on the exchange) and, as ``"never-read"``, what it must not consume."""
    names = resources()
    base = {"exchange", "dead-letter exchange", "dead-letter queue"}
    read_base = {"exchange", "dead-letter exchange"}
    regions = {k for k in names if k.startswith("region ")}
    if service == "clearinghouse":
        own = {"clearinghouse queue"} | regions
        forbidden = {"dead-letter queue", "a client queue"}
    elif service.startswith("region-"):
        mine = f"region {service.removeprefix('region-')} queue"
        # A region declares the clearinghouse queue too, so its sends are never unroutable.
        own = {mine, "clearinghouse queue"}
        forbidden = {"dead-letter queue", "a client queue"} | (regions - {mine})
    else:  # the seed and the load generator: clients with a reply queue
        own = {"a client queue"}
        forbidden = {"dead-letter queue", "clearinghouse queue"} | regions
    return {
        "configure": base | own,
        "write": base | own,
        "read": read_base | own,
        "never-read": forbidden,
    }


@pytest.mark.parametrize("service", sorted(gongji_services()))
def test_permissions_fit_what_each_service_does_and_no_more(service: str) -> None:
    url = service_urls()[service]
    granted = permissions(url.user, url.vhost)
    names = resources()
    need = needs(service)
    for kind in ("configure", "write", "read"):
        for what in need[kind]:
            assert allowed(granted[kind], names[what]), f"{url.user} lacks {kind} on {what}"
    for what in need["never-read"]:
        assert not allowed(granted["read"], names[what]), f"{url.user} may read {what}"


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
