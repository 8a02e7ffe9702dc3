"""A clearinghouse restart after a long downtime: fresh deadlines, no spurious TIMEOUT.

The clearinghouse decides and saves a step, then stops before the step's message leaves
(the message is lost with it). Ten minutes later it starts again and re-sends the step;
the regions answer at once. The time it was down is not the regions' delay, so the
transfer commits instead of timing out on a deadline that passed while nobody could
answer.
"""

from __future__ import annotations

import pytest

from clearinghouse.core import ClearinghouseCore
from clearinghouse.store import ClearinghouseStore
from clearinghouse.transfer_states import TransferEvent, TransferState
from contracts.effects import Retried
from contracts.identifiers import CLEARINGHOUSE, region_address
from contracts.operations import Commit, Operation, QueryBalance, Reserve, SubmitBill
from contracts.reasons import COMMITTED
from gongji.loopback import Loopback
from tests.cores.test_copayment_flow import CHENGDU, CLIENT, world

DOWNTIME_MS = 600_000
"""Ten minutes: longer than every deadline of the coordinator's settings."""
SHORT_DOWNTIME_MS = 30_000
"""Longer than the retry pacing, shorter than the payer's hold (which would expire)."""
SHELL_TICK_MS = 250
"""The shell's first tick after the restart, before any answer is back."""


def _crash_when_sending(net: Loopback, kind: type[Operation]) -> None:
    """Deliver until the clearinghouse has saved the step that sends ``kind``, then lose
    what it sent with it (as a crash between commit and publish does)."""
    while not any(isinstance(item.op, kind) for item in net.queue):
        net._deliver(net.queue.popleft())
    net.queue.clear()


def _restart(net: Loopback, downtime_ms: int) -> list[Operation]:
    """A new clearinghouse over the same database, after the downtime; what it re-sent."""
    net.now_ms += downtime_ms
    old = net.clearinghouse
    net.clearinghouse = ClearinghouseCore(ClearinghouseStore(old.store.db), old.settings)
    with net.clearinghouse.store.db.transaction():
        resumed = net.clearinghouse.resume(net.now_ms)
    net.take(CLEARINGHOUSE, resumed)
    return [o.op for o in resumed.outgoing]


@pytest.mark.parametrize(
    ("beneficiary", "lost", "state", "downtime_ms"),
    [
        ("B1", Reserve, TransferState.RESERVING, DOWNTIME_MS),
        ("B2", QueryBalance, TransferState.QUOTING, DOWNTIME_MS),  # two co-payers
        ("B1", Commit, TransferState.COMMITTING, SHORT_DOWNTIME_MS),
    ],
)
def test_a_resume_after_a_long_downtime_then_a_prompt_answer_commits(
    beneficiary: str, lost: type[Operation], state: TransferState, downtime_ms: int
) -> None:
    net = world()
    net.send(region_address(CHENGDU), SubmitBill("t1", beneficiary, 5_000, CLIENT))
    _crash_when_sending(net, lost)
    resent = _restart(net, downtime_ms)
    assert resent and all(isinstance(op, lost) for op in resent)
    t = net.clearinghouse.store.transfer("t1")
    assert t is not None and t.state is state
    assert t.next_action_ms is not None and t.next_action_ms > net.now_ms + SHELL_TICK_MS

    net.events[CLEARINGHOUSE].clear()
    net.advance(SHELL_TICK_MS)  # the first tick comes before the answer
    assert [e for e in net.events[CLEARINGHOUSE] if isinstance(e, Retried)] == []
    assert sum(isinstance(item.op, lost) for item in net.queue) == len(resent)  # not twice
    net.deliver_all()

    [outcome] = net.outcomes["t1"]
    assert outcome.outcome == COMMITTED and outcome.paid_fen == 5_000
    events = [h.event for h in net.clearinghouse.store.history("t1")]
    assert TransferEvent.RESERVE_TIMEOUT not in events and events[-1] is TransferEvent.CREDITED
