"""Deterministic populations and bill mixes for the demo, the simulator and load tests.

Everything here is pure: the same seed gives the same regions, persons, bindings and
bills, expressed as the operations that set them up over any transport.
"""

from __future__ import annotations

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


@dataclass(frozen=True, slots=True)
class RegionSpec:
    """A pooling region of a scenario."""

    code: str
    name: str
    province: str
    enabled: bool


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


@dataclass(frozen=True, slots=True)
class Person:
    psn_no: str
    region: str
    insurance: Insurance
    opening_balance_fen: int


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
        out = [
            Outgoing(CLEARINGHOUSE, RegisterRegion(r.code, r.name, r.province, r.enabled))
            for r in self.regions
        ]
        served = {r.code for r in self.regions}
        out += [
            Outgoing(
                region_address(p.region),
                EnrollPerson(p.psn_no, p.insurance, p.opening_balance_fen),
            )
            for p in self.persons
            if p.region in served
        ]
        out += [Outgoing(CLEARINGHOUSE, b) for b in self.bindings]
        return out


def generate_population(
    regions: tuple[RegionSpec, ...], persons_per_region: int, seed: int
) -> Population:
    """Persons with an insurance mix and balances; beneficiaries bound to 0..2 co-payers.

    About 60 % employee (10 % of them with a zero balance), 30 % resident, 10 % not
    insured. Most bindings cross regions; a few point at a co-payer in a region that is
    not registered, so ``UNKNOWN_REGION`` is reachable.
    """
    rng = random.Random(seed)
    population = Population(regions)
    for region in regions:
        for i in range(persons_per_region):
            roll = rng.random()
            insurance = (
                Insurance.EMPLOYEE
                if roll < 0.6
                else Insurance.RESIDENT
                if roll < 0.9
                else Insurance.NONE
            )
            balance = 0
            if insurance is Insurance.EMPLOYEE and rng.random() >= 0.1:
                balance = rng.randint(100, 500_000)
            psn = f"{region.code}-{i:06d}"
            population.persons.append(Person(psn, region.code, insurance, balance))
    employees = [p for p in population.persons if p.insurance is Insurance.EMPLOYEE]
    relationships = list(Relationship)
    serial = 0
    for person in population.persons:
        if person.insurance is Insurance.NONE or rng.random() < 0.25 or not employees:
            continue
        if rng.random() < 0.03:
            copayers = [Person(f"{UNREGISTERED_REGION}-{serial:06d}", UNREGISTERED_REGION,
                               Insurance.EMPLOYEE, 0)]  # fmt: skip
        else:
            count = 1 if rng.random() < 0.7 else 2
            copayers = [p for p in rng.sample(employees, count) if p.psn_no != person.psn_no]
        for copayer in copayers:
            serial += 1
            population.bindings.append(
                RecordBinding(
                    f"bind-{serial:07d}",
                    copayer.psn_no,
                    copayer.region,
                    person.psn_no,
                    person.region,
                    rng.choice(relationships),
                )
            )
    return population


def generate_bills(
    population: Population, count: int, seed: int, reply_to: str, prefix: str = "t"
) -> list[SubmitBill]:
    """Bills (out-of-pocket shares) mostly for bound beneficiaries, some for anyone."""
    rng = random.Random(seed)
    bound = sorted({b.beneficiary for b in population.bindings})
    everyone = [p.psn_no for p in population.persons if p.region != UNREGISTERED_REGION]
    bills = []
    for i in range(count):
        pool = bound if bound and rng.random() < 0.8 else everyone
        beneficiary = rng.choice(pool)
        amount = rng.randint(1_000, 300_000)
        bills.append(SubmitBill(f"{prefix}-{seed}-{i:07d}", beneficiary, amount, reply_to))
    return bills


def region_of(psn_no: str) -> str:
    """The region code that owns a generated person number."""
    return psn_no.split("-", 1)[0]
