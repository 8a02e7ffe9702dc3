"""``gongji logs SERVICE [--transfer ID] [--follow]``, and the INFO logs it reads."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.cli.conftest import ROOT, RunningCluster, gongji


def event(service: str, timestamp: str, transfer_id: str | None, name: str) -> str:
    fields = {"service": service, "event": name, "timestamp": timestamp}
    if transfer_id is not None:
        fields["transfer_id"] = transfer_id
    return json.dumps(fields)


def write_logs(data_dir: Path, logs: dict[str, list[str]]) -> None:
    """Log files as a cluster leaves them in its directory after ``cluster down``."""
    (data_dir / "logs").mkdir(parents=True)
    for service, lines in logs.items():
        (data_dir / "logs" / f"{service}.log").write_text("".join(f"{x}\n" for x in lines))


@pytest.fixture
def left_logs(tmp_path: Path) -> Path:
    write_logs(
        tmp_path,
        {
            "clearinghouse": [
                event("clearinghouse", "2026-01-01T00:00:01Z", None, "service_started"),
                event("clearinghouse", "2026-01-01T00:00:03Z", "t-1", "transfer_finished"),
                event("clearinghouse", "2026-01-01T00:00:05Z", "t-2", "transfer_finished"),
            ],
            "region-420100": [
                event("region-420100", "2026-01-01T00:00:02Z", "t-1", "transfer_finished"),
                "Traceback (most recent call last): not JSON",
                event("region-420100", "2026-01-01T00:00:04Z", "t-10", "transfer_finished"),
            ],
        },
    )
    return tmp_path


@pytest.mark.timeout(30)
def test_one_services_log_is_printed_as_written(left_logs: Path) -> None:
    done = gongji("logs", "region-420100", "--data-dir", str(left_logs))

    assert done.returncode == 0, done.stderr
    assert done.stdout == (left_logs / "logs" / "region-420100.log").read_text()


@pytest.mark.timeout(30)
def test_transfer_picks_that_transfers_lines_from_every_service_in_time_order(
    left_logs: Path,
) -> None:
    done = gongji("logs", "all", "--transfer", "t-1", "--data-dir", str(left_logs))

    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert done.returncode == 0, done.stderr
    # t-10 is another transfer, though its id starts with t-1.
    assert [(x["service"], x["transfer_id"]) for x in lines] == [
        ("region-420100", "t-1"),
        ("clearinghouse", "t-1"),
    ]


@pytest.mark.timeout(30)
def test_a_region_may_be_named_by_its_code(left_logs: Path) -> None:
    done = gongji("logs", "420100", "--transfer", "t-10", "--data-dir", str(left_logs))

    assert done.returncode == 0, done.stderr
    assert [json.loads(x)["transfer_id"] for x in done.stdout.splitlines()] == ["t-10"]


@pytest.mark.timeout(30)
def test_an_unknown_service_is_one_line_naming_those_there_are(left_logs: Path) -> None:
    done = gongji("logs", "region-999999", "--data-dir", str(left_logs))

    assert done.returncode == 2
    assert done.stderr == (
        f"gongji: no service 'region-999999' in {left_logs}; there are: clearinghouse, "
        "region-420100 (or all)\n"
    )


@pytest.mark.timeout(30)
def test_no_logs_at_all_is_one_line(tmp_path: Path) -> None:
    done = gongji("logs", "clearinghouse", "--data-dir", str(tmp_path))

    assert done.returncode == 2
    assert done.stderr.startswith(f"gongji: no service logs in {tmp_path} ")
    assert done.stderr.count("\n") == 1


@pytest.mark.timeout(30)
def test_follow_prints_each_new_line_of_the_transfer_once_it_is_complete(
    left_logs: Path,
) -> None:
    log = left_logs / "logs" / "clearinghouse.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("GONGJI_")}
    argv = ["logs", "clearinghouse", "--follow", "--transfer", "t-2"]
    follower = subprocess.Popen(
        [sys.executable, "-m", "gongji.cli", *argv, "--data-dir", str(left_logs)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**env, "PYTHONPATH": str(ROOT)},
    )
    assert follower.stdout is not None
    received: list[str] = []
    reader = threading.Thread(target=lambda: received.extend(follower.stdout or []))
    reader.start()
    try:
        later = event("clearinghouse", "2026-01-01T00:00:06Z", "t-2", "repaired")
        with log.open("a") as file:
            file.write(event("clearinghouse", "2026-01-01T00:00:06Z", "t-3", "x") + "\n")
            file.write(later[:20])  # half a line: not printed until it is complete
            file.flush()
            time.sleep(1.0)  # several polls of the follower
            file.write(later[20:] + "\n")
        deadline = time.monotonic() + 10
        while len(received) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        follower.send_signal(signal.SIGINT)
        follower.wait(timeout=10)
        reader.join(timeout=10)

    assert [json.loads(x)["event"] for x in received] == ["transfer_finished", "repaired"]
    assert follower.returncode == 130
    assert follower.stderr is not None and "Traceback" not in follower.stderr.read()


@pytest.mark.broker
@pytest.mark.timeout(90)
def test_cluster_services_log_each_transfer_at_info_by_default(
    running_cluster: RunningCluster,
) -> None:
    data_dir = str(running_cluster.data_dir)
    load = gongji(
        "load", "--data-dir", data_dir, "--rate", "20", "--duration", "1", "--no-progress"
    )
    assert load.returncode == 0, load.stderr
    finished = [
        json.loads(line)
        for line in (running_cluster.data_dir / "logs" / "clearinghouse.log")
        .read_text()
        .splitlines()
        if '"transfer_finished"' in line
    ]
    transfer_id = finished[0]["transfer_id"]

    done = gongji("logs", "all", "--transfer", transfer_id, "--data-dir", data_dir)

    assert f"logs:          {running_cluster.data_dir / 'logs'}" in running_cluster.up.stdout
    assert len(finished) >= 20
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert {x["transfer_id"] for x in lines} == {transfer_id}
    # The payee region, which has the bill, and the clearinghouse both tell of it.
    assert {x["service"] for x in lines} >= {"clearinghouse"}
    assert len({x["service"] for x in lines}) >= 2
