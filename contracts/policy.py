"""A pooling region's mutual-aid policy, and how two regions' policies are compared.

Regions adopted the 2024 "near relatives" scope at different times and order payments
differently, so two regions of one payment can disagree; these records say how.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from contracts.vocabulary import SCOPE_RELATIONSHIPS, PaymentOrder, Relationship, Scope

if TYPE_CHECKING:  # operations take their defaults from here
    from contracts.operations import ConfigureRegion, RegisterRegion

__all__ = [
    "DEFAULT_RESIDENT_PREMIUM_FEN",
    "FULL_CATALOGUE_PERMILLE",
    "NATIONAL_WALLET_MAX_PER_TRANSFER_FEN",
    "NATIONAL_WALLET_MAX_TRANSFERS_PER_DAY",
    "SCOPE_RELATIONSHIPS",
    "PaymentOrder",
    "Policy",
    "Scope",
    "policy_of",
]


NATIONAL_WALLET_MAX_PER_TRANSFER_FEN = 200_000
"""National default: at most ¥2,000 per wallet transfer."""
NATIONAL_WALLET_MAX_TRANSFERS_PER_DAY = 3
"""National default: at most three wallet transfers a day per co-payer."""
DEFAULT_RESIDENT_PREMIUM_FEN = 40_000
"""The yearly resident-insurance premium (¥400, the 2025 national minimum)."""
FULL_CATALOGUE_PERMILLE = 1000
"""A catalogue that covers the whole bill (shares are in thousandths)."""


@dataclass(frozen=True, slots=True)
class Policy:
    """One region's settings for family mutual aid."""

    scope: Scope = Scope.SCOPE_2024
    payment_order: PaymentOrder = PaymentOrder.OWN_FIRST
    wallet_enabled: bool = True
    wallet_max_per_transfer_fen: int = NATIONAL_WALLET_MAX_PER_TRANSFER_FEN
    wallet_max_transfers_per_day: int = NATIONAL_WALLET_MAX_TRANSFERS_PER_DAY
    resident_premium_fen: int = DEFAULT_RESIDENT_PREMIUM_FEN
    direct_settlement: bool = True
    """The region settles bills of persons insured elsewhere (异地就医直接结算), as
    every province does nationally; a scenario may switch it off."""
    catalogue_share_permille: int = FULL_CATALOGUE_PERMILLE
    """As region of care: the share of a bill within its catalogue (就医地目录), which
    personal accounts may pay; the rest is left to cash."""

    def allows(self, relationship: Relationship) -> bool:
        return relationship in SCOPE_RELATIONSHIPS[self.scope]


def policy_of(op: RegisterRegion | ConfigureRegion) -> Policy:
    """The policy carried by a registration or configuration operation."""
    return Policy(
        scope=op.scope,
        payment_order=op.payment_order,
        wallet_enabled=op.wallet_enabled,
        wallet_max_per_transfer_fen=op.wallet_max_per_transfer_fen,
        wallet_max_transfers_per_day=op.wallet_max_transfers_per_day,
        resident_premium_fen=op.resident_premium_fen,
        direct_settlement=op.direct_settlement,
        catalogue_share_permille=op.catalogue_share_permille,
    )
