"""The clearinghouse core: one sans-I/O facade over the national platform's parts.

``handle``, ``tick``, ``resume`` and ``drain_events`` are what its shells (RabbitMQ,
simulation) call; the operations go to the part that owns them: the registry (here),
the transfer coordinator, the binding directory, and clearing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from clearinghouse.clearing import Clearing
from clearinghouse.coordinator import CoordinatorSettings, TransferCoordinator
from clearinghouse.directory import BindingDirectory
from clearinghouse.store import ClearinghouseStore, Region
from contracts.effects import Anomaly, AnyEvent, Outgoing, RegionRegistered
from contracts.identifiers import is_region_code, region_address
from contracts.operations import (
    Aborted,
    BalanceQuoted,
    BeneficiaryVerified,
    CloseWindow,
    CommitResult,
    ConfigureRegion,
    Credited,
    Disagreement,
    InsuranceChanged,
    Operation,
    PremiumQuoted,
    ProposeBinding,
    QueryWindow,
    Reconciled,
    RecordBinding,
    RegisterRegion,
    RequestAid,
    RequestTransfer,
    ReserveResult,
    SetRegionEnabled,
    WithdrawBinding,
)
from contracts.policy import policy_of

Handler = Callable[[Any, int], list[Outgoing]]


class ClearinghouseCore:
    """The national platform (国家医保服务平台) as a plain class over its store."""

    def __init__(
        self,
        store: ClearinghouseStore,
        settings: CoordinatorSettings | None = None,
        coordinator_class: type[TransferCoordinator] = TransferCoordinator,
    ) -> None:
        self.store = store
        self.settings = settings or CoordinatorSettings()
        self.events: list[AnyEvent] = []
        self.clearing = Clearing(store, self.events)
        self.coordinator = coordinator_class(
            store, self.settings, self.events, on_committed=self.clearing.record_commit
        )
        self.directory = BindingDirectory(store, self.settings, self.events)
        c, d, k = self.coordinator, self.directory, self.clearing
        self._handlers: dict[type[Operation], Handler] = {
            RequestAid: c.request_aid,
            RequestTransfer: c.request_transfer,
            ReserveResult: c.reserve_result,
            CommitResult: c.commit_result,
            Credited: c.credited,
            BalanceQuoted: c.balance_quoted,
            PremiumQuoted: c.premium_quoted,
            Aborted: c.aborted,
            ProposeBinding: d.propose_binding,
            BeneficiaryVerified: d.beneficiary_verified,
            WithdrawBinding: d.withdraw_binding,
            InsuranceChanged: d.insurance_changed,
            RecordBinding: d.record_binding,
            CloseWindow: k.close_window,
            Reconciled: k.reconciled,
            Disagreement: k.disagreement,
            QueryWindow: k.query_window,
            RegisterRegion: self.register_region,
            SetRegionEnabled: self.set_region_enabled,
        }

    def handle(self, op: Operation, now_ms: int) -> list[Outgoing]:
        """Apply one operation; the caller holds the transaction."""
        handler = self._handlers.get(type(op))
        if handler is None:
            self.events.append(Anomaly("", f"clearinghouse got unexpected {op.TAG}"))
            return []
        return handler(op, now_ms)

    def tick(self, now_ms: int) -> list[Outgoing]:
        return self.coordinator.tick(now_ms) + self.directory.tick(now_ms)

    def resume(self, now_ms: int) -> list[Outgoing]:
        """After a restart: re-send the current step of everything unfinished."""
        return self.coordinator.resume(now_ms) + self.directory.resume(now_ms)

    def drain_events(self) -> list[AnyEvent]:
        events = list(self.events)
        self.events.clear()  # in place: the parts share this list
        return events

    # --- the registry of regions ---

    def register_region(self, op: RegisterRegion, now_ms: int) -> list[Outgoing]:
        if not is_region_code(op.region):
            self.events.append(Anomaly("", f"refused to register bad region code {op.region!r}"))
            return []
        region = Region(op.region, op.name, op.province, op.enabled, policy_of(op))
        self.store.upsert_region(region)
        self.events.append(RegionRegistered(op.region))
        return [self._configure(region)]

    def set_region_enabled(self, op: SetRegionEnabled, now_ms: int) -> list[Outgoing]:
        """Live roll-out: decided transfers complete; new ones see the new setting."""
        if not self.store.set_enabled(op.region, op.enabled):
            self.events.append(Anomaly("", f"cannot enable unknown region {op.region}"))
            return []
        region = self.store.region(op.region)
        assert region is not None
        return [self._configure(region)]

    @staticmethod
    def _configure(region: Region) -> Outgoing:
        p = region.policy
        configure = ConfigureRegion(
            region.code,
            region.enabled,
            p.scope,
            p.payment_order,
            p.wallet_enabled,
            p.wallet_max_per_transfer_fen,
            p.wallet_max_transfers_per_day,
            p.resident_premium_fen,
        )
        return Outgoing(region_address(region.code), configure)
