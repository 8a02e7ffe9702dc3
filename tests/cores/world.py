"""A small world of regions and people for core tests, delivered in memory."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from clearinghouse.coordinator import CoordinatorSettings
from contracts.identifiers import CLEARINGHOUSE, region_address
from contracts.operations import (
    BillOutcome,
    BindingOutcome,
    EnrollPerson,
    Operation,
    RecordBinding,
    RegisterRegion,
    Relationship,
    RequestBinding,
    SubmitBill,
)
from contracts.policy import (
    DEFAULT_RESIDENT_PREMIUM_FEN,
    NATIONAL_WALLET_MAX_PER_TRANSFER_FEN,
    NATIONAL_WALLET_MAX_TRANSFERS_PER_DAY,
)
from contracts.vocabulary import Insurance, PaymentOrder, Scope
from gongji.loopback import Loopback
from regions.core import RegionCore
from regions.store import RegionStore

WUHAN, CHENGDU, SHANGHAI, BEIJING = "420100", "510100", "310000", "110000"
CLIENT = "client.test"


def region(
    code: str,
    *,
    enabled: bool = True,
    scope: Scope = Scope.SCOPE_2024,
    order: PaymentOrder = PaymentOrder.OWN_FIRST,
    wallet: bool = True,
    premium_fen: int = DEFAULT_RESIDENT_PREMIUM_FEN,
) -> RegisterRegion:
    return RegisterRegion(
        code,
        f"region {code}",
        "p",
        enabled,
        scope,
        order,
        wallet,
        NATIONAL_WALLET_MAX_PER_TRANSFER_FEN,
        NATIONAL_WALLET_MAX_TRANSFERS_PER_DAY,
        premium_fen,
    )


def person(code: str, psn: str, insurance: Insurance, balance: int = 0) -> tuple[str, Operation]:
    return region_address(code), EnrollPerson(psn, insurance, balance, f"pw-{psn}")


class World:
    """Loopback plus helpers that send and return the one answer."""

    def __init__(self, *registrations: RegisterRegion, settings: CoordinatorSettings | None = None):
        self.net = Loopback([r.region for r in registrations], settings)
        for r in registrations:
            self.net.send(CLEARINGHOUSE, r)
        self.net.deliver_all()

    def enroll(self, code: str, psn: str, insurance: Insurance, balance: int = 0) -> None:
        self.net.send(*person(code, psn, insurance, balance))
        self.net.deliver_all()

    def seed_binding(
        self,
        bid: str,
        copayer: str,
        copayer_region: str,
        beneficiary: str,
        beneficiary_region: str,
        relationship: Relationship = Relationship.PARENT,
    ) -> None:
        self.net.send(
            CLEARINGHOUSE,
            RecordBinding(
                bid, copayer, copayer_region, beneficiary, beneficiary_region, relationship
            ),
        )
        self.net.deliver_all()

    def send(self, code: str, op: Operation) -> None:
        self.net.send(region_address(code), op)
        self.net.deliver_all()

    def deliver_losing(self, lost: type[Operation]) -> list[Operation]:
        """Deliver all in flight, but lose every message of type ``lost``; return those."""
        dropped: list[Operation] = []
        while self.net.queue:
            item = self.net.queue.popleft()
            if isinstance(item.op, lost):
                dropped.append(item.op)
            else:
                self.net._deliver(item)
        return dropped

    def restart(self, code: str, path: Path) -> RegionCore:
        """The region's process dies and starts again from its database file, with a new
        core over it (the file is the in-memory database as committed so far)."""
        old = self.net.regions[code]
        file = sqlite3.connect(path)
        try:
            old.store.db.connection.backup(file)
        finally:
            file.close()
        old.store.close()
        core = self.net.regions[code] = RegionCore(code, RegionStore.open(path))
        return core

    def bill(self, code: str, tid: str, beneficiary: str, amount: int) -> BillOutcome:
        self.send(code, SubmitBill(tid, beneficiary, amount, CLIENT))
        return self.net.outcomes[tid][-1]

    def outcome(self, tid: str) -> BillOutcome:
        return self.net.outcomes[tid][-1]

    def bind(
        self,
        copayer_region: str,
        request_id: str,
        copayer: str,
        beneficiary: str,
        beneficiary_region: str,
        relationship: Relationship = Relationship.PARENT,
        secret: str | None = None,
    ) -> BindingOutcome:
        secret = f"pw-{copayer}" if secret is None else secret
        self.send(
            copayer_region,
            RequestBinding(
                request_id, copayer, secret, beneficiary, beneficiary_region, relationship, CLIENT
            ),
        )
        answers = [
            r
            for r in self.net.replies
            if isinstance(r, BindingOutcome) and r.request_id == request_id
        ]
        return answers[-1]
