"""The shared vocabulary of enumerations: flows, insurance kinds, relationships, policy settings,
the registry's answers."""

from __future__ import annotations

from enum import StrEnum


class Flow(StrEnum):
    """What a cross-region transfer pays for (the wire refuses any other value)."""

    COPAY = "copay"
    """A beneficiary's bill, from a bound co-payer's personal account (家庭共济)."""
    WALLET = "wallet"
    """Money moved into a relative's medical-insurance wallet (医保钱包)."""
    PREMIUM = "premium"
    """A resident relative's yearly premium (代缴居民医保费)."""
    AWAY = "away"
    """A bill settled directly at the region of care, away from the insured region
    (异地就医直接结算): paid from the beneficiary's wallet, own account and co-payer."""


class Insurance(StrEnum):
    """How a person is insured in the region that owns the person's records."""

    EMPLOYEE = "employee"
    """Employee insurance: the person has a personal account."""
    RESIDENT = "resident"
    """Resident insurance: no personal account; a yearly premium."""
    NONE = "none"
    """Not insured."""


class Relationship(StrEnum):
    """The beneficiary's relationship to the co-payer."""

    SPOUSE = "spouse"
    PARENT = "parent"
    CHILD = "child"
    SIBLING = "sibling"
    GRANDPARENT = "grandparent"
    GRANDCHILD = "grandchild"


class Scope(StrEnum):
    """Which relatives a co-payer may bind."""

    SCOPE_2021 = "2021"
    """Spouse, parents, children (配偶、父母、子女)."""
    SCOPE_2024 = "2024"
    """Near relatives (近亲属): the 2021 scope plus siblings, grandparents, grandchildren."""


SCOPE_RELATIONSHIPS: dict[Scope, frozenset[Relationship]] = {
    Scope.SCOPE_2021: frozenset({Relationship.SPOUSE, Relationship.PARENT, Relationship.CHILD}),
    Scope.SCOPE_2024: frozenset(Relationship),
}


class PaymentOrder(StrEnum):
    """Which personal account pays a bill first. The beneficiary's region governs."""

    OWN_FIRST = "own_first"
    """The beneficiary's own personal account first, the co-payer's for the rest."""
    COPAYER_FIRST = "copayer_first"
    """The co-payer's account first, the beneficiary's own for the rest."""


class RegistryResult(StrEnum):
    """What the clearinghouse did with an operator's change to the registry of regions."""

    ENABLED = "enabled"
    DISABLED = "disabled"
    ALREADY_ENABLED = "already_enabled"
    ALREADY_DISABLED = "already_disabled"
    REGISTERED = "registered"
    """A region registered (or its registration updated)."""
    UNKNOWN_REGION = "unknown_region"
    """No region of that code is registered: nothing changed."""
    BAD_REGION_CODE = "bad_region_code"
    """Not a 6-digit region code: nothing registered."""
