"""Counts of what the simulated network did, and where the wall time went."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class Stats:
    """Counts of what the network did (besides faults)."""

    deliveries: int = 0
    mailbox_deliveries: int = 0
    """Of those, to province mailboxes (``SimConfig.mailboxes``)."""
    operations: int = 0
    steps: int = 0
    ticks: int = 0
    client_retries: int = 0
    redeliveries: int = 0
    publish_dropped: int = 0
    unroutable: int = 0
    core_errors: int = 0
    dead_lettered: int = 0
    forgeries: int = 0
    """Forged messages published by the ``hostile`` fault."""
    forgeries_refused: int = 0
    """Of those, refused by the broker (routing) or by the receiver (permissions)."""
    # Wall time, for the report only: in the cores' transactions (handle, tick, resume
    # and SQLite), in the invariant checks, and in setting up the population.
    core_seconds: float = 0.0
    check_seconds: float = 0.0
    setup_seconds: float = 0.0
