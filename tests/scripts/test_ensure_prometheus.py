"""scripts/ensure-prometheus: an install that cannot run is one line, not a wall of output."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "ensure-prometheus"
# What the script runs besides promtool, prometheus, apt-get and sudo.
TOOLS = ("bash", "grep", "cut", "id", "rm", "cat", "flock", "true")

LOCKED_APT_GET = """#!/bin/bash
echo "Reading package lists..."
echo "E: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 4242 (apt-get)" >&2
echo "E: Unable to acquire the dpkg frontend lock (/var/lib/dpkg/lock-frontend)" >&2
exit 100
"""


def run_without_prometheus(tmp_path: Path, apt_get: str | None) -> subprocess.CompletedProcess[str]:
    """The script on a PATH of the basic tools only, with ``apt-get`` as given."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in TOOLS:
        found = shutil.which(tool)
        if found:
            (bin_dir / tool).symlink_to(found)
    if apt_get is not None:
        (bin_dir / "apt-get").write_text(apt_get)
        (bin_dir / "apt-get").chmod(0o755)
    if os.getuid() != 0:
        # As root no sudo is needed; otherwise a sudo that runs the command as is.
        (bin_dir / "sudo").write_text('#!/bin/bash\n[[ "$1" == -n ]] && shift\nexec "$@"\n')
        (bin_dir / "sudo").chmod(0o755)
    env = {"PATH": str(bin_dir), "TMPDIR": str(tmp_path)}
    return subprocess.run(
        [str(bin_dir / "bash"), str(SCRIPT)],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
        check=False,
    )


@pytest.mark.timeout(30)
def test_a_taken_dpkg_lock_is_reported_in_one_line(tmp_path: Path) -> None:
    done = run_without_prometheus(tmp_path, LOCKED_APT_GET)

    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert lines[0].startswith("ensure-prometheus: installing")
    assert len(lines) == 2, done.stderr
    assert "Could not get lock /var/lib/dpkg/lock-frontend" in lines[1]
    assert "tests that need promtool or prometheus are skipped" in lines[1]
    assert "Reading package lists" in (tmp_path / "ensure-prometheus.log").read_text()


@pytest.mark.timeout(30)
def test_no_apt_get_is_reported_in_one_line(tmp_path: Path) -> None:
    done = run_without_prometheus(tmp_path, None)

    assert done.returncode == 1
    assert done.stderr.count("\n") == 1
    assert "ensure-prometheus: not installed: no apt-get here" in done.stderr
