"""Retries wait for a slow region: an answer that is late, not lost, is not sent for again."""

from __future__ import annotations

import pytest

from clearinghouse.response_times import ResponseTimes
from clearinghouse.store import TransferState
from contracts.effects import Retried
from contracts.identifiers import CLEARINGHOUSE, region_address
from contracts.operations import Commit, Reserve, SubmitBill
from contracts.reasons import COMMITTED
from gongji.loopback import Loopback
from tests.cores.test_copayment_flow import CHENGDU, CLIENT, WUHAN, world


def test_an_unknown_region_gets_the_floor() -> None:
    assert ResponseTimes().timeout_ms("420100", floor_ms=2_000) == 2_000


def test_fast_answers_keep_the_floor_and_slow_ones_raise_the_timeout() -> None:
    times = ResponseTimes()
    for _ in range(20):
        times.observe("fast", 50)
        times.observe("slow", 3_000)
    assert times.timeout_ms("fast", floor_ms=2_000) == 2_000
    assert times.timeout_ms("slow", floor_ms=2_000) >= 3_000


def test_the_timeout_follows_a_region_that_slows_down_and_recovers() -> None:
    times = ResponseTimes()
    times.observe("r", 100)
    times.observe("r", 8_000)
    slowed = times.timeout_ms("r", floor_ms=0)
    assert slowed > 8_000  # one late answer: the deviation makes room at once
    for _ in range(60):
        times.observe("r", 100)
    assert times.timeout_ms("r", floor_ms=0) < 200


def _commit_retried_after(payer_answer_ms: int) -> tuple[Loopback, list[Retried]]:
    """Run a co-payment whose payer answers the reserve after ``payer_answer_ms``; hold
    the Commit back, let 5 s pass, and return the retries the clearinghouse reported."""
    net = world()
    net.send(region_address(CHENGDU), SubmitBill("t1", "B1", 5_000, CLIENT))
    while not isinstance(net.queue[0].op, Reserve):
        net._deliver(net.queue.popleft())
    net.now_ms += payer_answer_ms  # the Reserve waits in a busy region's queue
    net._deliver(net.queue.popleft())  # Wuhan holds and answers
    net._deliver(net.queue.popleft())  # the clearinghouse decides: commit
    [held_back] = net.queue
    assert isinstance(held_back.op, Commit) and held_back.address == region_address(WUHAN)
    net.queue.clear()
    net.events[CLEARINGHOUSE].clear()
    net.advance(5_000)
    retries = [e for e in net.events[CLEARINGHOUSE] if isinstance(e, Retried)]
    resent = [item for item in net.queue if isinstance(item.op, Commit)]
    assert len(resent) == len(retries)  # every resend is reported (it feeds a metric)
    net.queue.append(held_back)
    net.deliver_all()
    return net, retries


@pytest.mark.parametrize(("answer_ms", "retried"), [(10, True), (4_000, False)])
def test_a_slow_payer_is_not_sent_the_commit_again_while_a_fast_one_is(
    answer_ms: int, retried: bool
) -> None:
    net, retries = _commit_retried_after(answer_ms)
    # A fast region that misses the 2 s floor gets the commit again (a lost message
    # would be); a region that took 4 s to answer gets more time first.
    assert retries == ([Retried("t1", "commit", WUHAN)] if retried else [])
    [outcome] = net.outcomes["t1"]
    assert outcome.outcome == COMMITTED
    t = net.clearinghouse.store.transfer("t1")
    assert t is not None and t.state is TransferState.COMMITTED
