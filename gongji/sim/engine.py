"""Former home of the whole simulator, now split (see ``gongji.sim.simulation``).

Kept for a transition so ``from gongji.sim.engine import ...`` keeps working; new code
imports from the module that holds the name.
"""

from __future__ import annotations

from gongji.sim.broker import Message
from gongji.sim.config import DELIVERY_LIMIT, SimConfig
from gongji.sim.node import CLIENT, FORGER, OPERATOR, SUBMITTER, Node
from gongji.sim.services import AFTER_COMMIT, AFTER_PUBLISH, BEFORE_ACK, MID_TRANSACTION
from gongji.sim.simulation import RunResult, Simulation
from gongji.sim.stats import Stats

__all__ = [
    "AFTER_COMMIT",
    "AFTER_PUBLISH",
    "BEFORE_ACK",
    "CLIENT",
    "DELIVERY_LIMIT",
    "FORGER",
    "MID_TRANSACTION",
    "OPERATOR",
    "SUBMITTER",
    "Message",
    "Node",
    "RunResult",
    "SimConfig",
    "Simulation",
    "Stats",
]
