"""The population a local cluster is seeded with, made for load: every flow under test
can commit, and the load generator knows which beneficiaries cross provinces.

Pure and deterministic: ``gongji load`` rebuilds the same population from the cluster's
state file (regions, persons per region, seed) instead of reading it back.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field

from contracts.operations import Insurance, RecordBinding
from contracts.vocabulary import SCOPE_RELATIONSHIPS, Scope
from gongji.population import Person, Population, RegionSpec

COPAYER_BALANCE_FEN = 1_000_000_000
"""Co-payers' opening balance (¥10 million): deep enough that a load of a few hundred
thousand bills never drains one, so outcomes measure the protocol, not the balances."""

SAME_PROVINCE_EVERY = 4
"""One beneficiary in this many is bound within its own province (or region)."""

SECOND_COPAYER_EVERY = 3
THIRD_COPAYER_EVERY = 9
"""One beneficiary in 3 has a second co-payer and one in 9 a third (of the same kind:
another province, or the own one), so that co-payments under load choose among several
(quotes, their deadline, the largest balance)."""


def copayers_for(serial: int) -> int:
    """How many co-payers the ``serial``-th beneficiary of a region gets (from 0)."""
    if serial % THIRD_COPAYER_EVERY == THIRD_COPAYER_EVERY - 1:
        return 3
    if serial % SECOND_COPAYER_EVERY == SECOND_COPAYER_EVERY - 1:
        return 2
    return 1


@dataclass(slots=True)
class SeededPopulation:
    """The population and, per region, its beneficiaries by kind of binding."""

    population: Population
    cross_province: dict[str, list[str]] = field(default_factory=dict)
    """Region code -> beneficiaries whose one co-payer is insured in another province."""
    same_province: dict[str, list[str]] = field(default_factory=dict)
    """Region code -> beneficiaries whose one co-payer is in the same province."""
    bill_fen: tuple[int, int] | None = None
    """Bill amounts (inclusive range) the load draws; None: the load's own."""
    wallet_fen: tuple[int, int] | None = None
    """Wallet transfer amounts the load draws; None: the load's own."""

    @property
    def regions(self) -> tuple[RegionSpec, ...]:
        return self.population.regions


def seeded_from(
    population: Population,
    *,
    bill_fen: tuple[int, int] | None = None,
    wallet_fen: tuple[int, int] | None = None,
) -> SeededPopulation:
    """A population drawn elsewhere (a scenario's: ``gongji.scenario.population_of``),
    its beneficiaries sorted for the load by their first binding to a co-payer the
    population holds: another province's, or the own province's; with the amounts the
    load should draw."""
    province = {r.code: r.province for r in population.regions}
    persons = {p.psn_no for p in population.persons}
    seeded = SeededPopulation(population, bill_fen=bill_fen, wallet_fen=wallet_fen)
    for region in population.regions:
        seeded.cross_province[region.code] = []
        seeded.same_province[region.code] = []
    first: dict[str, RecordBinding] = {}
    for binding in population.bindings:
        if binding.copayer in persons and binding.beneficiary_region in province:
            first.setdefault(binding.beneficiary, binding)
    for beneficiary, binding in first.items():
        crossing = province.get(binding.copayer_region) != province[binding.beneficiary_region]
        pools = seeded.cross_province if crossing else seeded.same_province
        pools[binding.beneficiary_region].append(beneficiary)
    return seeded


def seed_population(
    regions: Sequence[RegionSpec], persons_per_region: int, seed: int
) -> SeededPopulation:
    """Half of each region's persons are co-payers (employees with deep accounts), half
    beneficiaries (employee or resident) bound to one, two or three co-payers
    (``copayers_for``).

    A beneficiary's co-payer is in an enabled region of another province, except one
    in ``SAME_PROVINCE_EVERY``, whose co-payer is in its own province (another region of
    it when there is one). Beneficiaries of a region that is not enabled are bound too:
    their bills are refused with ``REGION_NOT_ENABLED``. A beneficiary's further
    co-payers are of the same kind as the first (cross-province or not), each a
    different person.
    """
    if persons_per_region < 2:
        raise ValueError("a seeded region needs at least 2 persons (a co-payer, a beneficiary)")
    rng = random.Random(seed)
    regions = tuple(regions)
    population = Population(regions)
    seeded = SeededPopulation(population)
    copayers: dict[str, list[str]] = {}
    for region in regions:
        copayers[region.code] = []
        for i in range(persons_per_region):
            psn = f"{region.code}-{i:06d}"
            if i % 2 == 0:
                population.persons.append(
                    Person(psn, region.code, Insurance.EMPLOYEE, COPAYER_BALANCE_FEN)
                )
                copayers[region.code].append(psn)
            else:
                insurance = Insurance.EMPLOYEE if i % 4 == 1 else Insurance.RESIDENT
                population.persons.append(Person(psn, region.code, insurance, 0))
    enabled = [r for r in regions if r.enabled] or list(regions)
    # The 2021 scope, which every region's policy allows.
    relationships = sorted(SCOPE_RELATIONSHIPS[Scope.SCOPE_2021])
    for region in regions:
        cross = [r for r in enabled if r.province != region.province]
        same = [r for r in enabled if r.province == region.province and r.code != region.code]
        seeded.cross_province[region.code] = []
        seeded.same_province[region.code] = []
        for i in range(1, persons_per_region, 2):
            beneficiary = f"{region.code}-{i:06d}"
            local = (i // 2) % SAME_PROVINCE_EVERY == SAME_PROVINCE_EVERY - 1
            if local or not cross:
                # With no other region in the province, the co-payer is a neighbour in
                # the same region (the clearinghouse still carries it).
                candidates = same or [region]
                seeded.same_province[region.code].append(beneficiary)
            else:
                candidates = cross
                seeded.cross_province[region.code].append(beneficiary)
            chosen: set[str] = set()
            for n in range(copayers_for(i // 2)):
                payer_region = rng.choice(candidates)
                copayer = rng.choice(copayers[payer_region.code])
                if copayer in chosen:
                    continue  # drawn twice: this beneficiary has one co-payer fewer
                chosen.add(copayer)
                suffix = f"-{n + 1}" if n else ""
                population.bindings.append(
                    RecordBinding(
                        f"bind-{region.code}-{i:06d}{suffix}",
                        copayer,
                        payer_region.code,
                        beneficiary,
                        region.code,
                        rng.choice(relationships),
                    )
                )
    return seeded
