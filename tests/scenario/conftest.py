"""Helpers for scenario tests: write a scenario file into a temporary directory."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

SMALL = """
name = "small"
seed = 3

[[regions]]
code = "420100"
name = "武汉市 Wuhan"
province = "湖北 Hubei"
enabled = true

[[regions]]
code = "510100"
name = "成都市 Chengdu"
province = "四川 Sichuan"
enabled = true
scope = "2021"
payment_order = "copayer_first"

[[regions]]
code = "110000"
name = "北京市 Beijing"
province = "北京 Beijing"
enabled = false
wallet_enabled = false
"""
"""A valid three-region scenario; tests append or replace lines to break it."""


@pytest.fixture
def write(tmp_path: Path) -> Callable[[str], Path]:
    def write(text: str, name: str = "x.toml") -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return write
