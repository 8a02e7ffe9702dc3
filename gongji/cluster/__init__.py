"""A local multi-process cluster: ``gongji cluster up`` / ``down`` (see ``local``)."""

from gongji.cluster.local import (
    AlreadyUp,
    ClusterConfig,
    ClusterError,
    ClusterState,
    NotUp,
    PortInUse,
    ServiceFailed,
    cluster_down,
    cluster_up,
    read_state,
)

__all__ = [
    "AlreadyUp",
    "ClusterConfig",
    "ClusterError",
    "ClusterState",
    "NotUp",
    "PortInUse",
    "ServiceFailed",
    "cluster_down",
    "cluster_up",
    "read_state",
]
