"""``gongji report transfer ID``: one transfer's timeline from the running services' files.

The cluster runs on the real broker while the timeline is read, and keeps working after
(the report opens every file read-only, so it never holds a service's write lock).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clearinghouse.store import TransferState
from contracts.reasons import COMMITTED, ReasonCode
from gongji.timeline import format_timeline, read_timeline
from tests.integration.conftest import CHENGDU, WUHAN, World, eventually, transfer_record
from tests.integration.test_cli import gongji

pytestmark = [pytest.mark.broker, pytest.mark.timeout(60)]


async def _final(world: World, transfer_id: str) -> None:
    def done() -> bool:
        t = transfer_record(world.cluster, transfer_id)
        return t is not None and t.state.final

    await eventually(done, f"the clearinghouse finished {transfer_id}")


async def test_a_committed_bill_shows_every_step_in_both_regions(
    world: World, data_dir: Path
) -> None:
    outcome = await world.pay(CHENGDU, "B1", 12_000, "rt-paid")
    assert outcome.outcome == COMMITTED
    await _final(world, "rt-paid")

    timeline = read_timeline(data_dir, "rt-paid")  # the services are running

    assert timeline is not None and timeline.transfer is not None
    assert timeline.transfer["state"] == TransferState.COMMITTED
    states = [(h["from_state"], h["to_state"], h["event"]) for h in timeline.history]
    assert states == [
        (None, "received", "request_received"),
        ("received", "reserving", "payer_known"),
        ("reserving", "committing", "reserve_held"),
        ("committing", "crediting", "commit_posted"),
        ("crediting", "committed", "credited"),
    ]
    wuhan, chengdu = timeline.regions[WUHAN], timeline.regions[CHENGDU]
    assert wuhan.hold is not None and (wuhan.hold["state"], wuhan.hold["held_fen"]) == (
        "posted",
        12_000,
    )
    assert [j["phase"] for j in wuhan.journal] == ["pending", "post"]
    assert chengdu.credit is not None and chengdu.credit["amount_fen"] == 12_000
    assert chengdu.bill is not None and (chengdu.bill["state"], chengdu.bill["paid_fen"]) == (
        "settled",
        12_000,
    )
    entries = timeline.entries()
    assert [e.at_ms for e in entries] == sorted(e.at_ms for e in entries)
    places = [e.place for e in entries]
    assert {"clearinghouse", f"region {WUHAN}", f"region {CHENGDU}"} == set(places)
    text = format_timeline(timeline)
    assert text.splitlines()[0].startswith("transfer rt-paid: copay of 12000 fen for B1")
    assert "crediting -> committed on credited" in text and "hold posted" in text

    # The command, as a user runs it, while the services still run; then they go on.
    shown = gongji("report", "transfer", "rt-paid", "--data-dir", str(data_dir), "--json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["history"] == timeline.history
    later = await world.pay(CHENGDU, "B1", 1_000)
    assert later.outcome == COMMITTED


async def test_a_refused_bill_and_one_its_region_settled_alone(
    world: World, data_dir: Path
) -> None:
    zero = await world.pay(CHENGDU, "B3", 4_000, "rt-zero")  # A0 has nothing
    assert zero.reason is ReasonCode.ZERO_BALANCE
    await _final(world, "rt-zero")
    timeline = read_timeline(data_dir, "rt-zero")
    assert timeline is not None and timeline.transfer is not None
    assert [h["to_state"] for h in timeline.history][-1] == "aborted"
    hold = timeline.regions[WUHAN].hold
    assert hold is not None and (hold["state"], hold["held_fen"]) == ("refused", 0)
    assert timeline.regions[CHENGDU].credit is None

    # Not insured: Chengdu refuses it itself; the clearinghouse never hears of it.
    uninsured = await world.pay(CHENGDU, "N1", 4_000, "rt-local")
    assert uninsured.reason is ReasonCode.BENEFICIARY_NOT_INSURED
    local = read_timeline(data_dir, "rt-local")
    assert local is not None and local.transfer is None and local.history == []
    assert list(local.regions) == [CHENGDU]
    assert "unknown to the clearinghouse" in format_timeline(local)


def test_an_unknown_transfer_says_so_in_one_line(tmp_path: Path) -> None:
    empty = tmp_path / "nothing-here"
    empty.mkdir()
    shown = gongji("report", "transfer", "nope", "--data-dir", str(empty))
    assert shown.returncode == 1 and shown.stdout == ""
    assert shown.stderr.strip().count("\n") == 0 and "no clearinghouse database" in shown.stderr


async def test_an_id_no_file_knows(world: World, data_dir: Path) -> None:
    await world.pay(CHENGDU, "B1", 1_000, "rt-known")
    assert read_timeline(data_dir, "rt-never") is None
    shown = gongji("report", "transfer", "rt-never", "--data-dir", str(data_dir))
    assert shown.returncode == 1
    assert shown.stderr.strip() == f"gongji: no transfer rt-never in {data_dir}"
