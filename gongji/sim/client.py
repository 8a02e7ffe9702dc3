"""The outside parties: the submitting client and the operator.

The client sends each request when it arrives (a Poisson stream at the configured rate)
and, with ``client_retry_ms``, again while it is unanswered; it keeps the first outcome
of each request and any later, different one. The operator closes clearing windows and
enables or disables regions at the clearinghouse.
"""

from __future__ import annotations

from collections import deque

from contracts.effects import Outgoing
from contracts.identifiers import CLEARINGHOUSE, region_address
from contracts.operations import BillOutcome, CloseWindow, Operation
from gongji.sim.broker import Message, SimBroker
from gongji.sim.node import OPERATOR, Node
from gongji.sim.run import Part, Run
from gongji.sim.scheduler import SUBMIT
from gongji.sim.workload import Request


class Submitter(Part):
    """Sends the workload's requests and collects what comes back to the outside."""

    def __init__(self, run: Run, broker: SimBroker, requests: list[Request]) -> None:
        super().__init__(run)
        self.broker = broker
        self.operator = run.network.operator
        self.requests = requests
        self.by_id = {r.transfer_id: r for r in requests}
        # The submitter's view: first outcome per request, any later different one.
        self.outcomes: dict[str, BillOutcome] = {}
        self.conflicts: list[tuple[BillOutcome, BillOutcome]] = []
        self.latest: dict[str, BillOutcome] = {}
        """The last outcome received for each request (the demo replays some)."""
        self.replies: list[Operation] = []
        """Every other answer to the outside (binding outcomes, window reports)."""
        self.arrivals: list[int] = []
        """When each request arrives, in virtual ms (``plan_arrivals``)."""
        self.next_request = 0
        """How many requests were sent so far."""
        self._retries: deque[tuple[int, str]] = deque()
        self.windows = 0
        """Clearing windows the operator closed."""

    def plan_arrivals(self) -> None:
        mean_gap = 1_000 / self.config.requests_per_second
        t = 0.0
        for _ in self.requests:
            t += self.rng.expovariate(1 / mean_gap)
            self.arrivals.append(int(t) + 1)

    def submit(self) -> None:
        """Send the requests due by now, and those due again; wake for the next."""
        now = self.clock.now
        out: list[Outgoing] = []
        requests = self.requests
        while self.next_request < len(requests) and self.arrivals[self.next_request] <= now:
            request = requests[self.next_request]
            self.next_request += 1
            out.append(Outgoing(region_address(request.region), request.op))
            if self.config.client_retry_ms:
                self._retries.append((now + self.config.client_retry_ms, request.transfer_id))
        retries = self._retries
        while retries and retries[0][0] <= now:
            _, tid = retries.popleft()
            if tid in self.outcomes:
                continue
            # No answer yet: send the same request again (the region deduplicates by id).
            self.stats.client_retries += 1
            self.trace.fault(now, "client_retry", tid)
            request = self.by_id[tid]
            out.append(Outgoing(region_address(request.region), request.op))
            retries.append((now + self.config.client_retry_ms, tid))
        self.broker.publish(None, out)
        upcoming = []
        if self.next_request < len(requests):
            upcoming.append(self.arrivals[self.next_request])
        if retries:
            upcoming.append(retries[0][0])
        if upcoming:
            self.clock.at(max(now + 1, min(upcoming)), SUBMIT)

    def receive(self, node: Node, batch: list[Message]) -> None:
        """The submitter's and the operator's queues: outcomes and reports arrive."""
        now = self.clock.now
        for msg in batch:
            self.trace.delivered(now, node.address, msg.text)
            if self.watching:
                self.trace.note(now, msg.ops, f"{node.address} received")
            for op in msg.ops:
                if not isinstance(op, BillOutcome):
                    self.replies.append(op)
                    continue
                self.latest[op.transfer_id] = op
                first = self.outcomes.get(op.transfer_id)
                if first is None:
                    self.outcomes[op.transfer_id] = op
                elif first != op:
                    self.conflicts.append((first, op))

    def close_window(self) -> None:
        """The operator closes the clearing window (the regions then reconcile it)."""
        self.windows += 1
        self.operate(CloseWindow(f"close-{self.windows}", OPERATOR))

    def operate(self, op: Operation) -> None:
        """The operator sends ``op`` to the clearinghouse."""
        self.trace.fault(self.clock.now, "operator", repr(op))
        self.broker.send(CLEARINGHOUSE, (op,), self.operator.participant)
