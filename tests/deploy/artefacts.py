"""The deployment artefacts (compose.yaml, Dockerfile, deploy/**) as data, for the tests.

No pytest fixtures here: plain functions over the files in the repository, plus the
bridge to gongji's own command-line parser.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import re
import shlex
import shutil
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from fnmatch import fnmatch
from functools import cache
from pathlib import Path, PurePosixPath
from typing import Any
from unittest import mock
from urllib.parse import unquote, urlsplit

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "compose.yaml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
DEPLOY = ROOT / "deploy"
RABBITMQ_CONF = DEPLOY / "rabbitmq" / "rabbitmq.conf"
RABBITMQ_DEFINITIONS = DEPLOY / "rabbitmq" / "definitions.json"
RABBITMQ_PLUGINS = DEPLOY / "rabbitmq" / "enabled_plugins"
PROMETHEUS_CONFIG = DEPLOY / "prometheus" / "prometheus.yml"
ALERTS = DEPLOY / "prometheus" / "alerts.yml"
ALERTS_TEST = DEPLOY / "prometheus" / "alerts_test.yml"
GRAFANA = DEPLOY / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "gongji.json"


def pyproject() -> dict[str, Any]:
    with (ROOT / "pyproject.toml").open("rb") as f:
        return tomllib.load(f)


def installed_packages() -> list[Path]:
    """Top-level package directories `pip install .` takes (setuptools find include)."""
    patterns = pyproject()["tool"]["setuptools"]["packages"]["find"]["include"]
    return sorted(
        p
        for p in ROOT.iterdir()
        if (p / "__init__.py").is_file() and any(fnmatch(p.name, pat) for pat in patterns)
    )


def load_yaml(path: Path) -> Any:
    with path.open(encoding="utf-8") as f:
        return yaml.safe_load(f)


@cache
def compose() -> dict[str, Any]:
    data = load_yaml(COMPOSE)
    assert isinstance(data, dict), f"{COMPOSE} is not a mapping"
    return data


def services() -> dict[str, dict[str, Any]]:
    found = compose().get("services")
    assert isinstance(found, dict) and found, "compose.yaml has no services"
    return found


def builds_gongji(service: Mapping[str, Any]) -> bool:
    """Whether the service runs the image built from this repository's Dockerfile."""
    build = service.get("build")
    context = build if isinstance(build, str) else (build or {}).get("context")
    return context in (".", "./")


def gongji_services() -> dict[str, dict[str, Any]]:
    return {name: s for name, s in services().items() if builds_gongji(s)}


def long_running(service: Mapping[str, Any]) -> bool:
    """A gongji service that stays up (and serves metrics), not a one-shot command."""
    return service.get("restart") in ("always", "unless-stopped")


def environment(service: Mapping[str, Any]) -> dict[str, str]:
    """The service's ``environment`` in either compose form, values as strings."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        pairs = (item.split("=", 1) if "=" in item else (item, "") for item in env)
        return {k: v for k, v in pairs}
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def image_env() -> dict[str, str]:
    """ENV of the Dockerfile's final stage: what every gongji container starts with."""
    from tests.deploy.dockerfile import stages

    return stages(DOCKERFILE)[1][-1].env()


def container_env(service: Mapping[str, Any]) -> dict[str, str]:
    """The environment a gongji service's process sees: the image's, then compose's."""
    return image_env() | environment(service)


def command(service: Mapping[str, Any]) -> list[str]:
    cmd = service.get("command") or []
    return shlex.split(cmd) if isinstance(cmd, str) else [str(a) for a in cmd]


@dataclass(frozen=True)
class Mount:
    source: str
    target: str
    read_only: bool

    @property
    def is_bind(self) -> bool:
        return self.source.startswith((".", "/"))

    def host_path(self) -> Path:
        return (ROOT / self.source).resolve()


def mounts(service: Mapping[str, Any]) -> list[Mount]:
    found = []
    for volume in service.get("volumes") or []:
        if isinstance(volume, str):
            parts = volume.split(":")
            read_only = len(parts) > 2 and "ro" in parts[2].split(",")
            found.append(Mount(parts[0], parts[1], read_only))
        else:
            found.append(
                Mount(str(volume["source"]), str(volume["target"]), bool(volume.get("read_only")))
            )
    return found


def mount_for(service: Mapping[str, Any], container_path: str) -> tuple[Mount, Path] | None:
    """The bind mount that provides ``container_path``, and that path on the host."""
    wanted = PurePosixPath(container_path)
    for mount in mounts(service):
        target = PurePosixPath(mount.target)
        if mount.is_bind and (wanted == target or target in wanted.parents):
            return mount, mount.host_path() / wanted.relative_to(target)
    return None


def container_ports(service: Mapping[str, Any]) -> set[int]:
    """Ports the service's container is declared to listen on (``expose`` and ``ports``)."""
    found = {int(str(p).split("/")[0]) for p in service.get("expose") or []}
    for port in service.get("ports") or []:
        if isinstance(port, dict):
            found.add(int(port["target"]))
        else:
            found.add(int(str(port).split("/")[0].rsplit(":", 1)[-1]))
    return found


@dataclass(frozen=True)
class AmqpUrl:
    user: str
    password: str
    host: str
    port: int
    vhost: str


def parse_amqp_url(url: str) -> AmqpUrl:
    parts = urlsplit(url)
    assert parts.scheme == "amqp", f"{url!r}: expected an amqp:// URL"
    return AmqpUrl(
        user=unquote(parts.username or ""),
        password=unquote(parts.password or ""),
        host=parts.hostname or "",
        port=parts.port or 5672,
        vhost=unquote(parts.path[1:]) if len(parts.path) > 1 else "/",
    )


class CommandError(AssertionError):
    """gongji's parser refused a command line; the message is argparse's."""


def parse_command(argv: list[str], env: Mapping[str, str]) -> argparse.Namespace:
    """Parse ``gongji <argv>`` with the real parser, as in a process with exactly ``env``.

    Option defaults come from the environment when the parser is built, so it is built
    inside the patched environment.
    """
    from gongji.cli import build_parser

    err = io.StringIO()
    with mock.patch.dict(os.environ, dict(env), clear=True), contextlib.redirect_stderr(err):
        try:
            return build_parser().parse_args(argv)
        except SystemExit:
            raise CommandError(err.getvalue().strip()) from None


def command_names() -> tuple[str, ...]:
    from gongji.commands import COMMANDS

    return COMMANDS


def require_tool(name: str, hint: str, *candidates: str) -> str:
    """The path of tool ``name``; fails under CI (``CI`` set), else skips, when missing."""
    for candidate in (os.environ.get(name.upper().replace("-", "_")), *candidates):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which(name)
    if found:
        return found
    message = f"{name} not found: {hint}"
    if os.environ.get("CI"):
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def promtool() -> str:
    return require_tool("promtool", "run scripts/ensure-prometheus (Debian package prometheus)")


def conf_settings(path: Path) -> dict[str, str]:
    """``key = value`` lines of a RabbitMQ (sysctl-format) config file."""
    settings: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        assert sep, f"{path}: not a key = value line: {line!r}"
        assert key.strip() not in settings, f"{path}: {key.strip()} set twice"
        settings[key.strip()] = value.strip()
    return settings


def enabled_plugins(path: Path = RABBITMQ_PLUGINS) -> set[str]:
    """The plugins named in a RabbitMQ ``enabled_plugins`` file (an Erlang list term)."""
    text = path.read_text(encoding="utf-8").strip()
    match = re.fullmatch(r"\[\s*([a-z0-9_,\s]*)\]\s*\.", text)
    assert match, f"{path}: not an Erlang list of plugin names ending in '.': {text!r}"
    return {p.strip() for p in match.group(1).split(",") if p.strip()}


@contextlib.contextmanager
def changed_env(**values: str) -> Iterator[None]:
    with mock.patch.dict(os.environ, values):
        yield
