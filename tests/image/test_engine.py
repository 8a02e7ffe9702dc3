"""The engine's finder, without an engine: what it says when there is none."""

from __future__ import annotations

import pytest

from tests.image.engine import HOST_ENV, EngineUnavailable, open_engine, with_system_path


def test_an_engine_named_but_not_answering_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(HOST_ENV, "unix:///nonexistent/docker.sock")

    with pytest.raises(EngineUnavailable) as raised:
        open_engine()

    message = str(raised.value)
    assert message == f"{HOST_ENV}=unix:///nonexistent/docker.sock: no Docker engine answers there"


def test_the_system_path_reaches_runc_and_chroot_from_any_path() -> None:
    path = with_system_path({"PATH": "/home/me/bin:/usr/bin", "HOME": "/home/me"})

    assert path["HOME"] == "/home/me"
    directories = path["PATH"].split(":")
    assert directories[:2] == ["/home/me/bin", "/usr/bin"]  # the caller's first, kept
    assert {"/usr/sbin", "/sbin"} <= set(directories)
    assert directories.count("/usr/bin") == 1
    assert with_system_path({})["PATH"].split(":")[0] == "/usr/local/sbin"
