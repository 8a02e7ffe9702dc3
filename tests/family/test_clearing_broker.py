"""Clearing windows and reconciliation over the real RabbitMQ, driven by the real CLI.

A region "loses a commit" the way it happens in life: its database is restored from a
backup taken before the commit. Closing the window must find the mismatch, report it,
and repair it by driving the region to the clearinghouse's recorded decision.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
from typing import Any

import pytest

from contracts.operations import SubmitBill
from contracts.reasons import COMMITTED
from gongji.audit import audit_books
from regions.service import region_database
from tests.family.conftest import BEIJING, CHENGDU, REGIONS, SHANGHAI, WUHAN, Family

pytestmark = [pytest.mark.broker, pytest.mark.timeout(120)]


async def gongji(f: Family, *args: str) -> Any:
    """Run the real CLI against the test's broker namespace; return its JSON output."""
    return json.loads(await gongji_text(f, *args, "--json"))


async def pay(f: Family, tid: str, psn: str, amount: int) -> None:
    outcome = await f.client.submit(CHENGDU, SubmitBill(tid, psn, amount, f.client.address), 30)
    assert outcome.outcome == COMMITTED, outcome


async def test_window_positions_sum_to_zero_and_regions_reconcile(family: Family) -> None:
    f = family
    await f.seed_binding("b1", "A1", WUHAN, "B1", CHENGDU)
    await f.seed_binding("b2", "S1", SHANGHAI, "B2", CHENGDU)
    for i in range(6):
        await pay(f, f"t{i}", "B1" if i % 2 else "B2", 1_000 + i)
    report = await gongji(f, "admin", "close-window")
    assert report["window"] == 1 and report["transfers"] == 6
    assert report["net_sum_fen"] == 0
    taking_part = {p["region"] for p in report["positions"] if p["taking_part"]}
    assert taking_part == {WUHAN, SHANGHAI, CHENGDU}
    final = await _until_reconciled(f, window=1)
    assert final["disagreements"] == 0
    assert all(p["reconciled"] and p["disagreements"] == 0 for p in final["positions"])


async def test_lost_commit_is_found_reported_and_repaired(family: Family) -> None:
    f = family
    await f.seed_binding("b1", "A1", WUHAN, "B1", CHENGDU)
    await pay(f, "t1", "B1", 2_000)
    path = region_database(f.cluster.data_dir, CHENGDU)
    backup = path.with_suffix(".backup")
    await f.cluster.stop(f"region.{CHENGDU}")  # closing the store checkpoints the WAL
    shutil.copyfile(path, backup)
    await f.cluster.start_region(CHENGDU)
    await pay(f, "t2", "B1", 3_000)  # committed; then Chengdu is restored from before it
    await f.cluster.stop(f"region.{CHENGDU}")
    shutil.copyfile(backup, path)
    for suffix in ("-wal", "-shm"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)
    await f.cluster.start_region(CHENGDU)

    audit = audit_books(f.cluster.region_books(REGIONS))
    assert not audit.conserved  # the loss is real until reconciliation repairs it

    await gongji(f, "admin", "close-window")
    final = await _until_reconciled(f, window=1, repaired=1)
    assert (final["disagreements"], final["repaired"]) == (1, 1)
    store = f.cluster.region_store(CHENGDU)
    try:
        assert store.credit_amount("t2") == 3_000
    finally:
        store.close()
    audit = audit_books(f.cluster.region_books(REGIONS))
    assert audit.conserved and audit.books_balanced, audit.problems


async def _until_reconciled(
    f: Family, *, window: int, repaired: int = 0, timeout_s: float = 30
) -> Any:
    """Poll ``gongji report window`` until every region taking part has reconciled clean
    (bounded)."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        report = await gongji(f, "report", "window", str(window))
        clean = all(p["disagreements"] == 0 for p in report["positions"])
        reconciled = report["regions_reconciled"] == report["regions"]
        if reconciled and clean and report["repaired"] >= repaired:
            return report
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"window {window} did not reconcile clean: {report}")
        await asyncio.sleep(0.2)


async def gongji_text(f: Family, *args: str) -> str:
    """Run the real CLI (no --json) against the test's namespace; return what it printed."""
    code, out, err = await gongji_run(f, *args)
    assert code == 0, err
    return out


async def gongji_run(f: Family, *args: str) -> tuple[int, str, str]:
    """Run the real CLI against the test's namespace: its exit code, stdout and stderr."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gongji.cli",
        *args,
        "--amqp-url",
        f.amqp_url,
        "--namespace",
        f.topology.namespace,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_admin_enable_and_disable_change_a_running_cluster(family: Family) -> None:
    f = family
    await f.seed_binding("b1", "J2", BEIJING, "B1", CHENGDU)
    refused = await f.client.submit(CHENGDU, SubmitBill("t1", "B1", 1_000, f.client.address), 30)
    assert refused.outcome == "REGION_NOT_ENABLED"
    assert "enabled" in await gongji_text(f, "admin", "enable", BEIJING)
    await pay(f, "t2", "B1", 1_000)
    assert "disabled" in await gongji_text(f, "admin", "disable", BEIJING)
    again = await f.client.submit(CHENGDU, SubmitBill("t3", "B1", 1_000, f.client.address), 30)
    assert again.outcome == "REGION_NOT_ENABLED"


async def test_admin_enable_and_disable_answer_what_the_clearinghouse_did(family: Family) -> None:
    f = family
    said = [
        await gongji_text(f, "admin", action, BEIJING)
        for action in ("enable", "enable", "disable", "disable")
    ]
    assert said == [
        f"region {BEIJING}: enabled\n",
        f"region {BEIJING}: already enabled (nothing changed)\n",
        f"region {BEIJING}: disabled\n",
        f"region {BEIJING}: already disabled (nothing changed)\n",
    ]


async def test_admin_disable_of_an_unknown_region_fails_with_one_line(family: Family) -> None:
    code, out, err = await gongji_run(family, "admin", "disable", "999999")
    assert code != 0 and out == ""
    assert err == "gongji: region 999999 is not registered (nothing changed)\n"


async def test_close_window_waits_for_reconciliation_and_counts_agree(family: Family) -> None:
    f = family
    await f.seed_binding("b1", "A1", WUHAN, "B1", CHENGDU)
    await pay(f, "t1", "B1", 1_000)
    closed = await gongji(f, "admin", "close-window")
    # Beijing is registered disabled and had no transfer: listed apart, not counted.
    assert (closed["regions"], closed["regions_disabled"]) == (3, 1)
    assert closed["regions_reconciled"] == 3 and closed["regions_pending"] == []
    assert [p["region"] for p in closed["positions"] if not p["taking_part"]] == [BEIJING]
    text = await gongji_text(f, "report", "window", str(closed["window"]))
    assert "regions reconciled 3/3 (1 disabled);" in text
    beijing = next(line for line in text.splitlines() if line.startswith(BEIJING))
    assert beijing.endswith("disabled")
