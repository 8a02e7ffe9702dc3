"""The clearinghouse core: one sans-I/O facade over the national platform's parts.

``handle``, ``tick`` and ``resume`` are what its shells (RabbitMQ, simulation) call; each
returns its ``Effects``. The operations go to the part that owns them: the registry (here),
the transfer coordinator, the binding directory, and clearing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from clearinghouse.clearing import Clearing
from clearinghouse.coordinator import CoordinatorSettings, TransferCoordinator
from clearinghouse.directory import BindingDirectory
from clearinghouse.settlement import FundSettlement, SettlementRule
from clearinghouse.store import ClearinghouseStore, Region
from contracts.effects import Anomaly, Effects, Outgoing, RegionRegistered
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
    RegistryChanged,
    RegistryResult,
    RequestAid,
    RequestTransfer,
    ReserveResult,
    SetRegionEnabled,
    SettlementBooked,
    WithdrawBinding,
)
from contracts.policy import policy_of

Handler = Callable[[Any, int], Effects]


class ClearinghouseCore:
    """The national platform (国家医保服务平台) as a plain class over its store."""

    def __init__(
        self,
        store: ClearinghouseStore,
        settings: CoordinatorSettings | None = None,
        coordinator_class: type[TransferCoordinator] = TransferCoordinator,
        rule: SettlementRule | None = None,
    ) -> None:
        self.store = store
        self.settings = settings or CoordinatorSettings()
        self.clearing = Clearing(store)
        self.coordinator = coordinator_class(
            store, self.settings, on_committed=self.clearing.record_commit
        )
        self.directory = BindingDirectory(store, self.settings)
        self.settlement = FundSettlement(store, rule or SettlementRule())
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
            CloseWindow: self.close_window,
            SettlementBooked: self.settlement.booked,
            Reconciled: k.reconciled,
            Disagreement: k.disagreement,
            QueryWindow: k.query_window,
            RegisterRegion: self.register_region,
            SetRegionEnabled: self.set_region_enabled,
        }

    def handle(self, op: Operation, now_ms: int) -> Effects:
        """Apply one operation; the caller holds the transaction."""
        handler = self._handlers.get(type(op))
        if handler is None:
            return Effects(events=[Anomaly("", f"clearinghouse got unexpected {op.TAG}")])
        return handler(op, now_ms)

    def tick(self, now_ms: int) -> Effects:
        return self.coordinator.tick(now_ms) + self.directory.tick(now_ms)

    def resume(self, now_ms: int) -> Effects:
        """After a restart: re-send the current step of everything unfinished."""
        return (
            self.coordinator.resume(now_ms)
            + self.directory.resume(now_ms)
            + self.settlement.resume(now_ms)
        )

    def close_window(self, op: CloseWindow, now_ms: int) -> Effects:
        """Clearing closes the window (reports, reconciliation); then its settlement.

        The settlements follow the reports in the same step, so a region has them in
        order unless the broker reorders; it waits for its lines either way."""
        effects = self.clearing.close_window(op, now_ms)
        closed = self.store.window_closed_by(op.request_id)
        if closed is None:
            return effects
        return effects + self.settlement.settle_window(closed.window, now_ms)

    # --- the registry of regions ---

    def register_region(self, op: RegisterRegion, now_ms: int) -> Effects:
        if not is_region_code(op.region):
            refused = Anomaly("", f"refused to register bad region code {op.region!r}")
            return Effects(
                _answer(op.reply_to, op.region, RegistryResult.BAD_REGION_CODE), [refused]
            )
        region = Region(op.region, op.name, op.province, op.enabled, policy_of(op))
        self.store.upsert_region(region)
        answer = _answer(op.reply_to, op.region, RegistryResult.REGISTERED)
        return Effects([self._configure(region), *answer], [RegionRegistered(op.region)])

    def set_region_enabled(self, op: SetRegionEnabled, now_ms: int) -> Effects:
        """Live roll-out: decided transfers complete; new ones see the new setting.

        Enabling an enabled region changes nothing but configures the region again (cheap,
        idempotent, and heals a region that missed its configuration)."""
        before = self.store.region(op.region)
        if before is None:
            unknown = Anomaly("", f"cannot enable unknown region {op.region}")
            answer = _answer(op.reply_to, op.region, RegistryResult.UNKNOWN_REGION)
            return Effects(answer, [unknown])
        if before.enabled != op.enabled:
            self.store.set_enabled(op.region, op.enabled)
        region = self.store.region(op.region)
        assert region is not None
        if before.enabled == op.enabled:
            result = (
                RegistryResult.ALREADY_ENABLED if op.enabled else RegistryResult.ALREADY_DISABLED
            )
        else:
            result = RegistryResult.ENABLED if op.enabled else RegistryResult.DISABLED
        return Effects([self._configure(region), *_answer(op.reply_to, op.region, result)])

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


def _answer(reply_to: str, region: str, result: RegistryResult) -> list[Outgoing]:
    """The operator's answer, when it asked for one (``reply_to`` set)."""
    return [Outgoing(reply_to, RegistryChanged(region, result))] if reply_to else []
