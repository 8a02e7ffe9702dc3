"""Deterministic populations and bill mixes for the demo, the simulator and load tests.

Everything here is pure: the same seed gives the same regions, persons, bindings and
bills, expressed as the operations that set them up over any transport.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field

from contracts.effects import Outgoing
from contracts.identifiers import CLEARINGHOUSE, region_address
from contracts.operations import (
    EnrollPerson,
    Insurance,
    RecordBinding,
    RegisterRegion,
    Relationship,
    SubmitBill,
)
from contracts.policy import Policy


@dataclass(frozen=True, slots=True)
class RegionSpec:
    """A pooling region of a scenario."""

    code: str
    name: str
    province: str
    enabled: bool
    policy: Policy = field(default_factory=Policy)

    def register(self) -> RegisterRegion:
        """The registry operation for this region, policy included."""
        p = self.policy
        return RegisterRegion(
            self.code,
            self.name,
            self.province,
            self.enabled,
            scope=p.scope,
            payment_order=p.payment_order,
            wallet_enabled=p.wallet_enabled,
            wallet_max_per_transfer_fen=p.wallet_max_per_transfer_fen,
            wallet_max_transfers_per_day=p.wallet_max_transfers_per_day,
            resident_premium_fen=p.resident_premium_fen,
            direct_settlement=p.direct_settlement,
            catalogue_share_permille=p.catalogue_share_permille,
        )


DEMO_REGIONS: tuple[RegionSpec, ...] = (
    # Beijing had not enabled cross-province personal-account mutual aid by 2025-03.
    RegionSpec("110000", "北京市 Beijing", "北京 Beijing", False),
    RegionSpec("310000", "上海市 Shanghai", "上海 Shanghai", True),
    RegionSpec("420100", "武汉市 Wuhan", "湖北 Hubei", True),
    RegionSpec("510100", "成都市 Chengdu", "四川 Sichuan", True),
    RegionSpec("440100", "广州市 Guangzhou", "广东 Guangdong", True),
)

UNREGISTERED_REGION = "650100"
"""Urumqi: a real code with co-payers in the directory but not in the registry."""


def secret_of(psn_no: str, seed: int) -> str:
    """The simulated identity secret (face or password) of a generated person."""
    # A hash rather than a draw from the seed's generator, so that adding secrets did not
    # change any population drawn before, and anyone knowing (seed, psn_no) can sign in.
    return hashlib.blake2b(f"{seed}/{psn_no}".encode(), digest_size=6).hexdigest()


@dataclass(frozen=True, slots=True)
class Person:
    psn_no: str
    region: str
    insurance: Insurance
    opening_balance_fen: int
    secret: str = ""


@dataclass(slots=True)
class Population:
    """Regions, persons and family bindings of one scenario run."""

    regions: tuple[RegionSpec, ...]
    persons: list[Person] = field(default_factory=list)
    bindings: list[RecordBinding] = field(default_factory=list)

    @property
    def opening_total_fen(self) -> int:
        return sum(p.opening_balance_fen for p in self.persons)

    def setup_operations(self) -> list[Outgoing]:
        """Register regions, enroll persons, record bindings: in that order per queue."""
        out = [Outgoing(CLEARINGHOUSE, r.register()) for r in self.regions]
        served = {r.code for r in self.regions}
        out += [
            Outgoing(
                region_address(p.region),
                EnrollPerson(p.psn_no, p.insurance, p.opening_balance_fen, p.secret),
            )
            for p in self.persons
            if p.region in served
        ]
        out += [Outgoing(CLEARINGHOUSE, b) for b in self.bindings]
        return out


@dataclass(frozen=True, slots=True)
class Draws:
    """How a population is drawn; each share costs one ``rng.random()`` per decision.

    The defaults are those of ``generate_population``. ``cross_region_share`` and
    ``relationship_weights`` None keep its original way of drawing (co-payers sampled
    among all employees, relationships uniform), so its populations stay as they were.
    """

    employee_below: float = 0.6
    """Insurance is employee when a draw falls below this, resident below ``resident_below``."""
    resident_below: float = 0.9
    zero_balance_share: float = 0.1
    balance_min_fen: int = 100
    balance_max_fen: int = 500_000
    unbound_share: float = 0.25
    """Insured persons left without any co-payer."""
    unregistered_share: float = 0.03
    unregistered_region: str = UNREGISTERED_REGION
    bindings_upper: tuple[tuple[int, float], ...] = ((1, 0.7), (2, 1.0))
    """(co-payers per beneficiary, cumulative probability), ascending."""
    cross_region_share: float | None = None
    relationship_weights: tuple[tuple[Relationship, float], ...] | None = None
    short_balance_share: float = 0.0
    """Of the employee-insured persons with money, those whose balance is short (drawn
    from 1 to ``short_balance_max_fen``); 0 draws nothing, so older populations stay."""
    short_balance_max_fen: int = 10_000
    migration: Migration | None = None
    """Cross-region co-payers of families at home drawn where people go to work."""


@dataclass(frozen=True, slots=True)
class Migration:
    """Labour migration: co-payers insured where they work, families at home.

    A beneficiary insured in a ``home`` province whose co-payer is drawn from another
    region gets, with ``share``, one insured in a ``work`` province (each a 2-digit
    GB/T 2260 province code, the first two digits of a region code).
    """

    share: float
    work: frozenset[str]
    home: frozenset[str]


def generate_population(
    regions: tuple[RegionSpec, ...], persons_per_region: int, seed: int
) -> Population:
    """Persons with an insurance mix and balances; beneficiaries bound to 0..2 co-payers.

    About 60 % employee (10 % of them with a zero balance), 30 % resident, 10 % not
    insured. Most bindings cross regions; a few point at a co-payer in a region that is
    not registered, so ``UNKNOWN_REGION`` is reachable.
    """
    return draw_population(regions, persons_per_region, seed, Draws())


def draw_population(
    regions: tuple[RegionSpec, ...], persons_per_region: int, seed: int, draws: Draws
) -> Population:
    """A population drawn as ``draws`` says; pure in its arguments.

    Bindings respect both regions' policies: a relationship is only drawn among those
    that the co-payer's and the beneficiary's regions both allow.
    """
    rng = random.Random(seed)
    population = Population(regions)
    for region in regions:
        for i in range(persons_per_region):
            roll = rng.random()
            insurance = (
                Insurance.EMPLOYEE
                if roll < draws.employee_below
                else Insurance.RESIDENT
                if roll < draws.resident_below
                else Insurance.NONE
            )
            balance = 0
            if insurance is Insurance.EMPLOYEE and rng.random() >= draws.zero_balance_share:
                if draws.short_balance_share > 0 and rng.random() < draws.short_balance_share:
                    balance = rng.randint(1, draws.short_balance_max_fen)
                else:
                    balance = rng.randint(draws.balance_min_fen, draws.balance_max_fen)
            psn = f"{region.code}-{i:06d}"
            population.persons.append(
                Person(psn, region.code, insurance, balance, secret_of(psn, seed))
            )
    employees = [p for p in population.persons if p.insurance is Insurance.EMPLOYEE]
    local: dict[str, list[Person]] = {r.code: [] for r in regions}
    for p in employees:
        local[p.region].append(p)
    remote = {code: [p for p in employees if p.region != code] for code in local}
    migration = draws.migration
    at_work = [] if migration is None else [p for p in employees if p.region[:2] in migration.work]
    policies = {r.code: r.policy for r in regions}
    serial = 0
    for person in population.persons:
        if (
            person.insurance is Insurance.NONE
            or rng.random() < draws.unbound_share
            or not employees
        ):
            continue
        copayers: list[Person]
        if rng.random() < draws.unregistered_share:
            code = draws.unregistered_region
            copayers = [Person(f"{code}-{serial:06d}", code, Insurance.EMPLOYEE, 0)]
        else:
            roll = rng.random()
            count = next(
                (n for n, upper in draws.bindings_upper if roll < upper),
                draws.bindings_upper[-1][0],
            )
            if draws.cross_region_share is None:
                copayers = [p for p in rng.sample(employees, count) if p.psn_no != person.psn_no]
            else:
                far = remote[person.region]
                if (
                    migration is not None
                    and person.region[:2] in migration.home
                    and at_work
                    and rng.random() < migration.share
                ):
                    far = at_work  # the family at home, its earners away at work
                copayers = _choose_copayers(
                    rng, person, count, draws.cross_region_share, local[person.region], far
                )
        for copayer in copayers:
            allowed = [
                r
                for r in Relationship
                if policies.get(person.region, _OPEN).allows(r)
                and policies.get(copayer.region, _OPEN).allows(r)
            ]
            relationship = _draw_relationship(rng, allowed, draws.relationship_weights)
            if relationship is None:
                continue
            serial += 1
            population.bindings.append(
                RecordBinding(
                    f"bind-{serial:07d}",
                    copayer.psn_no,
                    copayer.region,
                    person.psn_no,
                    person.region,
                    relationship,
                )
            )
    return population


_OPEN = Policy()
"""The policy assumed for a region outside the scenario (its own policy is unknown)."""


def _choose_copayers(
    rng: random.Random,
    person: Person,
    count: int,
    cross_region_share: float,
    local: list[Person],
    remote: list[Person],
) -> list[Person]:
    """Up to ``count`` distinct co-payers, each from another region with the given share."""
    chosen: list[Person] = []
    for _ in range(count):
        pool = remote if rng.random() < cross_region_share else local
        pool = pool or remote or local
        # Rejection keeps this linear in the population; few draws ever repeat.
        for _attempt in range(8):
            pick = rng.choice(pool)
            if pick.psn_no != person.psn_no and pick not in chosen:
                chosen.append(pick)
                break
    return chosen


def _draw_relationship(
    rng: random.Random,
    allowed: list[Relationship],
    weights: tuple[tuple[Relationship, float], ...] | None,
) -> Relationship | None:
    """A relationship among ``allowed``: uniform, or by the weights (renormalised)."""
    if weights is None:
        return rng.choice(allowed) if allowed else None
    usable = [(r, w) for r, w in weights if r in allowed and w > 0]
    total = sum(w for _, w in usable)
    if not usable:
        return None
    roll = rng.random() * total
    for relationship, weight in usable:
        if roll < weight:
            return relationship
        roll -= weight
    return usable[-1][0]


def generate_bills(
    population: Population, count: int, seed: int, reply_to: str, prefix: str = "t"
) -> list[SubmitBill]:
    """Bills (out-of-pocket shares) mostly for bound beneficiaries, some for anyone."""
    return draw_bills(population, count, seed, reply_to, prefix)


def draw_bills(
    population: Population,
    count: int,
    seed: int,
    reply_to: str,
    prefix: str = "t",
    *,
    bound_share: float = 0.8,
    amount_min_fen: int = 1_000,
    amount_max_fen: int = 300_000,
) -> list[SubmitBill]:
    """Bills, ``bound_share`` of them for beneficiaries with a co-payer bound."""
    rng = random.Random(seed)
    bound = sorted({b.beneficiary for b in population.bindings})
    served = {r.code for r in population.regions}
    everyone = [p.psn_no for p in population.persons if p.region in served]
    bills = []
    for i in range(count):
        pool = bound if bound and rng.random() < bound_share else everyone
        beneficiary = rng.choice(pool)
        amount = rng.randint(amount_min_fen, amount_max_fen)
        bills.append(SubmitBill(f"{prefix}-{seed}-{i:07d}", beneficiary, amount, reply_to))
    return bills


def region_of(psn_no: str) -> str:
    """The region code that owns a generated person number."""
    return psn_no.split("-", 1)[0]
