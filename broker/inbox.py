"""Consuming one queue: decoded envelopes in batches, poison to the dead-letter queue."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import aiormq
import structlog
from aio_pika.abc import (
    AbstractChannel,
    AbstractConnection,
    AbstractIncomingMessage,
    AbstractQueue,
)

from broker.topology import (
    Topology,
    declare_client_queue,
    declare_service_queue,
    ensure_topology,
)
from contracts.codec import DecodeError, decode
from contracts.envelope import Envelope
from contracts.participants import Participant, participant_of

log = structlog.get_logger(__name__)

CLOSE_TIMEOUT = 5.0

# Failures of a single ack/nack/reject: the delivery's channel is gone (closed, or
# replaced after a reconnect), or the message was already settled.
_SETTLE_ERRORS = (
    aiormq.exceptions.AMQPError,
    aiormq.exceptions.ChannelInvalidStateError,  # a RuntimeError, not an AMQPError
    ConnectionError,
)


@dataclass
class Delivery:
    """One decoded envelope and the broker message that carried it (for acking)."""

    envelope: Envelope
    message: AbstractIncomingMessage
    sender: Participant | None = None
    """Who sent it: the participant of the message's broker-checked ``user_id`` (None:
    no user_id, or a user that is no participant of this namespace)."""
    settled: bool = False
    """Acked as part of a batch (``ack_through``): the message object does not know."""

    @property
    def unsettled(self) -> bool:
        return not (self.settled or self.message.processed)


def _is_live(message: AbstractIncomingMessage) -> bool:
    """Whether the message's channel is still open, so settling it means something."""
    try:
        return not message.channel.is_closed
    except aiormq.exceptions.ChannelInvalidStateError:
        return False


class Inbox:
    """Consumes one queue; decodes envelopes; poison goes to the dead-letter queue."""

    def __init__(
        self,
        channel: AbstractChannel,
        queue: AbstractQueue,
        address: str,
        *,
        on_poison: Callable[[str], None] | None,
        namespace: str = "",
    ) -> None:
        """Use ``Inbox.open``; this only wires already opened parts together."""
        self._channel = channel
        self._queue = queue
        self.address = address
        self._on_poison = on_poison
        self._namespace = namespace
        # None wakes waiters when the inbox closes.
        self._ready: asyncio.Queue[Delivery | None] = asyncio.Queue()
        self._closed = False

    @classmethod
    async def open(
        cls,
        connection: AbstractConnection,
        topology: Topology,
        address: str,
        *,
        prefetch: int = 256,
        on_poison: Callable[[str], None] | None = None,
        client: bool = False,
    ) -> Inbox:
        """Declare the queue (a client queue when ``client``) and start consuming it."""
        await ensure_topology(connection, topology)
        channel = connection.channel(publisher_confirms=False)
        await channel.initialize()
        try:
            # Robust channels remember the QoS and re-apply it after a reconnect.
            await channel.set_qos(prefetch_count=prefetch)
            declare = declare_client_queue if client else declare_service_queue
            queue = await declare(channel, topology, address)
            inbox = cls(channel, queue, address, on_poison=on_poison, namespace=topology.namespace)
            await queue.consume(inbox._on_message)
        except BaseException:
            with contextlib.suppress(Exception):
                await channel.close()
            raise
        return inbox

    @property
    def queue_name(self) -> str:
        """The name of the consumed queue."""
        return self._queue.name

    @property
    def buffered(self) -> int:
        """Deliveries received and waiting for ``next_batch`` (a backlog gauge)."""
        return 0 if self._closed else self._ready.qsize()  # only close() queues a None

    @property
    def closed(self) -> bool:
        """True once ``close`` was called."""
        return self._closed

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        try:
            envelope = decode(message.body)
        except DecodeError as error:
            await self._dead_letter(message, kind=type(error).__name__, reason=str(error))
            return
        except Exception as error:  # a codec bug must not stop the consumer
            log.exception("decode_crashed", queue=self.queue_name, message_id=message.message_id)
            await self._dead_letter(message, kind=type(error).__name__, reason=repr(error))
            return
        sender = participant_of(message.user_id, self._namespace)
        self._ready.put_nowait(Delivery(envelope, message, sender))

    async def _dead_letter(
        self, message: AbstractIncomingMessage, *, kind: str, reason: str, notify: bool = True
    ) -> None:
        try:
            await message.reject(requeue=False)
        except _SETTLE_ERRORS as error:
            # Not settled: the broker redelivers it and it is dead-lettered then.
            log.info(
                "poison_reject_failed",
                queue=self.queue_name,
                message_id=message.message_id,
                error=type(error).__name__,
            )
            return
        log.warning(
            "poison_message",
            queue=self.queue_name,
            kind=kind,
            reason=reason,
            message_id=message.message_id,
        )
        if notify and self._on_poison is not None:
            try:
                self._on_poison(kind)
            except Exception:
                log.exception("on_poison_failed", queue=self.queue_name)

    async def next_batch(
        self,
        max_messages: int,
        timeout: float | None,  # noqa: ASYNC109 - "return [] after", part of the API
    ) -> list[Delivery]:
        """Wait up to ``timeout`` seconds (None: forever) for a delivery, then take
        whatever else is ready, up to ``max_messages``. ``[]`` on timeout or when closed.
        """
        if max_messages < 1:
            raise ValueError("max_messages must be >= 1")
        if self._closed:
            return []
        batch: list[Delivery] = []
        try:
            async with asyncio.timeout(timeout):
                while not batch:
                    first = await self._ready.get()
                    if first is None:
                        self._ready.put_nowait(None)  # wake any other waiter too
                        return []
                    if _is_live(first.message):
                        batch.append(first)
        except TimeoutError:
            return []
        while len(batch) < max_messages:
            try:
                item = self._ready.get_nowait()
            except asyncio.QueueEmpty:
                break
            if item is None:
                self._ready.put_nowait(None)
                break
            # Deliveries from a channel lost to a reconnect come again on the new one.
            if _is_live(item.message):
                batch.append(item)
        return batch

    async def ack(self, deliveries: Sequence[Delivery]) -> None:
        """Acknowledge deliveries whose state change is committed.

        A delivery whose channel is gone (closed, or replaced after a reconnect) is
        skipped: acking its tag on the new channel would ack the wrong message or close
        that channel. The broker redelivers it and the idempotent handler sees it again.
        """
        skipped = 0
        for delivery in deliveries:
            message = delivery.message
            if not delivery.unsettled:
                continue
            if not _is_live(message):
                skipped += 1
                continue
            try:
                await message.ack()
            except _SETTLE_ERRORS:
                skipped += 1
        self._log_skipped(skipped)

    async def ack_through(self, deliveries: Sequence[Delivery]) -> None:
        """Acknowledge a batch with one frame: ``basic.ack`` of its highest delivery tag
        with ``multiple``, which settles every lower tag of the channel too.

        Only for a consumer that settles its batches in the order ``next_batch`` gave
        them (the shell chains its batches' settlements), so that every lower tag is in
        this batch or already acked, nacked or rejected. One frame instead of one per
        delivery: per-message work in the client library is most of a service's CPU.
        """
        unsettled = [d for d in deliveries if d.unsettled]
        live = [d for d in unsettled if _is_live(d.message)]
        skipped = len(unsettled) - len(live)
        if live:
            last = max(live, key=lambda d: d.message.delivery_tag or 0)
            channels = {id(d.message.channel) for d in live}
            try:
                if len(channels) == 1:
                    await last.message.ack(multiple=True)
                    for delivery in live:
                        delivery.settled = True
                else:  # pragma: no cover - a batch straddling a reconnect: ack each
                    await self.ack(live)
            except _SETTLE_ERRORS:
                skipped += len(live)
        self._log_skipped(skipped)

    def _log_skipped(self, skipped: int) -> None:
        if skipped:
            log.info("ack_skipped", queue=self.queue_name, skipped=skipped, reason="channel_gone")

    async def retry_later(self, delivery: Delivery) -> None:
        """Requeue a delivery; the quorum delivery limit dead-letters one that keeps failing."""
        message = delivery.message
        if not delivery.unsettled or not _is_live(message):
            return
        with contextlib.suppress(*_SETTLE_ERRORS):
            await message.nack(requeue=True)

    async def reject(self, delivery: Delivery, reason: str) -> None:
        """Dead-letter a delivery now with a short stable ``reason`` (the caller counts it:
        ``on_poison`` is for what the inbox itself refuses, undecodable messages)."""
        message = delivery.message
        if not delivery.unsettled or not _is_live(message):
            return
        await self._dead_letter(message, kind=reason, reason=reason, notify=False)

    async def close(self) -> None:
        """Stop consuming; unacked deliveries go back to the queue."""
        if self._closed:
            return
        self._closed = True
        self._ready.put_nowait(None)
        # Closing the channel cancels the consumer and stops robust restoration; bounded
        # because the connection may be down.
        with contextlib.suppress(Exception):
            async with asyncio.timeout(CLOSE_TIMEOUT):
                await self._channel.close()
