"""The commands' event loop: uvloop by default when installed, asyncio's on request."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest

from gongji import eventloop


async def loop_module() -> str:
    return type(asyncio.get_running_loop()).__module__.split(".")[0]


def test_uvloop_is_the_default_where_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("uvloop")
    monkeypatch.delenv(eventloop.ENV, raising=False)
    assert eventloop.loop_name() == "uvloop"
    assert eventloop.run(loop_module()) == "uvloop"


def test_the_standard_loop_on_request(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(eventloop.ENV, "asyncio")
    assert eventloop.run(loop_module()) == "asyncio"


def test_an_unknown_loop_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(eventloop.ENV, "tokio")
    with pytest.raises(ValueError, match=r"GONGJI_EVENT_LOOP='tokio' is not one of: uvloop"):
        eventloop.run(loop_module())


def test_the_cli_refuses_an_unknown_loop_before_doing_anything() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "gongji.cli", "demo"],
        env={"GONGJI_EVENT_LOOP": "tokio", "PATH": ""},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "GONGJI_EVENT_LOOP='tokio' is not one of: uvloop, asyncio" in result.stderr
    assert result.stdout == ""
