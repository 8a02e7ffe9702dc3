"""The Python base the image test builds gongji's Dockerfile on, made here, never pulled.

No registry can be reached for images, so ``python:3.11-slim-bookworm`` is replaced by a
Debian bookworm that ``debootstrap`` makes (minbase with python3, python3-venv and
python-is-python3, so ``python`` is the 3.11 the Dockerfile expects) and ``docker import``
turns into an image: ``ROOTFS_TAG``, made once and kept by the engine. On top of it, a
layer of a second or so holds this machine's CA bundle and a pip.conf naming it, so pip
inside the build reaches the package index through whatever TLS proxy this machine
trusts: ``BASE_TAG``, rebuilt (from the layer cache) whenever the bundle changes.

``GONGJI_PYTHON_IMAGE`` names a base to use instead (e.g. ``python:3.11-slim-bookworm``
where the engine can pull it).
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.image.engine import Engine, with_system_path

ROOTFS_TAG = "gongji-base:bookworm-rootfs"
BASE_TAG = "gongji-base:bookworm"
OVERRIDE_ENV = "GONGJI_PYTHON_IMAGE"
SUITE = "bookworm"
PACKAGES = ("python3", "python3-venv", "python-is-python3")
BUILD_LOCK = Path("/run/gongji-docker.base.lock")
DEBOOTSTRAP_TIMEOUT_S = 900.0
# Of no use in an image, and a third of the tree.
PRUNED = (
    "var/cache/apt/archives",
    "var/lib/apt/lists",
    "usr/share/doc",
    "usr/share/man",
    "usr/share/locale",
)
LOG = Path("/var/log/gongji-debootstrap.log")


class BaseUnavailable(RuntimeError):
    """The base cannot be made here; ``str(error)`` is one line."""


def ensure_base_image(engine: Engine) -> str:
    """The tag of a Python 3.11 base for ``--build-arg PYTHON_IMAGE``."""
    given = os.environ.get(OVERRIDE_ENV)
    if given:
        return given
    with BUILD_LOCK.open("ab") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one debootstrap at a time on this machine
        if not engine.has_image(ROOTFS_TAG):
            _import_rootfs(engine)
        _add_ca_layer(engine)
    return BASE_TAG


def _import_rootfs(engine: Engine) -> None:
    env = with_system_path(os.environ)
    debootstrap = shutil.which("debootstrap", path=env["PATH"])
    if debootstrap is None:
        raise BaseUnavailable(
            "no debootstrap to make the Python base image (scripts/ensure-docker installs "
            f"it), or set {OVERRIDE_ENV} to a base the engine has"
        )
    work = Path(tempfile.mkdtemp(prefix="gongji-base-", dir="/var/tmp"))
    try:
        rootfs = work / "rootfs"
        argv = [
            debootstrap,
            "--variant=minbase",
            f"--include={','.join(PACKAGES)}",
            SUITE,
            str(rootfs),
            *_mirror(),
        ]
        with LOG.open("wb") as out:
            done = subprocess.run(
                argv, stdout=out, stderr=subprocess.STDOUT, env=env, timeout=DEBOOTSTRAP_TIMEOUT_S
            )
        if done.returncode != 0:
            raise BaseUnavailable(f"debootstrap {SUITE} failed: {_reason(LOG)}")
        for relative in PRUNED:
            _empty(rootfs / relative)
        archive = work / "rootfs.tar"
        subprocess.run(["tar", "-C", str(rootfs), "-cf", str(archive), "."], check=True)
        # The official image's settings that matter to Python and to the Dockerfile.
        engine.docker(
            "import",
            "--change",
            "ENV LANG=C.UTF-8",
            "--change",
            'CMD ["python3"]',
            "-",
            ROOTFS_TAG,
            input_file=archive,
            timeout_s=300,
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _add_ca_layer(engine: Engine) -> None:
    bundle = Path(os.environ.get("SSL_CERT_FILE") or "/etc/ssl/certs/ca-certificates.crt")
    if not bundle.is_file():
        raise BaseUnavailable(f"no CA bundle at {bundle} for pip inside the build")
    with tempfile.TemporaryDirectory(prefix="gongji-base-ca-") as context:
        shutil.copyfile(bundle, Path(context, "ca-certificates.crt"))
        Path(context, "pip.conf").write_text(
            "[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n"
        )
        Path(context, "Dockerfile").write_text(
            f"FROM {ROOTFS_TAG}\n"
            "COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt\n"
            "COPY pip.conf /etc/pip.conf\n"
        )
        engine.docker("build", "--quiet", "--tag", BASE_TAG, context)


def _mirror() -> list[str]:
    """This machine's Debian mirror (its apt sources), else debootstrap's default."""
    sources = Path("/etc/apt/sources.list.d/debian.sources")
    if sources.is_file():
        for stanza in sources.read_text().split("\n\n"):
            suites = re.search(r"^Suites:(.*)$", stanza, re.MULTILINE)
            uris = re.search(r"^URIs:\s*(\S+)", stanza, re.MULTILINE)
            if suites and uris and SUITE in suites.group(1).split():
                return [uris.group(1)]
    listed = Path("/etc/apt/sources.list")
    if listed.is_file():
        found = re.search(rf"^deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+{SUITE}\s", listed.read_text(), re.M)
        if found:
            return [found.group(1)]
    return []


def _empty(directory: Path) -> None:
    if directory.is_dir():
        for child in directory.iterdir():
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()


def _reason(log: Path) -> str:
    lines = log.read_text(errors="replace").splitlines()
    errors = [line for line in lines if line.startswith("E:")]
    return ((errors or lines or ["no output"])[-1])[:200] + f" (log: {log})"
