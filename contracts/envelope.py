"""The envelope: one broker message carrying a batch of operations."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from contracts.operations import Operation

MESSAGE_TYPE = "gongji.operations"
"""The only envelope type so far: a batch of typed operations."""

SCHEMA_VERSION = 1
"""Version of the operation vocabulary in ``contracts.operations``."""

SUPPORTED_VERSIONS = frozenset({1})


@dataclass(frozen=True, slots=True)
class Envelope:
    """A batch of 1..N operations from one sender to one destination.

    ``destinations`` is empty for a service's own queue; on a province host's mailbox it
    names each operation's region (same length as ``operations``), so the clearinghouse
    sends a province one envelope rather than one per region.

    Batching is the design: one broker message and one SQLite transaction carry many
    operations, because per-message costs dominate on the broker.
    """

    message_id: str
    sender: str
    sent_at_ms: int
    operations: Sequence[Operation]
    message_type: str = MESSAGE_TYPE
    schema_version: int = SCHEMA_VERSION
    extra: dict[str, object] = field(default_factory=dict)
    destinations: Sequence[str] = ()
