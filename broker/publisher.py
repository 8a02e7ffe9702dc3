"""Publishing envelopes with publisher confirms, and batching single operations."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import defaultdict
from collections.abc import Mapping, Sequence

import aiormq
import structlog
from aio_pika import DeliveryMode, Message
from aio_pika.abc import (
    AbstractChannel,
    AbstractConnection,
    AbstractExchange,
    AbstractRobustChannel,
)
from yarl import URL

from broker.topology import Topology, ensure_topology
from contracts.codec import encode
from contracts.effects import Outgoing
from contracts.envelope import MESSAGE_TYPE, Envelope
from contracts.operations import Operation

log = structlog.get_logger(__name__)

CONTENT_TYPE = "application/msgpack"
DEFAULT_CONFIRM_TIMEOUT = 30.0


class PublishError(RuntimeError):
    """The broker did not confirm every envelope (nack, return, or channel failure)."""


class Unroutable(PublishError):
    """No queue is bound for the destination address, so the broker returned the message."""

    def __init__(self, address: str) -> None:
        super().__init__(f"no queue is bound for address {address!r}; the broker returned it")
        self.address = address


def broker_user(connection: AbstractConnection) -> str:
    """The user a connection logged in as (AMQP's default is ``guest``)."""
    url: URL | None = getattr(connection, "url", None)  # every aio-pika connection has one
    return (url.user if url is not None else None) or "guest"


def group_by_address(outgoing: Sequence[Outgoing]) -> dict[str, list[Operation]]:
    """One list of operations per destination, order kept (one envelope each)."""
    batches: dict[str, list[Operation]] = defaultdict(list)
    for item in outgoing:
        batches[item.address].append(item.op)
    return dict(batches)


class Publisher:
    """Publishes envelopes to the topology's exchange on its own confirming channel."""

    def __init__(
        self,
        channel: AbstractChannel,
        exchange: AbstractExchange,
        topology: Topology,
        sender: str,
        *,
        max_operations_per_message: int,
        confirm_timeout: float,
        user_id: str = "guest",
    ) -> None:
        """Use ``Publisher.open``; this only wires already opened parts together."""
        if max_operations_per_message < 1:
            raise ValueError("max_operations_per_message must be >= 1")
        self._channel = channel
        self._exchange = exchange
        self.topology = topology
        self.sender = sender
        self.user_id = user_id
        """The connection's broker user, set on every message: the broker refuses a
        message whose ``user_id`` is not the login, so receivers can trust it."""
        self.max_operations_per_message = max_operations_per_message
        self.confirm_timeout = confirm_timeout
        self._closed = False

    @classmethod
    async def open(
        cls,
        connection: AbstractConnection,
        topology: Topology,
        sender: str,
        *,
        max_operations_per_message: int = 200,
        confirm_timeout: float = DEFAULT_CONFIRM_TIMEOUT,
    ) -> Publisher:
        """Open a confirming channel, once the topology exists (``ensure_topology``)."""
        # Publishing to a missing exchange would close the channel, so make sure first.
        await ensure_topology(connection, topology)
        channel = connection.channel(publisher_confirms=True, on_return_raises=True)
        await channel.initialize()
        try:
            exchange = await channel.get_exchange(topology.exchange, ensure=False)
        except BaseException:
            with contextlib.suppress(Exception):
                await channel.close()
            raise
        return cls(
            channel,
            exchange,
            topology,
            sender,
            max_operations_per_message=max_operations_per_message,
            confirm_timeout=confirm_timeout,
            user_id=broker_user(connection),
        )

    def _envelopes(
        self,
        batches: Mapping[str, Sequence[Operation]],
        routes: Mapping[str, Sequence[str]],
    ) -> list[tuple[str, Envelope]]:
        sent_at_ms = int(time.time() * 1000)
        size = self.max_operations_per_message
        envelopes = []
        for address, operations in batches.items():
            destinations = routes.get(address, ())
            for start in range(0, len(operations), size):
                envelope = Envelope(
                    message_id=uuid.uuid4().hex,
                    sender=self.sender,
                    sent_at_ms=sent_at_ms,
                    operations=list(operations[start : start + size]),
                    destinations=tuple(destinations[start : start + size]),
                )
                envelopes.append((address, envelope))
        return envelopes

    async def publish(
        self,
        batches: Mapping[str, Sequence[Operation]],
        routes: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        """Send one envelope per address (chunked) and return once all are confirmed.

        ``routes`` names, for a province mailbox's address, the region of each of its
        operations (``Envelope.destinations``).

        Raises ``Unroutable`` when an address has no bound queue, ``PublishError`` on a
        nack, a timeout or a channel failure. Some envelopes may have been delivered
        even then; receivers are idempotent, so the caller may simply publish again.
        """
        # Encode first: a bad operation fails the call before anything is sent.
        messages = [
            (address, self._message(envelope))
            for address, envelope in self._envelopes(batches, routes or {})
        ]
        if not messages:
            return
        if self._closed:
            raise PublishError("publisher is closed")
        await self._ready()
        results = await asyncio.gather(
            *(self._publish_one(address, message) for address, message in messages),
            return_exceptions=True,
        )
        errors = [
            # A confirm cancelled under us (not our own cancellation, which gather
            # raises) is a channel failure too.
            PublishError(f"publish cancelled: {result}")
            if isinstance(result, asyncio.CancelledError)
            else result
            for result in results
            if isinstance(result, BaseException)
        ]
        if errors:
            if len(errors) > 1:
                log.warning(
                    "publish_failed",
                    sender=self.sender,
                    failed=len(errors),
                    envelopes=len(messages),
                    errors=sorted({type(error).__name__ for error in errors}),
                )
            raise errors[0]

    def _message(self, envelope: Envelope) -> Message:
        return Message(
            encode(envelope),
            message_id=envelope.message_id,
            delivery_mode=DeliveryMode.PERSISTENT,
            content_type=CONTENT_TYPE,
            type=MESSAGE_TYPE,
            app_id=self.sender,
            user_id=self.user_id,
        )

    async def _ready(self) -> None:
        """Wait (bounded) for a robust channel that is being restored after a reconnect."""
        if isinstance(self._channel, AbstractRobustChannel):
            try:
                async with asyncio.timeout(self.confirm_timeout):
                    await self._channel.ready()
            except TimeoutError:
                raise PublishError(
                    f"channel not ready within {self.confirm_timeout}s (broker connection lost?)"
                ) from None

    async def _publish_one(self, address: str, message: Message) -> None:
        try:
            await self._exchange.publish(
                message,
                routing_key=address,
                mandatory=True,
                timeout=self.confirm_timeout,
            )
        except aiormq.exceptions.PublishError:
            raise Unroutable(address) from None
        except aiormq.exceptions.DeliveryError as error:
            raise PublishError(f"broker nacked the envelope to {address!r}: {error}") from error
        except TimeoutError:
            raise PublishError(
                f"no confirm for the envelope to {address!r} within {self.confirm_timeout}s"
            ) from None
        except (
            aiormq.exceptions.AMQPError,
            aiormq.exceptions.ChannelInvalidStateError,  # a RuntimeError, not an AMQPError
            ConnectionError,
        ) as error:
            raise PublishError(
                f"channel failed publishing to {address!r}: {type(error).__name__}: {error}"
            ) from error

    async def publish_outgoing(self, outgoing: Sequence[Outgoing], chunk: int = 4_000) -> None:
        """Publish many operations in order, a chunk at a time (each confirmed before the
        next), so that per queue a later operation never overtakes an earlier one, e.g. a
        region's registration, then its persons, then their bindings."""
        for start in range(0, len(outgoing), chunk):
            await self.publish(group_by_address(outgoing[start : start + chunk]))

    async def close(self) -> None:
        """Close the publisher's channel."""
        self._closed = True
        if not self._channel.is_closed:
            await self._channel.close()


def _retrieve(future: asyncio.Future[None]) -> None:
    if not future.cancelled():
        future.exception()


class BatchingSender:
    """For clients and timers: buffers single operations and flushes one envelope per
    destination when a destination's buffer is full or after a short linger (default
    2 ms), so a lone request still goes out fast."""

    def __init__(
        self, publisher: Publisher, *, linger_ms: float = 2.0, max_operations: int = 100
    ) -> None:
        """Start the background flusher; needs a running event loop."""
        if max_operations < 1:
            raise ValueError("max_operations must be >= 1")
        self._publisher = publisher
        self._linger = max(linger_ms, 0.0) / 1000.0
        self._max_operations = max_operations
        self._buffers: dict[str, list[tuple[Operation, asyncio.Future[None]]]] = {}
        self._wakeup = asyncio.Event()
        self._flushes: set[asyncio.Task[None]] = set()
        self._closed = False
        self._task = asyncio.get_running_loop().create_task(self._run(), name="batching-sender")

    async def send(self, address: str, op: Operation) -> None:
        """Return when the envelope holding ``op`` is confirmed; raise what publish raised."""
        if self._closed:
            raise RuntimeError("BatchingSender is closed")
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        # Mark the outcome retrieved even if the caller was cancelled meanwhile.
        done.add_done_callback(_retrieve)
        buffer = self._buffers.setdefault(address, [])
        buffer.append((op, done))
        if len(buffer) >= self._max_operations:
            self._flush(address, self._buffers.pop(address))
        else:
            self._wakeup.set()
        # Shield: a caller that gives up must not cancel the shared flush.
        await asyncio.shield(done)

    async def _run(self) -> None:
        while True:
            await self._wakeup.wait()
            # Linger so operations sent in the same instant share an envelope.
            await asyncio.sleep(self._linger)
            self._wakeup.clear()
            self._flush_all()

    def _flush_all(self) -> None:
        buffers, self._buffers = self._buffers, {}
        for address, entries in buffers.items():
            self._flush(address, entries)

    def _flush(self, address: str, entries: list[tuple[Operation, asyncio.Future[None]]]) -> None:
        # One task per address, all in flight together: an unroutable address then
        # fails only its own senders.
        task = asyncio.get_running_loop().create_task(self._publish(address, entries))
        self._flushes.add(task)
        task.add_done_callback(self._flushes.discard)

    async def _publish(
        self, address: str, entries: list[tuple[Operation, asyncio.Future[None]]]
    ) -> None:
        waiters = [done for _, done in entries]
        try:
            await self._publisher.publish({address: [op for op, _ in entries]})
        except BaseException as error:
            failure = error if isinstance(error, Exception) else PublishError("flush cancelled")
            for done in waiters:
                if not done.done():
                    done.set_exception(failure)
            if not isinstance(error, Exception):
                raise
        else:
            for done in waiters:
                if not done.done():
                    done.set_result(None)

    async def close(self) -> None:
        """Flush what is buffered, wait for in-flight envelopes, stop the background task."""
        if self._closed:
            return
        self._closed = True
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._flush_all()
        if self._flushes:
            await asyncio.gather(*self._flushes, return_exceptions=True)
