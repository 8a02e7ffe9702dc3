"""What the simulated submitters send: bills, wallet transfers and premium payments.

Bills (co-payments) come from ``gongji.population.generate_bills``; a share of the
requests are co-payers' own wallet transfers and premium payments for bound relatives,
and bills at the co-payer's region for a relative insured in another region (care away
from home, registered at set-up), so the flows of the domain rules run under the same
faults. This is the one place that
names request operations: everything else routes operations without looking at them.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from contracts.effects import Outgoing
from contracts.identifiers import region_address
from contracts.operations import (
    Operation,
    RequestAwayRegistration,
    RequestPremiumPayment,
    RequestWalletTransfer,
    SubmitAwayBill,
)
from contracts.vocabulary import Flow, Insurance
from gongji.population import Population, draw_bills, region_of

PREMIUM_YEAR = 2025


@dataclass(frozen=True, slots=True)
class Request:
    """One request of the workload: where it is submitted, and what it is."""

    transfer_id: str
    flow: str
    """A ``Flow``, or ``binding`` for a binding request (the demo's script sends those)."""
    region: str
    """The region the request is submitted to (and that answers it)."""
    payee_region: str
    """Where the money goes: the bill's region, or the relative's for wallet and premium."""
    op: Operation


def build_workload(
    population: Population,
    count: int,
    seed: int,
    reply_to: str,
    *,
    wallet_share: float = 0.08,
    premium_share: float = 0.04,
    bill_fen: tuple[int, int] = (1_000, 300_000),
    wallet_fen: tuple[int, int] = (1_000, 250_000),
    away_share: float = 0.0,
) -> list[Request]:
    """``count`` requests in submission order: mostly bills, some wallet, premium and
    bills away from home.

    Amounts are drawn from ``bill_fen`` and ``wallet_fen`` (inclusive); the default
    wallet range reaches above the ¥2,000 national limit, so some are refused.
    """
    rng = random.Random(seed ^ 0x5EED)
    n_wallet = int(count * wallet_share) if population.bindings else 0
    residents = {p.psn_no for p in population.persons if p.insurance is Insurance.RESIDENT}
    premium_bindings = [b for b in population.bindings if b.beneficiary in residents]
    n_premium = int(count * premium_share) if premium_bindings else 0
    served = {r.code for r in population.regions}
    away_bindings = [
        b
        for b in population.bindings
        if b.copayer_region in served
        and b.beneficiary_region in served
        and b.copayer_region != b.beneficiary_region
    ]
    n_away = int(count * away_share) if away_bindings else 0
    n_bills = count - n_wallet - n_premium - n_away
    secrets = {p.psn_no: p.secret for p in population.persons}
    requests = [
        Request(b.transfer_id, Flow.COPAY, region_of(b.beneficiary), region_of(b.beneficiary), b)
        for b in draw_bills(
            population,
            n_bills,
            seed,
            reply_to,
            amount_min_fen=bill_fen[0],
            amount_max_fen=bill_fen[1],
        )
    ]
    usable = [b for b in population.bindings if b.copayer_region in served]
    for i in range(n_wallet if usable else 0):
        b = rng.choice(usable)
        tid = f"w-{seed}-{i:07d}"
        amount = rng.randint(*wallet_fen)
        wallet = RequestWalletTransfer(
            tid,
            b.copayer,
            secrets.get(b.copayer, ""),
            b.beneficiary,
            b.beneficiary_region,
            amount,
            reply_to,
        )
        requests.append(Request(tid, Flow.WALLET, b.copayer_region, b.beneficiary_region, wallet))
    usable = [b for b in premium_bindings if b.copayer_region in served]
    for i in range(n_premium if usable else 0):
        b = rng.choice(usable)
        tid = f"p-{seed}-{i:07d}"
        premium = RequestPremiumPayment(
            tid,
            b.copayer,
            secrets.get(b.copayer, ""),
            b.beneficiary,
            b.beneficiary_region,
            PREMIUM_YEAR,
            reply_to,
        )
        requests.append(Request(tid, Flow.PREMIUM, b.copayer_region, b.beneficiary_region, premium))
    # Drawn after the others, so that a run without them draws what it always did.
    for i in range(n_away):
        b = rng.choice(away_bindings)
        tid = f"a-{seed}-{i:07d}"
        amount = rng.randint(*bill_fen)
        bill = SubmitAwayBill(tid, b.beneficiary, b.beneficiary_region, amount, reply_to)
        requests.append(Request(tid, Flow.AWAY, b.copayer_region, b.copayer_region, bill))
    rng.shuffle(requests)
    return requests


def away_registrations(
    population: Population, requests: list[Request], reply_to: str
) -> list[Outgoing]:
    """A registration of care away from home, at the insured region, for every
    (beneficiary, region of care) the workload's bills away from home name."""
    secrets = {p.psn_no: p.secret for p in population.persons}
    seen: set[tuple[str, str]] = set()
    out: list[Outgoing] = []
    for r in requests:
        if not isinstance(r.op, SubmitAwayBill) or (r.op.beneficiary, r.region) in seen:
            continue
        seen.add((r.op.beneficiary, r.region))
        registration = RequestAwayRegistration(
            f"reg-{r.op.beneficiary}-{r.region}",
            r.op.beneficiary,
            secrets.get(r.op.beneficiary, ""),
            r.region,
            0,
            0,
            reply_to,
        )
        out.append(Outgoing(region_address(r.op.insured_region), registration))
    return out
