"""A Docker engine for the image test: found, or started on a socket of its own.

Here no engine runs and nothing can be pulled, but Debian's ``docker.io`` package (which
``scripts/ensure-docker`` installs) brings a ``dockerd`` that runs as root without
touching the host's network: ``--iptables=false --bridge=none``, and containers on the
host's network only. It gets its own socket, data root, exec root and pid file, so it
never meets a system dockerd, and its data root keeps the images and the layer cache from
one run to the next.

A test session reuses an engine whose socket answers (and never stops it); it starts one
otherwise, and stops it at the end unless another session still uses it (each user holds
a shared lock on ``USERS_LOCK``). ``GONGJI_DOCKER_HOST`` names another engine to use
instead, which is never started nor stopped.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

SOCKET = Path("/run/gongji-docker.sock")
DATA_ROOT = Path("/var/lib/gongji-docker")
EXEC_ROOT = Path("/run/gongji-docker")
PIDFILE = EXEC_ROOT / "dockerd.pid"
LOG = Path("/var/log/gongji-dockerd.log")
START_LOCK = Path("/run/gongji-docker.start.lock")
USERS_LOCK = Path("/run/gongji-docker.users.lock")
HOST_ENV = "GONGJI_DOCKER_HOST"
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0
SYSTEM_PATH = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")


class EngineUnavailable(RuntimeError):
    """No engine answers and none can be started here; ``str(error)`` is one line."""


@dataclass
class Engine:
    """A Docker engine reached through the docker client."""

    host: str
    """``DOCKER_HOST`` of the engine, e.g. ``unix:///run/gongji-docker.sock``."""
    process: subprocess.Popen[bytes] | None = None
    """The dockerd this session started, if it did."""
    users_lock: IO[bytes] | None = None

    def env(self) -> dict[str, str]:
        # The legacy builder: BuildKit would need the buildx plugin, and its Dockerfile
        # frontend an image pulled from a registry.
        return {**os.environ, "DOCKER_HOST": self.host, "DOCKER_BUILDKIT": "0"}

    def docker(
        self,
        *args: str,
        timeout_s: float = 120.0,
        check: bool = True,
        input_file: Path | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``docker ARGS`` against this engine; raise with its stderr when it fails and
        ``check`` is set."""
        with contextlib.ExitStack() as stack:
            stdin = stack.enter_context(input_file.open("rb")) if input_file else None
            done = subprocess.run(
                [docker_client(), *args],
                stdin=stdin if stdin is not None else subprocess.DEVNULL,
                capture_output=True,
                env=self.env(),
                timeout=timeout_s,
                check=False,
            )
        result = subprocess.CompletedProcess(
            done.args,
            done.returncode,
            done.stdout.decode(errors="replace"),
            done.stderr.decode(errors="replace"),
        )
        if check and result.returncode != 0:
            raise DockerFailed(args, result)
        return result

    def has_image(self, tag: str) -> bool:
        return self.docker("image", "inspect", tag, check=False).returncode == 0


class DockerFailed(RuntimeError):
    def __init__(self, args: Sequence[str], result: subprocess.CompletedProcess[str]) -> None:
        tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-15:])
        super().__init__(f"docker {' '.join(args[:2])} exited {result.returncode}:\n{tail}")
        self.result = result


def docker_client() -> str:
    found = shutil.which("docker")
    if found is None:
        raise EngineUnavailable("no docker client on the PATH (Debian's docker.io has one)")
    return found


def with_system_path(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` with the system's sbin directories on its PATH: dockerd runs runc and
    debootstrap runs chroot from there, and a user's PATH may lack them."""
    path = env.get("PATH", "")
    missing = [d for d in SYSTEM_PATH if d not in path.split(":")]
    return {**env, "PATH": ":".join([path, *missing] if path else missing)}


def answers(host: str) -> bool:
    """Whether an engine answers at ``host``."""
    try:
        done = subprocess.run(
            [docker_client(), "version", "--format", "{{.Server.Version}}"],
            capture_output=True,
            env={**os.environ, "DOCKER_HOST": host},
            timeout=20,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return False
    return done.returncode == 0


def open_engine() -> Engine:
    """The engine of ``GONGJI_DOCKER_HOST``, else the private one (started if need be)."""
    docker_client()
    given = os.environ.get(HOST_ENV)
    if given:
        if not answers(given):
            raise EngineUnavailable(f"{HOST_ENV}={given}: no Docker engine answers there")
        return Engine(given)
    host = f"unix://{SOCKET}"
    try:
        users = _hold_shared(USERS_LOCK)
    except OSError as error:
        raise EngineUnavailable(
            f"cannot lock {USERS_LOCK} ({error.strerror}): the private dockerd needs root "
            f"(or set {HOST_ENV} to an engine)"
        ) from None
    with _exclusive(START_LOCK):
        if answers(host):
            return Engine(host, users_lock=users)
        try:
            process = _start_dockerd(host)
        except BaseException:
            users.close()
            raise
    return Engine(host, process, users)


def close_engine(engine: Engine) -> str | None:
    """Stop the dockerd this session started, unless another session uses it; a line
    saying what was left running, if anything was."""
    lock, process = engine.users_lock, engine.process
    engine.users_lock = engine.process = None
    if process is None:
        if lock is not None:
            lock.close()
        return None
    assert lock is not None
    try:
        # Turn this session's shared lock into an exclusive one: it fails while another
        # session holds its own.
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        return f"dockerd (pid {process.pid}) left running: another test session uses it"
    try:
        _stop(process)
    finally:
        lock.close()
    return None


def _start_dockerd(host: str) -> subprocess.Popen[bytes]:
    dockerd = shutil.which("dockerd", path=with_system_path(os.environ)["PATH"])
    if dockerd is None:
        raise EngineUnavailable(
            "no dockerd here: scripts/ensure-docker installs Debian's docker.io "
            f"(or set {HOST_ENV} to an engine)"
        )
    if os.geteuid() != 0:
        raise EngineUnavailable(f"starting dockerd needs root (or set {HOST_ENV} to an engine)")
    for directory in (DATA_ROOT, EXEC_ROOT):
        directory.mkdir(parents=True, exist_ok=True)
    argv = [
        dockerd,
        "--iptables=false",
        "--bridge=none",
        f"--host={host}",
        f"--data-root={DATA_ROOT}",
        f"--exec-root={EXEC_ROOT}",
        f"--pidfile={PIDFILE}",
    ]
    with LOG.open("wb") as log:  # this start's log only
        # A session of its own: the terminal's Ctrl-C goes to pytest, which stops it.
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            env=with_system_path(os.environ),
            start_new_session=True,
        )
    deadline = time.monotonic() + START_TIMEOUT_S
    while not answers(host):
        if process.poll() is not None or time.monotonic() > deadline:
            _stop(process)
            raise EngineUnavailable(f"dockerd did not start: {_last_line(LOG)} (log: {LOG})")
        time.sleep(0.2)
    return process


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)  # dockerd stops its containerd and shims itself
    try:
        process.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def _last_line(path: Path) -> str:
    try:
        lines = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "no log"
    return lines[-1][:300] if lines else "empty log"


def _hold_shared(path: Path) -> IO[bytes]:
    file = path.open("ab")
    fcntl.flock(file, fcntl.LOCK_SH)
    return file


@contextlib.contextmanager
def _exclusive(path: Path) -> Iterator[None]:
    with path.open("ab") as file:
        fcntl.flock(file, fcntl.LOCK_EX)
        yield
