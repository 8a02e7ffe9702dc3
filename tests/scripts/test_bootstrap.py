"""scripts/bootstrap: one line before a long install, nothing when the venv is current."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Stands in for python3, the venv's python and pip: records what it was asked to do.
FAKE_PYTHON = """#!/bin/bash
echo "$*" >> "$(dirname "$0")/../../calls"
if [[ "$1 $2" == "-m venv" ]]; then
    mkdir -p "$3/bin" && cp "$0" "$3/bin/python"
fi
exit 0
"""


def tree(tmp_path: Path) -> Path:
    """A copy of the repository's bootstrap next to a pyproject.toml, and a fake python."""
    root = tmp_path / "repo"
    (root / "scripts").mkdir(parents=True)
    shutil.copy(ROOT / "scripts" / "bootstrap", root / "scripts" / "bootstrap")
    (root / "pyproject.toml").write_text('[project]\nname = "x"\n')
    (tmp_path / "python").mkdir()
    python = tmp_path / "python" / "bin" / "python3"
    python.parent.mkdir()
    python.write_text(FAKE_PYTHON)
    python.chmod(0o755)
    return root


def bootstrap(root: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(root / "scripts" / "bootstrap")],
        capture_output=True,
        text=True,
        env={
            "PATH": "/usr/bin:/bin",
            "PYTHON": str(tmp_path / "python" / "bin" / "python3"),
            "TMPDIR": str(tmp_path),
        },
        timeout=30,
        check=False,
    )


@pytest.mark.timeout(30)
def test_says_it_installs_then_is_quiet_until_pyproject_changes(tmp_path: Path) -> None:
    root = tree(tmp_path)

    first = bootstrap(root, tmp_path)
    again = bootstrap(root, tmp_path)
    (root / "pyproject.toml").write_text('[project]\nname = "y"\n')
    changed = bootstrap(root, tmp_path)

    assert first.returncode == 0, first.stderr
    assert first.stderr.startswith("bootstrap: installing gongji and its dependencies")
    assert first.stderr.count("\n") == 1
    assert (again.returncode, again.stderr) == (0, "")
    assert changed.returncode == 0, changed.stderr
    assert changed.stderr.startswith("bootstrap: pyproject.toml changed; reinstalling")
    assert (root / "calls").read_text().count("-m pip install") == 2
    assert (root / ".venv" / ".bootstrap-stamp").is_file()
