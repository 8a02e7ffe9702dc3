"""The records of a validated scenario: regions' population and request specs, roll-out."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum

from contracts.policy import NATIONAL_WALLET_MAX_PER_TRANSFER_FEN
from contracts.vocabulary import Insurance, Relationship
from gongji.population import Draws, Migration, RegionSpec


@dataclass(frozen=True, slots=True)
class FenRange:
    """An inclusive range of amounts in fen."""

    min: int
    max: int


@dataclass(frozen=True, slots=True)
class InsuranceMix:
    """Shares of the persons of a region by insurance (they sum to 1)."""

    employee: float = 0.6
    resident: float = 0.3
    none: float = 0.1


DEFAULT_RELATIONSHIP_MIX: tuple[tuple[Relationship, float], ...] = (
    (Relationship.SPOUSE, 0.3),
    (Relationship.PARENT, 0.25),
    (Relationship.CHILD, 0.25),
    (Relationship.SIBLING, 0.1),
    (Relationship.GRANDPARENT, 0.05),
    (Relationship.GRANDCHILD, 0.05),
)


@dataclass(frozen=True, slots=True)
class PopulationSpec:
    """The population to draw for every region of a scenario."""

    persons_per_region: int = 100
    insurance_mix: InsuranceMix = field(default_factory=InsuranceMix)
    zero_balance_share: float = 0.1
    """Share of employee-insured persons whose personal account is empty."""
    balance_fen: FenRange = field(default_factory=lambda: FenRange(100, 500_000))
    """Opening balance of the other employee-insured persons."""
    beneficiary_share: float = 0.75
    """Share of insured persons who get at least one co-payer."""
    bindings_per_beneficiary: tuple[tuple[int, float], ...] = ((1, 0.7), (2, 0.3))
    """(number of co-payers, share), ascending by number."""
    cross_region_share: float = 0.8
    """Share of co-payers drawn from another region than the beneficiary's."""
    relationship_mix: tuple[tuple[Relationship, float], ...] = DEFAULT_RELATIONSHIP_MIX
    """Drawn among the relationships both regions' policies allow (renormalised)."""
    unregistered_copayer_share: float = 0.03
    """Share of beneficiaries bound to a co-payer in ``unregistered_region``."""
    unregistered_region: str = "650100"
    """A real region code outside the scenario: its co-payers give ``UNKNOWN_REGION``."""
    short_balance_share: float = 0.0
    """Of the employee-insured persons with money, those with a short balance."""
    short_balance_max_fen: int = 10_000
    """A short balance is drawn from 1 to this."""
    migration: Migration | None = None
    """Cross-region co-payers of families at home drawn in the provinces people work in."""

    def draws(self) -> Draws:
        """The population generator's parameters for this spec."""
        mix = self.insurance_mix
        upper, cumulative = [], 0.0
        for count, share in self.bindings_per_beneficiary:
            cumulative += share
            upper.append((count, cumulative))
        # The last bucket takes every draw, whatever the rounding of the sum.
        upper[-1] = (upper[-1][0], math.inf)
        return Draws(
            employee_below=mix.employee,
            resident_below=mix.employee + mix.resident,
            zero_balance_share=self.zero_balance_share,
            balance_min_fen=self.balance_fen.min,
            balance_max_fen=self.balance_fen.max,
            unbound_share=1.0 - self.beneficiary_share,
            unregistered_share=self.unregistered_copayer_share,
            unregistered_region=self.unregistered_region,
            bindings_upper=tuple(upper),
            cross_region_share=self.cross_region_share,
            relationship_weights=self.relationship_mix,
            short_balance_share=self.short_balance_share,
            short_balance_max_fen=self.short_balance_max_fen,
            migration=self.migration,
        )


class WindowCadence(StrEnum):
    """How often the operator closes the clearing window (and so settles between funds)."""

    DAILY = "daily"
    MONTHLY = "monthly"


@dataclass(frozen=True, slots=True)
class ClearingSpec:
    """``[clearing]``: the clearing period (清算周期) and the regions' advances (预付金)."""

    window: WindowCadence = WindowCadence.MONTHLY
    """Monthly in practice; daily shows more settlements in one simulated month."""
    advance_fen: int = 0
    """Each region's advance at the clearinghouse, topped up to this at every close; 0:
    none (each close settles the nets between the funds)."""


@dataclass(frozen=True, slots=True)
class BillSpec:
    """The requests of a run: bills, and for the demo wallet transfers, premium payments
    and binding requests, a share of them deliberately wrong."""

    count: int = 400
    amount_fen: FenRange = field(default_factory=lambda: FenRange(1_000, 300_000))
    bound_share: float = 0.8
    """Share of bills for a beneficiary with a co-payer bound (the rest: anyone)."""
    wallet_transfers: int = 0
    wallet_amount_fen: FenRange = field(
        default_factory=lambda: FenRange(1_000, NATIONAL_WALLET_MAX_PER_TRANSFER_FEN)
    )
    """Drawn, then cut to both regions' per-transfer limits (except the over-limit ones)."""
    premium_payments: int = 0
    premium_year: int = 2025
    binding_requests: int = 0
    wrong_secret_share: float = 0.0
    """Of wallet transfers, premium payments and binding requests: ``IDENTITY_CHECK_FAILED``."""
    over_limit_share: float = 0.0
    """Of wallet transfers: above both regions' per-transfer limit (``LIMIT_EXCEEDED``)."""
    duplicate_premium_share: float = 0.0
    """Of premium payments: a second payment of a person and year (``PREMIUM_ALREADY_PAID``)."""
    policy_disagreement_share: float = 0.0
    """Of binding requests: a relationship one region's scope refuses (``POLICY_DISAGREEMENT``)."""


@dataclass(frozen=True, slots=True)
class RolloutStep:
    """After ``after_bills`` bills have been submitted, enable and disable regions."""

    after_bills: int
    enable: tuple[str, ...] = ()
    disable: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class NamedPerson:
    """A person a scenario lists by name (``[[persons]]``), beside the drawn population."""

    psn_no: str
    region: str
    insurance: Insurance
    balance_fen: int = 0
    secret: str = ""


@dataclass(frozen=True, slots=True)
class NamedBinding:
    """A family binding a scenario lists (``[[bindings]]``): who pays for whom."""

    copayer: str
    beneficiary: str
    relationship: Relationship


BILLS_PAID = ("full", "part", "refused")
"""How a bill's co-payment ended: the co-payer paid all of the asked share, some of it
(the rest left to other means), or nothing (refused)."""


@dataclass(frozen=True, slots=True)
class CalibrationTargets:
    """What a run of the scenario should show (``[calibration]``), for
    ``gongji report calibration``; None: no target for that figure."""

    wallet_amount_fen: int | None = None
    """Mean amount of a committed wallet transfer."""
    premium_money_share: float | None = None
    """Premiums' share of the money co-payers spent on bills and premiums."""
    flow_shares: tuple[tuple[str, float], ...] = ()
    """Share of the requests by flow (they sum to 1)."""
    bills_paid: tuple[tuple[str, float], ...] = ()
    """Share of co-payments paid in full, in part, refused (they sum to 1)."""


@dataclass(frozen=True, slots=True)
class Scenario:
    """A validated scenario (see ``load_scenario``)."""

    name: str
    description: str
    seed: int
    regions: tuple[RegionSpec, ...]
    population: PopulationSpec
    bills: BillSpec
    rollout: tuple[RolloutStep, ...] = ()
    persons: tuple[NamedPerson, ...] = ()
    """Named persons, enrolled besides the drawn population."""
    bindings: tuple[NamedBinding, ...] = ()
    """Named bindings between persons of ``persons``."""
    clearing: ClearingSpec = field(default_factory=ClearingSpec)
    calibration: CalibrationTargets = field(default_factory=CalibrationTargets)
    """The figures a run should show (``[calibration]``)."""

    @property
    def codes(self) -> list[str]:
        return [r.code for r in self.regions]

    def region(self, code: str) -> RegionSpec:
        for r in self.regions:
            if r.code == code:
                return r
        raise KeyError(code)

    def enabled_after(self, bills_done: int) -> frozenset[str]:
        """The regions enabled once ``bills_done`` bills are submitted and every roll-out
        step due by then has been applied."""
        enabled = {r.code for r in self.regions if r.enabled}
        for step in self.rollout:
            if step.after_bills <= bills_done:
                enabled |= set(step.enable)
                enabled -= set(step.disable)
        return frozenset(enabled)

    def always_enabled(self) -> frozenset[str]:
        """Regions enabled from the start and never disabled by the roll-out."""
        disabled = {code for step in self.rollout for code in step.disable}
        return frozenset(r.code for r in self.regions if r.enabled and r.code not in disabled)
