"""The invariants of a bill at a region of care, whose money moves in several legs
(``clearinghouse.away``): every leg's hold, its credit at the region of care and the
clearinghouse's record tell one story, and the bill's outcome agrees with them."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from gongji.sim.views import (
    ABORT_STATES,
    ABORTED,
    COMMITTED,
    COMMITTING,
    CREDITING,
    FINAL_STATES,
    POSTED,
    SETTLED,
    BillRow,
    CreditRow,
    HoldRow,
    LegRow,
    TransferRow,
)

Report = Callable[[str], None]

PREPARED = "prepared"
"""A leg's hold waiting for the clearinghouse's decision (``regions.hold_states``)."""
COPAYER = "copayer"


def agree(
    bad: Report,
    t: TransferRow | None,
    legs: list[LegRow],
    holds: Mapping[str, HoldRow | None],
    credits: Mapping[str, CreditRow | None],
    bill: BillRow | None,
) -> None:
    """True at every instant: each leg posts only once decided, is credited only as
    posted, and a final transfer and a settled bill agree with the legs."""
    for leg in legs:
        hold, credit = holds.get(leg.leg_id), credits.get(leg.leg_id)
        posted = hold is not None and hold.state == POSTED
        if posted and t is not None and t.state not in (COMMITTING, CREDITING, COMMITTED):
            bad(f"leg {leg.leg_id} posted at {leg.region} while the clearinghouse is {t.state}")
        if posted and hold is not None and hold.held_fen != leg.held_fen:
            bad(f"leg {leg.leg_id} posted {hold.held_fen}; the clearinghouse held {leg.held_fen}")
        if credit is not None:
            if not posted or hold is None or hold.held_fen != credit.amount_fen:
                bad(f"leg {leg.leg_id} credited {credit.amount_fen} with hold {hold}")
            elif credit.payer_region != leg.region:
                bad(f"leg {leg.leg_id} credited from {credit.payer_region}, held at {leg.region}")
        committed = t is not None and t.state == COMMITTED and leg.posted_fen > 0
        if committed and (credit is None or credit.amount_fen != leg.posted_fen):
            bad(f"committed leg {leg.leg_id} of {leg.posted_fen}; the credit is {credit}")
        if t is not None and t.state in ABORT_STATES and (credit is not None or posted):
            bad(f"aborted, but leg {leg.leg_id} moved money ({hold}, {credit})")
    if t is not None and t.state == COMMITTED and t.posted_fen != sum(x.posted_fen for x in legs):
        bad(f"committed {t.posted_fen} in all; the legs posted {[x.posted_fen for x in legs]}")
    if bill is not None and bill.state == SETTLED:
        copayer = sum(x.posted_fen for x in legs if x.source == COPAYER)
        if t is not None and t.state == COMMITTED and bill.paid_fen != copayer:
            bad(f"the bill says the co-payer paid {bill.paid_fen}; the leg posted {copayer}")
        if t is not None and t.state == ABORTED and bill.reason != t.reason:
            bad(f"aborted ({t.reason}); the region of care settled {bill.reason}")
        if (t is None or t.state in ABORT_STATES) and any(credits.values()):
            bad("the bill was refused, yet a leg was credited")


def final(
    late: Report,
    bad: Report,
    t: TransferRow | None,
    legs: list[LegRow],
    holds: Mapping[str, HoldRow | None],
    credits: Mapping[str, CreditRow | None],
    bill: BillRow | None,
) -> None:
    """Once quiet: the transfer is final, no leg still waits, and everything agrees."""
    agree(bad, t, legs, holds, credits, bill)
    if t is not None and t.state not in FINAL_STATES:
        late(f"the clearinghouse left it {t.state}")
    for leg in legs:
        hold = holds.get(leg.leg_id)
        if hold is not None and hold.state == PREPARED:
            late(f"leg {leg.leg_id} still holds {hold.held_fen} at {leg.region}")
