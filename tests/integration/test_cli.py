"""The ``gongji`` command as a user runs it: a subprocess, the broker from ``AMQP_URL``."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def gongji(
    *args: str, amqp_url: str | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.pop("AMQP_URL", None)
    if amqp_url is not None:
        env["AMQP_URL"] = amqp_url
    return subprocess.run(
        [sys.executable, "-m", "gongji.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=ROOT,
        check=False,
    )


def closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.fixture(scope="module")
def demo(amqp_url: str) -> subprocess.CompletedProcess[str]:
    """One ``gongji demo --json --transfers 120`` run, shared by the checks below."""
    return gongji("demo", "--json", "--transfers", "120", amqp_url=amqp_url)


@pytest.mark.broker
@pytest.mark.timeout(120)
def test_demo_json_reports_outcomes_and_money(demo: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in demo.stderr
    report = json.loads(demo.stdout)
    assert report["transport"] == "rabbitmq"  # the real broker, not the simulated network
    assert report["outcomes"]["COMMITTED"] > 0
    assert report["outcomes"]["REGION_NOT_ENABLED"] > 0
    assert all(type(n) is int and n > 0 for n in report["outcomes"].values())
    assert report["books_balanced"] is True
    assert type(report["moved_fen"]) is int and report["moved_fen"] > 0


@pytest.mark.broker
@pytest.mark.timeout(120)
def test_demo_json_says_books_balanced_and_money_conserved(
    demo: subprocess.CompletedProcess[str],
) -> None:
    report = json.loads(demo.stdout)
    assert report["problems"] == []
    assert report["books_balanced"] is True
    assert report["conserved"] is True
    assert demo.returncode == 0, demo.stderr


@pytest.mark.timeout(30)
def test_region_with_a_bad_code_exits_2_naming_the_code() -> None:
    done = gongji("region", "--code", "12")

    assert done.returncode == 2
    assert "'12'" in done.stderr and "6-digit region code" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["demo", "--transfers", "5"], id="demo"),
        pytest.param(["region", "--code", "420100", "--metrics-port", "0"], id="region"),
        pytest.param(["clearinghouse", "--metrics-port", "0"], id="clearinghouse"),
    ],
)
def test_unreachable_broker_exits_1_with_a_clear_message(args: list[str], tmp_path: Path) -> None:
    url = f"amqp://guest:s3cret@127.0.0.1:{closed_port()}/"
    if args[0] != "demo":
        args = [*args, "--data-dir", str(tmp_path)]

    done = gongji(*args, "--amqp-url", url)

    assert done.returncode == 1, done.stderr
    assert "gongji: cannot reach RabbitMQ at amqp://guest:******@127.0.0.1" in done.stderr
    assert "AMQP_URL" in done.stderr
    assert "s3cret" not in done.stderr
    assert "Traceback" not in done.stderr
    assert done.stdout == ""


@pytest.mark.timeout(30)
def test_malformed_broker_url_exits_1_with_a_clear_message() -> None:
    done = gongji("demo", "--transfers", "5", "--amqp-url", "amqp://[not-a-host")

    assert done.returncode == 1, done.stderr
    assert "gongji: cannot reach RabbitMQ" in done.stderr
    assert "invalid URL" in done.stderr
    assert "Traceback" not in done.stderr
