"""What a scenario generates: its population and the requests to send.

The builders are pure: the same scenario gives the same population and requests.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Callable

from contracts.effects import Outgoing
from contracts.identifiers import CLEARINGHOUSE
from contracts.operations import (
    RecordBinding,
    RequestBinding,
    RequestPremiumPayment,
    RequestWalletTransfer,
    SetRegionEnabled,
    SubmitBill,
)
from contracts.vocabulary import SCOPE_RELATIONSHIPS, Insurance, Relationship, Scope
from gongji.population import Person, Population, draw_bills, draw_population
from gongji.scenario.records import RolloutStep, Scenario


def population_of(scenario: Scenario) -> Population:
    """The scenario's population, drawn deterministically from its seed, with its named
    persons and bindings (``[[persons]]``, ``[[bindings]]``) added."""
    spec = scenario.population
    population = draw_population(
        scenario.regions, spec.persons_per_region, scenario.seed, spec.draws()
    )
    named = {p.psn_no: p for p in scenario.persons}
    drawn = {p.psn_no for p in population.persons}
    for p in scenario.persons:
        if p.psn_no not in drawn:  # a drawn number's person stays the drawn one
            population.persons.append(
                Person(p.psn_no, p.region, p.insurance, p.balance_fen, p.secret)
            )
    for i, b in enumerate(scenario.bindings, start=1):
        copayer, beneficiary = named[b.copayer], named[b.beneficiary]
        population.bindings.append(
            RecordBinding(
                f"named-{i:05d}",
                copayer.psn_no,
                copayer.region,
                beneficiary.psn_no,
                beneficiary.region,
                b.relationship,
            )
        )
    return population


def bills_of(
    scenario: Scenario,
    reply_to: str,
    population: Population | None = None,
    prefix: str = "t",
) -> list[SubmitBill]:
    """The scenario's bills (send each to ``region_of(bill.beneficiary)``)."""
    spec = scenario.bills
    return draw_bills(
        population if population is not None else population_of(scenario),
        spec.count,
        scenario.seed,
        reply_to,
        prefix,
        bound_share=spec.bound_share,
        amount_min_fen=spec.amount_fen.min,
        amount_max_fen=spec.amount_fen.max,
    )


def rollout_operations(step: RolloutStep) -> list[Outgoing]:
    """The registry changes of a roll-out step, for the clearinghouse."""
    return [Outgoing(CLEARINGHOUSE, SetRegionEnabled(code, True)) for code in step.enable] + [
        Outgoing(CLEARINGHOUSE, SetRegionEnabled(code, False)) for code in step.disable
    ]


def wrong_secret(secret: str) -> str:
    """A secret that fails the identity check of the person whose secret is ``secret``."""
    return f"wrong-{secret}"


def _portion(share: float, n: int) -> int:
    """How many of ``n`` requests a share makes deliberately wrong: at least one when the
    share is positive, so a small demo still reaches the reason."""
    if share <= 0 or n <= 0:
        return 0
    return min(n, max(1, round(share * n)))


def _bound_pairs(population: Population) -> list[tuple[Person, Person]]:
    """(co-payer, beneficiary) of every binding whose co-payer is enrolled in the scenario."""
    persons = {p.psn_no: p for p in population.persons}
    pairs = []
    for b in population.bindings:
        copayer, beneficiary = persons.get(b.copayer), persons.get(b.beneficiary)
        if copayer is not None and beneficiary is not None:
            pairs.append((copayer, beneficiary))
    return pairs


def wallet_transfers_of(
    scenario: Scenario, population: Population, reply_to: str, prefix: str = "w"
) -> list[RequestWalletTransfer]:
    """Wallet transfers along bound pairs (send each to ``region_of(op.copayer)``).

    No co-payer makes more requests than the day's limit of any region involved allows,
    and ordinary amounts are within both regions' per-transfer limits, so
    ``LIMIT_EXCEEDED`` comes only from the deliberately over-limit transfers: between two
    always-enabled wallet regions, from a co-payer who could cover the amount, above both
    limits. Others carry a wrong secret (``IDENTITY_CHECK_FAILED``). Ordinary transfers use
    any bound pair, so ``WALLET_NOT_ENABLED`` and ``REGION_NOT_ENABLED`` occur as the
    scenario's policies make them. Fewer than asked when the population runs out of pairs.
    """
    spec = scenario.bills
    n = spec.wallet_transfers
    rng = random.Random(f"{scenario.seed}/wallet")
    policies = {r.code: r.policy for r in scenario.regions}
    steady = scenario.always_enabled()
    pairs = _bound_pairs(population)
    used: Counter[str] = Counter()

    def room(copayer: Person, beneficiary: Person) -> bool:
        cap = min(
            policies[copayer.region].wallet_max_transfers_per_day,
            policies[beneficiary.region].wallet_max_transfers_per_day,
        )
        return used[copayer.psn_no] < cap

    def limit(copayer: Person, beneficiary: Person, pick: Callable[..., int]) -> int:
        return pick(
            policies[copayer.region].wallet_max_per_transfer_fen,
            policies[beneficiary.region].wallet_max_per_transfer_fen,
        )

    # (copayer, beneficiary, amount, secret correct)
    chosen: list[tuple[Person, Person, int, bool]] = []
    n_over = _portion(spec.over_limit_share, n)
    clean = [
        (c, b)
        for c, b in pairs
        if c.region != b.region
        and {c.region, b.region} <= steady
        and policies[c.region].wallet_enabled
        and policies[b.region].wallet_enabled
    ]
    rng.shuffle(clean)
    for c, b in clean:
        if len(chosen) == n_over:
            break
        amount = limit(c, b, max) + rng.randint(1, 10_000)
        if c.opening_balance_fen >= amount and room(c, b):
            used[c.psn_no] += 1
            chosen.append((c, b, amount, True))

    ordinary = [(c, b) for c, b in pairs if limit(c, b, min) >= 1]
    rng.shuffle(ordinary)
    target = n - len(chosen)
    start = len(chosen)
    while len(chosen) - start < target:
        progress = False
        for c, b in ordinary:
            if len(chosen) - start == target:
                break
            if room(c, b):
                amount = min(
                    rng.randint(spec.wallet_amount_fen.min, spec.wallet_amount_fen.max),
                    limit(c, b, min),
                )
                used[c.psn_no] += 1
                chosen.append((c, b, amount, True))
                progress = True
        if not progress:
            break
    n_wrong = min(_portion(spec.wrong_secret_share, n), len(chosen) - start)
    for i in rng.sample(range(start, len(chosen)), n_wrong):
        c, b, amount, _ = chosen[i]
        chosen[i] = (c, b, amount, False)
    rng.shuffle(chosen)
    return [
        RequestWalletTransfer(
            f"{prefix}-{scenario.seed}-{i:07d}",
            c.psn_no,
            c.secret if ok else wrong_secret(c.secret),
            b.psn_no,
            b.region,
            amount,
            reply_to,
        )
        for i, (c, b, amount, ok) in enumerate(chosen)
    ]


def premium_payments_of(
    scenario: Scenario, population: Population, reply_to: str, prefix: str = "p"
) -> list[RequestPremiumPayment]:
    """Premium payments for resident-insured beneficiaries by their co-payers (send each to
    ``region_of(op.copayer)``).

    Each (beneficiary, year) is paid once (later years when there are more payments than
    beneficiaries), except the deliberate duplicates, which come last, each repeating an
    earlier payment made by the richest co-payers between always-enabled regions (by
    another co-payer of the same beneficiary when there is one): ``PREMIUM_ALREADY_PAID``.
    Some others carry a wrong secret (``IDENTITY_CHECK_FAILED``).
    """
    spec = scenario.bills
    n = spec.premium_payments
    rng = random.Random(f"{scenario.seed}/premium")
    policies = {r.code: r.policy for r in scenario.regions}
    steady = scenario.always_enabled()
    copayers_of: dict[str, list[Person]] = {}
    beneficiaries: dict[str, Person] = {}
    for c, b in _bound_pairs(population):
        if b.insurance is Insurance.RESIDENT:
            copayers_of.setdefault(b.psn_no, []).append(c)
            beneficiaries[b.psn_no] = b
    if not beneficiaries or n <= 0:
        return []

    def solvent(c: Person, b: Person) -> bool:
        return {c.region, b.region} <= steady and c.opening_balance_fen >= (
            policies[b.region].resident_premium_fen
        )

    n_dup = min(_portion(spec.duplicate_premium_share, n), n // 2)
    sources = sorted(
        (
            (max(cs, key=lambda c: (c.opening_balance_fen, c.psn_no)), beneficiaries[psn])
            for psn, cs in copayers_of.items()
        ),
        key=lambda cb: (-cb[0].opening_balance_fen, cb[1].psn_no),
    )
    sources = [(c, b) for c, b in sources if solvent(c, b)][:n_dup]

    year = spec.premium_year
    # (copayer, beneficiary, year, secret correct)
    originals = [(c, b, year, True) for c, b in sources]
    taken = {(b.psn_no, year) for _, b in sources}
    order = sorted(beneficiaries)
    rng.shuffle(order)
    k = 0
    while len(originals) < n - len(sources):
        psn, y = order[k % len(order)], year + k // len(order)
        k += 1
        if (psn, y) not in taken:
            taken.add((psn, y))
            originals.append((rng.choice(copayers_of[psn]), beneficiaries[psn], y, True))
    others = range(len(sources), len(originals))
    for i in rng.sample(others, min(_portion(spec.wrong_secret_share, n), len(others))):
        c, b, y, _ = originals[i]
        originals[i] = (c, b, y, False)
    duplicates = []
    for c, b in sources:
        second = [o for o in copayers_of[b.psn_no] if o != c and solvent(o, b)]
        duplicates.append((second[0] if second else c, b, year, True))
    rng.shuffle(originals)
    return [
        RequestPremiumPayment(
            f"{prefix}-{scenario.seed}-{i:07d}",
            c.psn_no,
            c.secret if ok else wrong_secret(c.secret),
            b.psn_no,
            b.region,
            y,
            reply_to,
        )
        for i, (c, b, y, ok) in enumerate(originals + duplicates)
    ]


def binding_requests_of(
    scenario: Scenario, population: Population, reply_to: str, prefix: str = "r"
) -> list[RequestBinding]:
    """New cross-region bindings between always-enabled regions (send each to
    ``region_of(op.copayer)``): an employee-insured co-payer, an insured beneficiary, a
    relationship both policies allow. Deliberately wrong ones: a relationship outside the
    2021 scope between a 2021-scope and a 2024-scope region (``POLICY_DISAGREEMENT``,
    none when the scenario has no such pair of regions), and a wrong secret
    (``IDENTITY_CHECK_FAILED``)."""
    spec = scenario.bills
    n = spec.binding_requests
    rng = random.Random(f"{scenario.seed}/binding")
    policies = {r.code: r.policy for r in scenario.regions}
    steady = scenario.always_enabled()
    bound = {(b.copayer, b.beneficiary) for b in population.bindings}
    employees = [
        p for p in population.persons if p.insurance is Insurance.EMPLOYEE and p.region in steady
    ]
    insured = [
        p for p in population.persons if p.insurance is not Insurance.NONE and p.region in steady
    ]
    # (copayer, beneficiary, relationship, secret correct)
    chosen: list[tuple[Person, Person, Relationship, bool]] = []

    def pick(
        accept: Callable[[Person, Person], list[Relationship]], want: int, attempts: int
    ) -> None:
        goal = len(chosen) + want
        for _ in range(attempts):
            if len(chosen) == goal or not employees or not insured:
                return
            c, b = rng.choice(employees), rng.choice(insured)
            if c.region == b.region or (c.psn_no, b.psn_no) in bound:
                continue
            allowed = accept(c, b)
            relationship = _weighted(rng, allowed, scenario.population.relationship_mix)
            if relationship is not None:
                bound.add((c.psn_no, b.psn_no))
                chosen.append((c, b, relationship, True))

    wider = sorted(SCOPE_RELATIONSHIPS[Scope.SCOPE_2024] - SCOPE_RELATIONSHIPS[Scope.SCOPE_2021])

    def disagreeing(c: Person, b: Person) -> list[Relationship]:
        scopes = {policies[c.region].scope, policies[b.region].scope}
        return wider if scopes == {Scope.SCOPE_2021, Scope.SCOPE_2024} else []

    def agreeing(c: Person, b: Person) -> list[Relationship]:
        both = (policies[c.region], policies[b.region])
        return [r for r in Relationship if all(p.allows(r) for p in both)]

    n_disagree = _portion(spec.policy_disagreement_share, n)
    pick(disagreeing, n_disagree, attempts=200 * n_disagree)
    start = len(chosen)
    pick(agreeing, n - start, attempts=200 * n)
    n_wrong = min(_portion(spec.wrong_secret_share, n), len(chosen) - start)
    for i in rng.sample(range(start, len(chosen)), n_wrong):
        c, b, relationship, _ = chosen[i]
        chosen[i] = (c, b, relationship, False)
    rng.shuffle(chosen)
    return [
        RequestBinding(
            f"{prefix}-{scenario.seed}-{i:07d}",
            c.psn_no,
            c.secret if ok else wrong_secret(c.secret),
            b.psn_no,
            b.region,
            relationship,
            reply_to,
        )
        for i, (c, b, relationship, ok) in enumerate(chosen)
    ]


def _weighted(
    rng: random.Random,
    allowed: list[Relationship],
    weights: tuple[tuple[Relationship, float], ...],
) -> Relationship | None:
    """A relationship among ``allowed`` by the mix; uniform when the mix gives them none."""
    usable = [(r, w) for r, w in weights if r in allowed and w > 0]
    if not usable:
        return rng.choice(allowed) if allowed else None
    roll = rng.random() * math.fsum(w for _, w in usable)
    for relationship, weight in usable:
        if roll < weight:
            return relationship
        roll -= weight
    return usable[-1][0]
