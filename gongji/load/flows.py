"""The flows a load can mix (``--mix copay=0.8,wallet=0.2``) and how each makes a request.

A flow turns (sequence number, payee region, cross-province or not) into one operation
sent to a region; its one final ``BillOutcome`` comes back to the load's client queue,
matched by transfer id. ``copay`` submits a bill at the beneficiary's region; ``wallet``
and ``premium`` are the co-payer's own requests, at the co-payer's region, for the same
seeded families; ``away`` is a bill at the co-payer's region for a beneficiary insured in
another province who registered care there (the migrant family treated where the
co-payer works), its registrations sent before the load starts (``setup``).
``binding`` binds new relatives and revokes the bindings it made, at the co-payer's
region; its answer is a ``BindingOutcome``, matched by request id.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from contracts.identifiers import region_address
from contracts.operations import (
    BindingOutcome,
    Insurance,
    Operation,
    RecordBinding,
    RequestAwayRegistration,
    RequestBinding,
    RequestPremiumPayment,
    RequestWalletTransfer,
    RevokeBinding,
    SubmitAwayBill,
    SubmitBill,
)
from contracts.vocabulary import SCOPE_RELATIONSHIPS, Scope
from gongji.cluster.seed import SeededPopulation
from gongji.population import Person

MIN_BILL_FEN = 1_000
MAX_BILL_FEN = 300_000
"""Out-of-pocket shares between ¥10 and ¥3,000."""


class MixError(ValueError):
    """A ``--mix`` that names an unknown flow or has bad weights."""


@dataclass(frozen=True, slots=True)
class Request:
    """One request of the load: where it goes and how to recognise its answer."""

    flow: str
    address: str
    op: Operation
    transfer_id: str
    cross_province: bool
    payee_region: str = ""
    """The region code the request goes to (the report counts throughput by it)."""


class Flow(Protocol):
    """Makes the requests of one kind of transfer."""

    name: str

    def make(
        self, rng: random.Random, transfer_id: str, payee_region: str, cross: bool
    ) -> Request: ...


class CopayFlow:
    """Co-payment of a bill: ``SubmitBill`` to the beneficiary's region."""

    name = "copay"

    def __init__(self, seeded: SeededPopulation, reply_to: str) -> None:
        self.seeded = seeded
        self.reply_to = reply_to

    def make(self, rng: random.Random, transfer_id: str, payee_region: str, cross: bool) -> Request:
        pools = (self.seeded.cross_province, self.seeded.same_province)
        first, second = pools if cross else pools[::-1]
        pool = first.get(payee_region) or second.get(payee_region) or []
        if not pool:
            raise MixError(f"region {payee_region} has no seeded beneficiary")
        crossing = pool is self.seeded.cross_province.get(payee_region)
        beneficiary = pool[rng.randrange(len(pool))]
        amount = rng.randint(*(self.seeded.bill_fen or (MIN_BILL_FEN, MAX_BILL_FEN)))
        bill = SubmitBill(transfer_id, beneficiary, amount, self.reply_to)
        return Request(
            self.name, region_address(payee_region), bill, transfer_id, crossing, payee_region
        )


WALLET_MIN_FEN = 10_000
WALLET_MAX_FEN = 126_000
"""Wallet transfers between ¥100 and ¥1,260: ¥680 on average, the published mean."""
PREMIUM_YEARS = (2025, 2026)
"""A premium is paid once per person and year: the later repeats are refused
(``PREMIUM_ALREADY_PAID``), as a real year's second payment is."""


class _FamilyFlow:
    """A co-payer's own request for a bound relative, sent to the co-payer's region."""

    name = ""

    def __init__(self, seeded: SeededPopulation, reply_to: str) -> None:
        self.seeded = seeded
        self.reply_to = reply_to
        self._person: dict[str, Person] = {p.psn_no: p for p in seeded.population.persons}
        self._binding: dict[str, RecordBinding] = {}
        for binding in seeded.population.bindings:
            # A co-payer outside the population (a scenario's unregistered region) cannot
            # be asked to pay from his or her own region.
            if binding.copayer in self._person:
                self._binding.setdefault(binding.beneficiary, binding)

    def _family(
        self, rng: random.Random, payee_region: str, cross: bool
    ) -> tuple[RecordBinding, Person, bool]:
        pools = (self.seeded.cross_province, self.seeded.same_province)
        first, second = pools if cross else pools[::-1]
        pool = first.get(payee_region) or second.get(payee_region) or []
        if not pool:
            raise MixError(f"region {payee_region} has no seeded beneficiary")
        crossing = pool is self.seeded.cross_province.get(payee_region)
        binding = self._binding[pool[rng.randrange(len(pool))]]
        return binding, self._person[binding.copayer], crossing


class WalletFlow(_FamilyFlow):
    """A wallet transfer (医保钱包): co-payer to a bound relative's wallet, at most 3 a
    day per co-payer and ¥2,000 each (the regions refuse the rest)."""

    name = "wallet"

    def make(self, rng: random.Random, transfer_id: str, payee_region: str, cross: bool) -> Request:
        binding, copayer, crossing = self._family(rng, payee_region, cross)
        op = RequestWalletTransfer(
            transfer_id,
            copayer.psn_no,
            copayer.secret,
            binding.beneficiary,
            binding.beneficiary_region,
            rng.randint(*(self.seeded.wallet_fen or (WALLET_MIN_FEN, WALLET_MAX_FEN))),
            self.reply_to,
        )
        return Request(
            self.name, region_address(copayer.region), op, transfer_id, crossing, payee_region
        )


class PremiumFlow(_FamilyFlow):
    """A premium payment (代缴居民医保) for a bound relative, once per person and year."""

    name = "premium"

    def make(self, rng: random.Random, transfer_id: str, payee_region: str, cross: bool) -> Request:
        binding, copayer, crossing = self._family(rng, payee_region, cross)
        op = RequestPremiumPayment(
            transfer_id,
            copayer.psn_no,
            copayer.secret,
            binding.beneficiary,
            binding.beneficiary_region,
            rng.choice(PREMIUM_YEARS),
            self.reply_to,
        )
        return Request(
            self.name, region_address(copayer.region), op, transfer_id, crossing, payee_region
        )


AWAY_REGISTERED_PER_REGION = 50
"""Beneficiaries of each region registered for care away from home before a load."""


class AwayFlow(_FamilyFlow):
    """A bill at the region of care (异地就医): the co-payer's region, for a beneficiary
    insured in another province, registered there by ``setup``."""

    name = "away"

    def __init__(self, seeded: SeededPopulation, reply_to: str) -> None:
        super().__init__(seeded, reply_to)
        self._registered: dict[str, list[RecordBinding]] = {}
        for region, beneficiaries in seeded.cross_province.items():
            bindings = [self._binding[b] for b in beneficiaries]
            away = [b for b in bindings if b.copayer_region != b.beneficiary_region]
            if away:
                self._registered[region] = away[:AWAY_REGISTERED_PER_REGION]

    def setup(self) -> list[tuple[str, RequestAwayRegistration]]:
        """The registrations (address, request) to be recorded before the first bill; the
        same ids on every run, so a second run is answered as recorded."""
        out = []
        for bindings in self._registered.values():
            for b in bindings:
                person = self._person[b.beneficiary]
                request = RequestAwayRegistration(
                    f"away-{b.beneficiary}-{b.copayer_region}",
                    b.beneficiary,
                    person.secret,
                    b.copayer_region,
                    0,
                    0,
                    self.reply_to,
                )
                out.append((region_address(b.beneficiary_region), request))
        return out

    def make(self, rng: random.Random, transfer_id: str, payee_region: str, cross: bool) -> Request:
        registered = self._registered.get(payee_region) or [
            b for bindings in self._registered.values() for b in bindings
        ]
        if not registered:
            raise MixError("no beneficiary has a co-payer in another region to be treated at")
        b = registered[rng.randrange(len(registered))]
        amount = rng.randint(MIN_BILL_FEN, MAX_BILL_FEN)
        bill = SubmitAwayBill(
            transfer_id, b.beneficiary, b.beneficiary_region, amount, self.reply_to
        )
        care = b.copayer_region
        return Request(self.name, region_address(care), bill, transfer_id, True, care)


REVOKE_SHARE = 0.3
"""Of the binding flow's requests, revocations (while a binding it made is there to
revoke); the rest bind a new relative."""
REVOKE = "revoke"
"""The name the binding flow's revocations are reported under, beside ``binding``."""


@dataclass(frozen=True, slots=True)
class _Made:
    """A binding this load made and the directory recorded: the load may revoke it."""

    binding_id: str
    copayer: Person


class BindingFlow(_FamilyFlow):
    """Binding requests (绑定) and revocations (解绑), at the co-payer's region, identity
    checked, decided by the national directory.

    A bind asks for a co-payer of another province (or of the same one, as ``cross``
    says) for a seeded beneficiary of the payee region, in the 2021 scope every region
    allows; the beneficiary then has one co-payer more, so co-payments choose among more
    quotes. A revocation withdraws a binding this load made and saw recorded (never a
    seeded one, whose co-payments the other flows count on); the flow learns which from
    ``answered``, so it revokes nothing until a bind's outcome came back.
    """

    name = "binding"
    reported_as = ("binding", REVOKE)

    def __init__(self, seeded: SeededPopulation, reply_to: str) -> None:
        super().__init__(seeded, reply_to)
        provinces = {r.code: r.province for r in seeded.regions}
        self._province = provinces
        self._copayers: dict[str, list[Person]] = {}
        for person in seeded.population.persons:
            if person.insurance is Insurance.EMPLOYEE and person.opening_balance_fen > 0:
                self._copayers.setdefault(person.region, []).append(person)
        enabled = [r.code for r in seeded.regions if r.enabled and r.code in self._copayers]
        self._enabled = enabled or sorted(self._copayers)
        self._relationships = sorted(SCOPE_RELATIONSHIPS[Scope.SCOPE_2021])
        self._asked: dict[str, Person] = {}
        """Bind requests under way: request id -> co-payer."""
        self._made: list[_Made] = []

    def make(self, rng: random.Random, transfer_id: str, payee_region: str, cross: bool) -> Request:
        if self._made and rng.random() < REVOKE_SHARE:
            made = self._made.pop(rng.randrange(len(self._made)))
            copayer = made.copayer
            revoke = RevokeBinding(
                transfer_id, copayer.psn_no, copayer.secret, made.binding_id, self.reply_to
            )
            return Request(
                REVOKE, region_address(copayer.region), revoke, transfer_id, cross, payee_region
            )
        binding, _, crossing = self._family(rng, payee_region, cross)
        home = self._province.get(binding.beneficiary_region, "")
        regions = [
            code
            for code in self._enabled
            if (self._province.get(code) != home) == crossing and code != payee_region
        ] or self._enabled
        region = regions[rng.randrange(len(regions))]
        pool = self._copayers[region]
        copayer = pool[rng.randrange(len(pool))]
        self._asked[transfer_id] = copayer
        op = RequestBinding(
            transfer_id,
            copayer.psn_no,
            copayer.secret,
            binding.beneficiary,
            binding.beneficiary_region,
            rng.choice(self._relationships),
            self.reply_to,
        )
        return Request(
            self.name, region_address(copayer.region), op, transfer_id, crossing, payee_region
        )

    def answered(self, outcome: BindingOutcome) -> None:
        """A bind's outcome: recorded as this request's own binding, it may be revoked."""
        copayer = self._asked.pop(outcome.request_id, None)
        if copayer is None or outcome.reason is not None:
            return
        # "Bound already" answers with the existing binding's id: not ours to revoke.
        if outcome.binding_id == outcome.request_id:
            self._made.append(_Made(outcome.binding_id, copayer))


FlowFactory = Callable[[SeededPopulation, str], Flow]

FLOWS: dict[str, FlowFactory] = {
    "copay": CopayFlow,
    "wallet": WalletFlow,
    "premium": PremiumFlow,
    "away": AwayFlow,
    "binding": BindingFlow,
}
"""Flows the load generator can send."""

PLANNED: tuple[str, ...] = ()
"""Flows the regions carry but the load generator does not send yet."""


def parse_mix(text: str) -> dict[str, float]:
    """``"copay=0.8,wallet=0.2"`` -> normalised weights; a bare name weighs 1."""
    weights: dict[str, float] = {}
    for part in text.replace(" ", "").split(","):
        if not part:
            continue
        name, _, raw = part.partition("=")
        try:
            weight = float(raw) if raw else 1.0
        except ValueError:
            raise MixError(f"mix weight of {name!r} is not a number: {raw!r}") from None
        if weight < 0:
            raise MixError(f"mix weight of {name!r} is negative")
        if name not in FLOWS:
            hint = " (not sent by the load generator yet)" if name in PLANNED else ""
            raise MixError(f"unknown flow {name!r}{hint}; known: {', '.join(sorted(FLOWS))}")
        weights[name] = weights.get(name, 0.0) + weight
    total = sum(weights.values())
    if total <= 0:
        raise MixError(f"the mix {text!r} has no positive weight")
    return {name: w / total for name, w in weights.items() if w > 0}


def zipf_weights(count: int, exponent: float) -> list[float]:
    """Weight of rank i (0-based) proportional to 1 / (i + 1) ** exponent; 0 is uniform."""
    if exponent < 0:
        raise ValueError("the skew exponent is >= 0")
    raw = [1 / (i + 1) ** exponent for i in range(count)]
    total = sum(raw)
    return [w / total for w in raw]
