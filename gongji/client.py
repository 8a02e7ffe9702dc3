"""A client of the cluster over RabbitMQ: submits bills and other requests, awaits answers.

Used by the demo and the load generator. Outcomes arrive at the client's own queue;
RabbitMQ delivers at least once, so an outcome resolves every waiter for its transfer id
and any surplus copy is counted, not double-counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import defaultdict, deque
from collections.abc import Sequence
from typing import TypeVar

from aio_pika.abc import AbstractRobustConnection

from broker.inbox import Inbox
from broker.publisher import BatchingSender, Publisher, PublishError, Unroutable, broker_user
from broker.topology import Topology
from contracts.effects import Outgoing
from contracts.identifiers import client_address, region_address
from contracts.operations import (
    AwayRegistrationOutcome,
    BillOutcome,
    BindingOutcome,
    Operation,
    RequestAwayRegistration,
    RequestBinding,
    RevokeAwayRegistration,
    RevokeBinding,
    SubmitBill,
)
from contracts.participants import Role, participant_of
from contracts.reasons import ReasonCode

T = TypeVar("T")


def own_name(connection: AbstractRobustConnection, topology: Topology) -> str | None:
    """The client's or operator's name of the connection's broker user in the namespace:
    the name its queue must have, since the services answer only the sender itself."""
    own = participant_of(broker_user(connection), topology.namespace)
    if own is not None and own.role in (Role.CLIENT, Role.ADMIN):
        return own.name
    return None


class BillClient:
    """Submits bills to region services and matches their outcomes."""

    def __init__(self, connection: AbstractRobustConnection, topology: Topology, name: str) -> None:
        self.connection = connection
        self.topology = topology
        self.address = client_address(name)
        self.resubmit_after_s = 20.0
        """A request without an answer this long is sent again (then after twice that)."""
        self.surplus: list[BillOutcome] = []
        """Outcomes that answered no waiting submission: repeats the services re-sent."""
        self.replies: asyncio.Queue[Operation] = asyncio.Queue()
        """Answers other than outcomes of submitted requests (e.g. window reports)."""
        self._waiters: dict[str, deque[asyncio.Future[BillOutcome]]] = defaultdict(deque)
        self._binding_waiters: dict[str, asyncio.Future[BindingOutcome]] = {}
        self._away_waiters: dict[str, asyncio.Future[AwayRegistrationOutcome]] = {}
        self._inbox: Inbox | None = None
        self._publisher: Publisher | None = None
        self._sender: BatchingSender | None = None
        self._reader: asyncio.Task[None] | None = None

    @classmethod
    async def open(
        cls, connection: AbstractRobustConnection, topology: Topology, name: str | None = None
    ) -> BillClient:
        client = cls(
            connection, topology, own_name(connection, topology) or name or uuid.uuid4().hex[:12]
        )
        client._inbox = await Inbox.open(connection, topology, client.address, client=True)
        client._publisher = await Publisher.open(connection, topology, client.address)
        client._sender = BatchingSender(client._publisher, linger_ms=2.0, max_operations=100)
        client._reader = asyncio.get_running_loop().create_task(client._read())
        return client

    async def _read(self) -> None:
        assert self._inbox is not None
        while True:
            batch = await self._inbox.next_batch(256, timeout=None)
            if not batch:
                if self._inbox.closed:
                    return
                continue
            for delivery in batch:
                for op in delivery.envelope.operations:
                    if isinstance(op, BillOutcome):
                        self._resolve(op)
                    elif isinstance(op, BindingOutcome):
                        waiter = self._binding_waiters.pop(op.request_id, None)
                        if waiter is not None and not waiter.done():
                            waiter.set_result(op)
                    elif isinstance(op, AwayRegistrationOutcome):
                        away = self._away_waiters.pop(op.request_id, None)
                        if away is not None and not away.done():
                            away.set_result(op)
                    else:
                        self.replies.put_nowait(op)
            await self._inbox.ack_through(batch)

    def _resolve(self, outcome: BillOutcome) -> None:
        # Every submission of one transfer shares its reply address, so one outcome
        # answers all of them (a repeat sent while the first was under way included).
        waiters = self._waiters.pop(outcome.transfer_id, None)
        answered = 0
        for waiter in waiters or ():
            if not waiter.done():
                waiter.set_result(outcome)
                answered += 1
        if not answered:
            self.surplus.append(outcome)

    @property
    def surplus_outcomes(self) -> int:
        return len(self.surplus)

    async def submit(self, region: str, bill: SubmitBill, timeout_s: float = 60.0) -> BillOutcome:
        """Send a bill to its region and wait for the one outcome that answers it."""
        assert self._sender is not None
        waiter: asyncio.Future[BillOutcome] = asyncio.get_running_loop().create_future()
        self._waiters[bill.transfer_id].append(waiter)
        try:
            return await self._until_answered(region_address(region), bill, waiter, timeout_s)
        except Unroutable:
            detail = f"no region service answers for {region}"
            return BillOutcome(
                bill.transfer_id, 0, bill.amount_fen, "", ReasonCode.UNKNOWN_REGION, detail
            )
        finally:
            self._forget(bill.transfer_id, waiter)

    async def request(
        self, region: str, op: Operation, transfer_id: str, timeout_s: float = 60.0
    ) -> BillOutcome:
        """Send a request with a transfer id (wallet transfer, premium payment) to a region
        and wait for its outcome."""
        assert self._sender is not None
        waiter: asyncio.Future[BillOutcome] = asyncio.get_running_loop().create_future()
        self._waiters[transfer_id].append(waiter)
        try:
            return await self._until_answered(region_address(region), op, waiter, timeout_s)
        finally:
            self._forget(transfer_id, waiter)

    async def bind(
        self, region: str, op: RequestBinding | RevokeBinding, timeout_s: float = 60.0
    ) -> BindingOutcome:
        """Send a binding request (or revocation) to the co-payer's region; await its outcome."""
        assert self._sender is not None
        waiter: asyncio.Future[BindingOutcome] = asyncio.get_running_loop().create_future()
        self._binding_waiters[op.request_id] = waiter
        try:
            return await self._until_answered(region_address(region), op, waiter, timeout_s)
        finally:
            self._binding_waiters.pop(op.request_id, None)

    async def register_away(
        self,
        region: str,
        op: RequestAwayRegistration | RevokeAwayRegistration,
        timeout_s: float = 60.0,
    ) -> AwayRegistrationOutcome:
        """Send a registration of care away from home (or its revocation) to the insured
        region; await its outcome."""
        waiter: asyncio.Future[AwayRegistrationOutcome] = asyncio.get_running_loop().create_future()
        self._away_waiters[op.request_id] = waiter
        try:
            return await self._until_answered(region_address(region), op, waiter, timeout_s)
        finally:
            self._away_waiters.pop(op.request_id, None)

    async def _until_answered(
        self, address: str, op: Operation, waiter: asyncio.Future[T], timeout_s: float
    ) -> T:
        """Send ``op`` and wait for its answer; send it again (the same id: every handler
        takes it once) when the broker did not confirm it, or when no answer came after
        ``resubmit_after_s`` (doubling). ``TimeoutError`` after ``timeout_s`` in all."""
        assert self._sender is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        patience = self.resubmit_after_s
        while True:
            try:
                await self._sender.send(address, op)
                wait_s = patience
                patience *= 2
            except Unroutable:
                raise
            except PublishError:
                wait_s = 1.0  # maybe sent, maybe not: soon again
            left = deadline - loop.time()
            if left <= 0:
                raise TimeoutError(f"no answer to {op.TAG} within {timeout_s:g} s")
            with contextlib.suppress(TimeoutError):
                return await asyncio.wait_for(asyncio.shield(waiter), min(wait_s, left))
            if loop.time() >= deadline:
                raise TimeoutError(f"no answer to {op.TAG} within {timeout_s:g} s")

    async def send(self, address: str, op: Operation) -> None:
        """Send one operation (confirmed by the broker), expecting no particular answer."""
        assert self._sender is not None
        await self._sender.send(address, op)

    def _forget(self, transfer_id: str, waiter: asyncio.Future[BillOutcome]) -> None:
        waiters = self._waiters.get(transfer_id)
        if waiters and waiter in waiters:
            waiters.remove(waiter)
            if not waiters:
                del self._waiters[transfer_id]

    async def send_all(self, outgoing: Sequence[Outgoing]) -> None:
        """Publish set-up operations in order (confirmed), batched per destination."""
        assert self._publisher is not None
        await self._publisher.publish_outgoing(outgoing)

    async def close(self, delete_queue: bool = True) -> None:
        if self._sender is not None:
            await self._sender.close()
        if self._inbox is not None:
            await self._inbox.close()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        if self._publisher is not None:
            await self._publisher.close()
        if delete_queue:
            channel = await self.connection.channel()
            with contextlib.suppress(Exception):
                await channel.queue_delete(self.topology.queue_for(self.address))
            await channel.close()
