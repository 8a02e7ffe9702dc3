"""The Dockerfile and its build context, held against pyproject.toml and the CLI."""

from __future__ import annotations

import pytest

from gongji.commands.options import DEFAULT_METRICS_PORT
from tests.deploy.artefacts import DOCKERFILE, DOCKERIGNORE, ROOT, installed_packages, pyproject
from tests.deploy.dockerfile import DockerIgnore, Stage, stages

pytestmark = pytest.mark.timeout(60)


def final() -> Stage:
    return stages(DOCKERFILE)[1][-1]


def test_both_stages_use_a_slim_python_3_11_base() -> None:
    _, found = stages(DOCKERFILE)
    assert len(found) >= 2, "expected a build stage and a runtime stage"
    for stage in found:
        assert stage.base.startswith("python:3.11-slim"), stage.base
    assert found[0].base == found[-1].base, "the venv is copied between stages: same base"


def test_the_image_runs_as_a_non_root_user() -> None:
    users = final().all("USER")
    assert users, "no USER: the container would run as root"
    user = users[-1].args.split(":")[0]
    assert user not in ("root", "0"), user
    # USER comes after the last RUN, so nothing later runs as root by mistake.
    last_run = max(i.line for i in final().all("RUN"))
    assert users[-1].line > last_run


def test_the_entrypoint_is_the_gongji_cli() -> None:
    assert final().exec_form("ENTRYPOINT") == ["gongji"]
    scripts = pyproject()["project"]
    assert isinstance(scripts, dict) and scripts["scripts"]["gongji"] == "gongji.cli:main"


def test_the_project_is_installed_without_dev_extras() -> None:
    runs = " ".join(i.args for i in stages(DOCKERFILE)[1][0].all("RUN"))
    assert "pip install ." in runs
    assert "[dev]" not in runs and "-e " not in runs


def test_metrics_listen_on_all_interfaces_on_the_default_port() -> None:
    env = final().env()
    assert env["GONGJI_METRICS_HOST"] == "0.0.0.0"
    assert int(env["GONGJI_METRICS_PORT"]) == DEFAULT_METRICS_PORT
    exposed = {int(p.split("/")[0]) for i in final().all("EXPOSE") for p in i.args.split()}
    assert DEFAULT_METRICS_PORT in exposed


def test_the_data_directory_is_a_volume_the_user_owns() -> None:
    data_dir = final().env()["GONGJI_DATA_DIR"]
    assert data_dir in (final().exec_form("VOLUME") or [])
    runs = " ".join(i.args for i in final().all("RUN"))
    assert f"mkdir {data_dir}" in runs and f"chown gongji:gongji {data_dir}" in runs


def test_the_build_context_holds_every_package_and_nothing_else() -> None:
    """What .dockerignore lets through is what `pip install .` needs: no .venv, no tests."""
    ignore = DockerIgnore(DOCKERIGNORE)
    assert ignore.keeps("pyproject.toml")
    packages = installed_packages()
    assert {p.name for p in packages} >= {"contracts", "broker", "gongji", "telemetry"}
    for package in packages:
        for path in package.rglob("*.py"):
            if "__pycache__" not in path.parts:
                relative = path.relative_to(ROOT).as_posix()
                assert ignore.keeps(relative), f"{relative} is left out of the build context"
    outside = [".venv/bin/python", ".git/HEAD", "tests/conftest.py", "data/x.sqlite"]
    outside += ["gongji/__pycache__/cli.cpython-311.pyc", "bench/e2e.py", "compose.yaml"]
    outside += ["deploy/rabbitmq/definitions.json", "regions/region-420100.sqlite-wal"]
    for excluded in outside:
        assert not ignore.keeps(excluded), f"{excluded} would be sent to the image build"
    readme = pyproject()["project"]
    assert isinstance(readme, dict)
    assert ignore.keeps(str(readme.get("readme", "README.md")))


def test_every_copy_source_is_in_the_build_context() -> None:
    ignore = DockerIgnore(DOCKERIGNORE)
    for stage in stages(DOCKERFILE)[1]:
        for copy in stage.all("COPY"):
            words = [w for w in copy.args.split() if not w.startswith("--")]
            if any(w.startswith("--from") for w in copy.args.split()):
                continue
            for source in words[:-1]:
                assert source == "." or ignore.keeps(source), f"COPY {source}: not in context"
