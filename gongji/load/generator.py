"""The open-loop load generator behind ``gongji load``.

Request i is due at ``start + i / rate`` whatever the answers do (open loop), and its
latency is measured from that *intended* time, so a generator or cluster that falls
behind shows it in the percentiles instead of hiding it (coordinated omission). Due
requests are sent in one envelope per region per short linger; outcomes come back on
the generator's own client queue and are matched by transfer id.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import sys
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

from aio_pika.abc import AbstractRobustConnection

from broker.inbox import Inbox
from broker.publisher import Publisher, PublishError, Unroutable
from broker.topology import Topology
from contracts.identifiers import client_address, mailbox_route
from contracts.operations import AwayRegistrationOutcome, BillOutcome, BindingOutcome, Operation
from contracts.reasons import COMMITTED
from gongji.client import own_name
from gongji.cluster.seed import SeededPopulation
from gongji.load.flows import FLOWS, AwayFlow, BindingFlow, Flow, Request, zipf_weights
from gongji.load.histogram import LatencyHistogram


@dataclass(slots=True)
class LoadConfig:
    """What to send: how fast, how long, which flows, where."""

    rate: float
    """Target requests per second."""
    duration_s: float
    mix: dict[str, float] = field(default_factory=lambda: {"copay": 1.0})
    cross_province: float = 1.0
    """Share of requests whose payer is insured in another province."""
    skew: float = 0.0
    """Zipf exponent over payee regions (0: uniform; 1: region i gets 1/(i+1))."""
    seed: int = 1
    drain_s: float = 30.0
    """After the last send, how long to wait for outstanding outcomes."""
    max_in_flight: int | None = None
    """Hold back sends while this many are unanswered (saturation runs); latency still
    counts from the intended time."""
    linger_ms: float = 10.0
    """How long due requests may wait to share an envelope with others to the same region
    (counted in their latency, which runs from the intended time)."""
    max_per_envelope: int = 500
    resubmit_after_s: float = 20.0
    """A request still without an outcome this long after it was sent is submitted
    again, with the same transfer id (idempotent everywhere); doubling each time."""

    def __post_init__(self) -> None:
        if self.rate <= 0 or self.duration_s <= 0:
            raise ValueError("rate and duration are positive")
        if not 0 <= self.cross_province <= 1:
            raise ValueError("the cross-province share is 0..1")
        if self.skew < 0:
            raise ValueError("the skew is >= 0")

    @property
    def total(self) -> int:
        return max(1, round(self.rate * self.duration_s))


SECOND_BIN_BITS = 5
"""The per-second latency histograms' precision (3 %: enough for a chart, and small)."""


@dataclass(slots=True)
class SecondBin:
    """What came back during one second of the run (by the time the outcome arrived)."""

    outcomes: Counter[str] = field(default_factory=Counter)
    """By outcome (``COMMITTED`` or the reason code)."""
    by_region: Counter[str] = field(default_factory=Counter)
    """By payee region (the region the request was sent to)."""
    latency: LatencyHistogram = field(default_factory=lambda: LatencyHistogram(SECOND_BIN_BITS))
    """Latency from the intended send time, of every flow."""


@dataclass(slots=True)
class _Pending:
    intended: float
    flow: str
    region: str = ""
    address: str = ""
    op: Operation | None = None
    """What was sent, to send again (same transfer id) when no outcome comes."""
    resubmits: int = 0


@dataclass(slots=True)
class LoadResult:
    """What one load run saw, before the books are audited."""

    config: LoadConfig
    regions: list[str]
    sent: int = 0
    started: float = 0.0
    send_seconds: float = 0.0
    last_outcome: float = 0.0
    latency: dict[str, LatencyHistogram] = field(default_factory=dict)
    outcomes: dict[str, Counter[str]] = field(default_factory=dict)
    moved_fen: int = 0
    family_moved_fen: Counter[str] = field(default_factory=Counter)
    """Wallet transfers and premiums paid, by flow (in fen; not towards bills)."""
    """Paid towards bills, by every means, as the outcomes report it."""
    copayer_paid_fen: int = 0
    """Of that, paid by co-payers in committed transfers (the mutual aid)."""
    bills_paid: Counter[str] = field(default_factory=Counter)
    """Co-payments by how they ended: ``full`` (committed, nothing left to pay),
    ``part`` (committed, some left to other means), ``refused`` (a reason code)."""
    cross_province_sent: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    timeline: list[int] = field(default_factory=list)
    """Outcomes per 100 ms since the start."""
    seconds: list[SecondBin] = field(default_factory=list)
    """Outcomes by reason and by payee region, and their latency, per second since the
    start (what the report's charts draw)."""
    unanswered: list[str] = field(default_factory=list)
    """Transfer ids that got no outcome by the end of the drain."""
    unsent: int = 0
    """Planned requests never sent because ``max_in_flight`` held them past the end."""
    send_lag: LatencyHistogram = field(default_factory=LatencyHistogram)
    """From each request's intended time to its hand-over to the broker client: how far
    the generator itself fell behind (part of every latency)."""

    @property
    def completed(self) -> int:
        return sum(sum(c.values()) for c in self.outcomes.values())

    @property
    def achieved_per_second(self) -> float:
        """Outcomes per second from the first intended send to the last outcome."""
        span = self.last_outcome - self.started
        return self.completed / span if span > 0 else 0.0

    def steady_per_second(self, skip_s: float | None = None) -> float:
        """Outcomes per second during the send phase after a warm-up (default: a fifth)."""
        skip = self.config.duration_s / 5 if skip_s is None else skip_s
        first, last = int(skip * 10), int(self.send_seconds * 10)
        window = self.timeline[first:last]
        return sum(window) * 10 / len(window) if window else 0.0


ProgressFn = Callable[["LoadGenerator", bool], None]


class LoadGenerator:
    """Sends a planned stream of requests and matches their outcomes."""

    def __init__(
        self,
        connection: AbstractRobustConnection,
        topology: Topology,
        seeded: SeededPopulation,
        config: LoadConfig,
        *,
        name: str | None = None,
        mailboxes: bool = False,
    ) -> None:
        """``mailboxes``: send each province's requests to its host's mailbox, one
        envelope for all its regions (``broker.topology.MAILBOXES_ENV``)."""
        self._mailboxes = mailboxes
        self.connection = connection
        self.topology = topology
        self.seeded = seeded
        self.config = config
        self.name = own_name(connection, topology) or name or f"load-{uuid.uuid4().hex[:8]}"
        self.address = client_address(self.name)
        self._rng = random.Random(config.seed)
        self._flows: list[Flow] = [FLOWS[name](seeded, self.address) for name in config.mix]
        self._flow_weights = [config.mix[f.name] for f in self._flows]
        # Regions with a beneficiary to send for (a drawn population may leave one none).
        self._regions = [
            r.code
            for r in seeded.regions
            if seeded.cross_province.get(r.code) or seeded.same_province.get(r.code)
        ]
        self._region_weights = zipf_weights(len(self._regions), config.skew)
        self._pending: dict[str, _Pending] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        # A token per run: the load client's name is fixed per cluster, and a second run
        # with the same ids would be answered with the first run's outcomes (idempotent),
        # moving nothing, so its outcomes and the books would disagree.
        self._prefix = f"{self.name}-{uuid.uuid4().hex[:8]}-"
        self.result = LoadResult(config, list(self._regions))
        for flow in self._flows:
            # A flow may report its requests under several names (binding, revoke).
            for name in getattr(flow, "reported_as", (flow.name,)):
                self.result.latency[name] = LatencyHistogram()
                self.result.outcomes[name] = Counter()
        self._binding_flow = next((f for f in self._flows if isinstance(f, BindingFlow)), None)
        self._window: list[tuple[float, int]] = []
        self._sent_all = False
        self._closing = False
        self.sending = asyncio.Event()
        """Set when the first request is due (``result.started``)."""
        self._answered = asyncio.Event()
        self._setup_waiting: set[str] = set()
        self._set_up = asyncio.Event()

    @property
    def in_flight(self) -> int:
        return len(self._pending)

    def recent_rate(self) -> float:
        """Outcomes per second over the last second or so."""
        now = time.monotonic()
        done = self.result.completed
        self._window.append((now, done))
        while len(self._window) > 2 and now - self._window[0][0] > 1.0:
            self._window.pop(0)
        then, before = self._window[0]
        return (done - before) / (now - then) if now > then else 0.0

    def latency_p99_ms(self) -> float:
        merged = LatencyHistogram()
        for histogram in self.result.latency.values():
            merged.merge(histogram)
        return merged.percentile_us(99) / 1000

    def _request(self, seq: int) -> Request:
        rng = self._rng
        flow = self._flows[0]
        if len(self._flows) > 1:
            flow = rng.choices(self._flows, self._flow_weights)[0]
        region = rng.choices(self._regions, self._region_weights)[0]
        cross = rng.random() < self.config.cross_province
        return flow.make(rng, f"{self._prefix}{seq:09d}", region, cross)

    async def run(
        self, progress: ProgressFn | None = None, progress_every_s: float = 0.5
    ) -> LoadResult:
        """Send the whole plan, wait (bounded) for the outcomes, return what happened."""
        inbox = await Inbox.open(self.connection, self.topology, self.address, client=True)
        publisher = await Publisher.open(
            self.connection,
            self.topology,
            self.address,
            max_operations_per_message=self.config.max_per_envelope,
        )
        reader = asyncio.get_running_loop().create_task(self._read(inbox))
        resubmitter = asyncio.get_running_loop().create_task(self._resubmit(publisher))
        ticker: asyncio.Task[None] | None = None
        if progress is not None:
            ticker = asyncio.get_running_loop().create_task(
                self._progress(progress, progress_every_s)
            )
        try:
            await self._setup(publisher)
            await self._send_all(publisher)
            await self._drain()
        finally:
            self._closing = True  # no more re-publishing: what is unanswered now timed out
            resubmitter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await resubmitter
            if ticker is not None:
                ticker.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await ticker
            if progress is not None:
                progress(self, True)
            if self._tasks:
                await asyncio.gather(*self._tasks, return_exceptions=True)
            # The reader first: an ack racing the channel's close makes the broker close
            # the whole connection (CHANNEL_ERROR).
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
            await inbox.close()
            await publisher.close()
            await self._delete_queue()
        self.result.errors["timeouts"] += len(self._pending)
        self.result.unanswered = sorted(self._pending)
        return self.result

    async def _send_all(self, publisher: Publisher) -> None:
        config = self.config
        total = config.total
        interval = 1.0 / config.rate
        linger = config.linger_ms / 1000
        buffers: dict[str, list[tuple[Operation, float, str]]] = defaultdict(list)
        oldest: dict[str, float] = {}
        started = self.result.started = time.monotonic()
        self.sending.set()
        seq = 0
        while seq < total or buffers:
            now = time.monotonic()
            due = min(total, int((now - started) / interval) + 1)
            capped = False
            if config.max_in_flight is not None:
                room = seq + max(0, config.max_in_flight - len(self._pending))
                capped = room < due
                due = min(due, room)
            while seq < due:
                request = self._request(seq)
                # A request held back by max_in_flight still counts from its planned time.
                intended = started + seq * interval
                self._pending[request.transfer_id] = _Pending(
                    intended, request.flow, request.payee_region, request.address, request.op
                )
                self.result.cross_province_sent += request.cross_province
                address, destination = self._route(request.address)
                buffers[address].append((request.op, intended, destination))
                oldest.setdefault(address, now)
                seq += 1
            self.result.sent = seq
            if capped and now - started >= config.duration_s and seq < total:
                # Held back past the end of the plan: what was never sent is not load.
                self.result.unsent = total - seq
                total = seq
            for address in list(buffers):
                entries = buffers[address]
                if (
                    seq >= total
                    or len(entries) >= config.max_per_envelope
                    or (now - oldest[address] >= linger)
                ):
                    del buffers[address]
                    del oldest[address]
                    for _, intended, _ in entries:
                        self.result.send_lag.record_seconds(now - intended)
                    ops = [op for op, _, _ in entries]
                    destinations = [d for _, _, d in entries if d]
                    self._spawn(self._publish(publisher, address, ops, destinations))
            if seq >= total and not buffers:
                break
            next_due = started + seq * interval
            wake = min(next_due, *(t + linger for t in oldest.values())) if oldest else next_due
            # Held back by max_in_flight: poll for room instead of spinning.
            floor = 0.001 if capped else 0.0
            await asyncio.sleep(max(floor, min(wake - time.monotonic(), 0.05)))
        self.result.send_seconds = time.monotonic() - started

    async def _setup(self, publisher: Publisher, timeout_s: float = 30.0) -> None:
        """What a flow needs recorded before its first request (registrations of care away
        from home), sent and awaited (bounded: what is unanswered is counted)."""
        by_address: dict[str, list[Operation]] = defaultdict(list)
        for flow in self._flows:
            if isinstance(flow, AwayFlow):
                for address, request in flow.setup():
                    by_address[address].append(request)
                    self._setup_waiting.add(request.request_id)
        if not by_address:
            return
        await publisher.publish(dict(by_address))
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                await self._set_up.wait()
        self.result.errors["setup_unanswered"] += len(self._setup_waiting)

    def _spawn(self, coroutine: Any) -> None:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _route(self, address: str) -> tuple[str, str]:
        """Where to send a request for ``address``, and the region to name there (none
        for the region's own queue)."""
        return mailbox_route(address) if self._mailboxes else (address, "")

    async def _publish(
        self,
        publisher: Publisher,
        address: str,
        ops: Sequence[Operation],
        destinations: Sequence[str] = (),
    ) -> None:
        """Publish, and publish again what the broker did not confirm (a broker restart,
        a lost connection): maybe delivered, maybe not, so the same requests with the same
        transfer ids, which every handler takes once. Given up only when the run ends.
        ``destinations``: on a mailbox, the region of each operation."""
        delay_s = 0.2
        while True:
            try:
                await publisher.publish({address: ops}, {address: destinations})
                return
            except Unroutable:
                self._fail(ops, "unroutable")
                return
            except PublishError:
                kept = [i for i, op in enumerate(ops) if _request_id(op) in self._pending]
                ops = [ops[i] for i in kept]
                destinations = [destinations[i] for i in kept] if destinations else []
                if not ops:
                    return  # answered meanwhile: the first publish did arrive
                if self._closing:
                    self.result.errors["publish_failed"] += len(ops)
                    return
                self.result.errors["republished"] += len(ops)
                await asyncio.sleep(delay_s)
                delay_s = min(delay_s * 2, 5.0)

    def _fail(self, ops: Sequence[Operation], error: str) -> None:
        for op in ops:
            if self._pending.pop(_request_id(op), None) is not None:
                self.result.errors[error] += 1
        self._check_answered()

    async def _read(self, inbox: Inbox) -> None:
        result = self.result
        while True:
            batch = await inbox.next_batch(512, timeout=None)
            if not batch:
                if inbox.closed:
                    return
                continue
            now = time.monotonic()
            bin_index = int((now - result.started) * 10)
            if len(result.timeline) <= bin_index:
                result.timeline.extend([0] * (bin_index + 1 - len(result.timeline)))
            second_index = bin_index // 10
            while len(result.seconds) <= second_index:
                result.seconds.append(SecondBin())
            second = result.seconds[second_index]
            for delivery in batch:
                for op in delivery.envelope.operations:
                    if isinstance(op, AwayRegistrationOutcome):
                        self._set_up_one(op)
                        continue
                    if isinstance(op, BindingOutcome):
                        self._binding_answered(op, now, bin_index, second)
                        continue
                    if not isinstance(op, BillOutcome):
                        result.errors["unexpected_operation"] += 1
                        continue
                    pending = self._pending.pop(op.transfer_id, None)
                    if pending is None:
                        # At-least-once delivery: a copy of an outcome already counted.
                        result.errors["duplicate_outcomes"] += 1
                        continue
                    latency_s = now - pending.intended
                    result.latency[pending.flow].record_seconds(latency_s)
                    result.outcomes[pending.flow][op.outcome] += 1
                    result.timeline[bin_index] += 1
                    second.outcomes[op.outcome] += 1
                    second.by_region[pending.region] += 1
                    second.latency.record_seconds(latency_s)
                    if pending.flow not in ("copay", "away"):
                        # Into a wallet, or a premium: not towards bills.
                        result.family_moved_fen[pending.flow] += op.paid_fen
                        result.last_outcome = now
                        continue
                    # Whatever paid towards the bill (the co-payer's part, and the
                    # beneficiary's own account or wallet, which may pay even when the
                    # mutual aid is refused) lands in the payee region's bills-paid books.
                    result.moved_fen += op.paid_fen + op.own_paid_fen + op.wallet_paid_fen
                    if op.outcome == COMMITTED:
                        result.copayer_paid_fen += op.paid_fen
                    result.bills_paid[bill_ending(op)] += 1
                    result.last_outcome = now
            self._check_answered()
            await inbox.ack_through(batch)

    def _set_up_one(self, outcome: AwayRegistrationOutcome) -> None:
        if outcome.request_id not in self._setup_waiting:
            return  # a copy
        self._setup_waiting.discard(outcome.request_id)
        if outcome.reason is not None:
            self.result.errors[f"setup_refused_{outcome.reason.value}"] += 1
        if not self._setup_waiting:
            self._set_up.set()

    def _binding_answered(
        self, op: BindingOutcome, now: float, bin_index: int, second: SecondBin
    ) -> None:
        """A binding request's or revocation's outcome: counted as a transfer's is (it
        moves no money), and the binding flow learns which bindings it may revoke."""
        result = self.result
        pending = self._pending.pop(op.request_id, None)
        if pending is None:
            result.errors["duplicate_outcomes"] += 1
            return
        latency_s = now - pending.intended
        result.latency[pending.flow].record_seconds(latency_s)
        result.outcomes[pending.flow][op.outcome] += 1
        result.timeline[bin_index] += 1
        second.outcomes[op.outcome] += 1
        second.by_region[pending.region] += 1
        second.latency.record_seconds(latency_s)
        result.last_outcome = now
        if self._binding_flow is not None:
            self._binding_flow.answered(op)

    async def _resubmit(self, publisher: Publisher) -> None:
        """Submit again what has waited too long for its outcome (the same transfer id:
        a request whose message was lost is recovered; one merely slow is answered once
        more, a duplicate outcome the report counts as harmless)."""
        every = self.config.resubmit_after_s
        while True:
            await asyncio.sleep(min(1.0, every / 4))
            now = time.monotonic()
            due: dict[str, list[tuple[Operation, str]]] = defaultdict(list)
            for pending in self._pending.values():
                waited = now - pending.intended
                if pending.op is not None and waited >= every * (2**pending.resubmits):
                    pending.resubmits += 1
                    address, destination = self._route(pending.address)
                    due[address].append((pending.op, destination))
            for address, entries in due.items():
                self.result.errors["resubmitted"] += len(entries)
                ops = [op for op, _ in entries]
                destinations = [d for _, d in entries if d]
                self._spawn(self._publish(publisher, address, ops, destinations))

    async def _drain(self) -> None:
        self._sent_all = True
        if not self._pending:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.config.drain_s):
                await self._answered.wait()

    def _check_answered(self) -> None:
        if self._sent_all and not self._pending:
            self._answered.set()

    async def _progress(self, progress: ProgressFn, every_s: float) -> None:
        while True:
            progress(self, False)
            await asyncio.sleep(every_s)

    async def _delete_queue(self) -> None:
        with contextlib.suppress(Exception):
            channel = await self.connection.channel()
            await channel.queue_delete(self.topology.queue_for(self.address))
            await channel.close()


def bill_ending(outcome: BillOutcome) -> str:
    """``full``, ``part`` or ``refused``: how a co-payment ended (``LoadResult.bills_paid``)."""
    if outcome.reason is not None:
        return "refused"
    return "part" if outcome.remaining_fen > 0 else "full"


def _request_id(op: Operation) -> str:
    """The id a request's outcome is matched by (a binding request has no transfer)."""
    return str(getattr(op, "transfer_id", "") or getattr(op, "request_id", ""))


class ProgressBar:
    """One self-rewriting line on a terminal (a line every few seconds otherwise)."""

    def __init__(self, stream: TextIO | None = None, width: int = 24) -> None:
        self.stream = stream or sys.stderr
        self.width = width
        self.tty = self.stream.isatty()
        self._last_line = 0.0

    def __call__(self, generator: LoadGenerator, final: bool) -> None:
        result = generator.result
        config = generator.config
        elapsed = time.monotonic() - result.started if result.started else 0.0
        fraction = min(1.0, elapsed / config.duration_s)
        filled = int(fraction * self.width)
        bar = "#" * filled + "-" * (self.width - filled)
        line = (
            f"load [{bar}] {min(elapsed, config.duration_s):5.1f}/{config.duration_s:g} s"
            f"  sent {result.sent}  done {result.completed}"
            f"  {generator.recent_rate():7.0f}/s (target {config.rate:g})"
            f"  in flight {generator.in_flight}  p99 {generator.latency_p99_ms():.0f} ms"
        )
        if self.tty:
            self.stream.write("\r\x1b[2K" + line + ("\n" if final else ""))
            self.stream.flush()
        elif final or time.monotonic() - self._last_line >= 5.0:
            self._last_line = time.monotonic()
            self.stream.write(line + "\n")
            self.stream.flush()
