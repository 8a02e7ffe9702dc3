"""scripts/ensure-docker: an install that cannot run is one line, and ./check goes on."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.scripts.test_ensure_prometheus import LOCKED_APT_GET, ROOT, TOOLS

SCRIPT = ROOT / "scripts" / "ensure-docker"


def run_without_docker(tmp_path: Path, apt_get: str | None) -> subprocess.CompletedProcess[str]:
    """The script on a PATH of the basic tools only (no dockerd, no debootstrap), with
    ``apt-get`` as given."""
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
        (bin_dir / "sudo").write_text('#!/bin/bash\n[[ "$1" == -n ]] && shift\nexec "$@"\n')
        (bin_dir / "sudo").chmod(0o755)
    return subprocess.run(
        [str(bin_dir / "bash"), str(SCRIPT)],
        capture_output=True,
        text=True,
        env={"PATH": str(bin_dir), "TMPDIR": str(tmp_path)},
        timeout=30,
        check=False,
    )


@pytest.mark.timeout(30)
def test_a_taken_dpkg_lock_is_reported_in_one_line(tmp_path: Path) -> None:
    done = run_without_docker(tmp_path, LOCKED_APT_GET)

    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert lines[0] == (
        "ensure-docker: installing the Debian packages docker.io debootstrap (for the image test)"
    )
    assert len(lines) == 2, done.stderr
    assert "Could not get lock /var/lib/dpkg/lock-frontend" in lines[1]
    assert lines[1].endswith("the image test is skipped")
    assert "Reading package lists" in (tmp_path / "ensure-docker.log").read_text()


@pytest.mark.timeout(30)
def test_no_apt_get_is_reported_in_one_line(tmp_path: Path) -> None:
    done = run_without_docker(tmp_path, None)

    assert done.returncode == 1
    assert done.stderr.count("\n") == 1
    assert "ensure-docker: not installed: no apt-get here" in done.stderr


@pytest.mark.timeout(30)
def test_installed_it_says_nothing(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "bash").symlink_to(shutil.which("bash") or "/bin/bash")
    for tool in ("dockerd", "debootstrap"):
        (bin_dir / tool).write_text("#!/bin/sh\n")
        (bin_dir / tool).chmod(0o755)
    done = subprocess.run(
        [str(bin_dir / "bash"), str(SCRIPT)],
        capture_output=True,
        text=True,
        env={"PATH": str(bin_dir)},
        timeout=30,
        check=False,
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
