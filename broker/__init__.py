"""RabbitMQ plumbing: topology, robust connections, confirmed publishing, batched inboxes."""

from broker.connection import BrokerUnavailable, connect
from broker.inbox import Delivery, Inbox
from broker.publisher import BatchingSender, Publisher, PublishError, Unroutable
from broker.topology import (
    Topology,
    declare_client_queue,
    declare_service_queue,
    declare_topology,
    delete_namespace,
)

__all__ = [
    "BatchingSender",
    "BrokerUnavailable",
    "Delivery",
    "Inbox",
    "PublishError",
    "Publisher",
    "Topology",
    "Unroutable",
    "connect",
    "declare_client_queue",
    "declare_service_queue",
    "declare_topology",
    "delete_namespace",
]
