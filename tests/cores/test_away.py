"""Care away from home (异地就医) through the real cores, delivered in memory (no broker):
registration (备案) at the insured region, and bills at the region of care."""

from __future__ import annotations

from contracts.identifiers import CLEARINGHOUSE, region_address
from contracts.operations import (
    AwayRegistrationOutcome,
    EnrollPerson,
    Insurance,
    RegisterRegion,
    RequestAwayRegistration,
    RevokeAwayRegistration,
)
from contracts.reasons import COMMITTED, ReasonCode
from gongji.loopback import Loopback

HENAN, GUANGZHOU, SHANGHAI, BEIJING = "410100", "440100", "310000", "110000"
"""Insured region (Zhengzhou), a region of care that settles directly, a third region, and
a region of care that does not."""
CLIENT = "client.test"
DAY_MS = 86_400_000


def world() -> Loopback:
    net = Loopback([HENAN, GUANGZHOU, SHANGHAI, BEIJING])
    for code, direct in ((HENAN, True), (GUANGZHOU, True), (SHANGHAI, True), (BEIJING, False)):
        register = RegisterRegion(
            code,
            f"region {code}",
            "p",
            True,
            direct_settlement=direct,
            catalogue_share_permille=800,
        )
        net.send(CLEARINGHOUSE, register)
    net.send(region_address(HENAN), EnrollPerson("P1", Insurance.RESIDENT, secret="s1"))
    net.send(region_address(HENAN), EnrollPerson("P2", Insurance.EMPLOYEE, 10_000, "s2"))
    net.send(region_address(HENAN), EnrollPerson("N1", Insurance.NONE, secret="n1"))
    net.deliver_all()
    return net


def register_away(
    net: Loopback,
    rid: str,
    psn: str,
    care: str,
    *,
    secret: str,
    from_ms: int = 0,
    until_ms: int = 0,
) -> AwayRegistrationOutcome:
    request = RequestAwayRegistration(rid, psn, secret, care, from_ms, until_ms, CLIENT)
    net.send(region_address(HENAN), request)
    net.deliver_all()
    [answer] = [r for r in net.replies if isinstance(r, AwayRegistrationOutcome)][-1:]
    assert answer.request_id == rid
    return answer


def test_registration_is_recorded_by_both_the_insured_region_and_the_directory() -> None:
    net = world()
    outcome = register_away(net, "r1", "P1", GUANGZHOU, secret="s1", until_ms=30 * DAY_MS)
    assert (outcome.outcome, outcome.registration_id) == (COMMITTED, "r1")
    henan = net.regions[HENAN].store.away_requests
    assert [state for _, state, _ in henan.history("r1")] == ["requested", "recorded"]
    recorded = net.clearinghouse.store.away_registrations.get("r1")
    assert recorded is not None
    assert (recorded.beneficiary, recorded.insured_region, recorded.care_region) == (
        "P1",
        HENAN,
        GUANGZHOU,
    )
    assert (recorded.status, recorded.until_ms) == ("active", 30 * DAY_MS)


def test_registration_refusals_have_one_cause_each() -> None:
    net = world()
    got = {
        "r-bad-secret": register_away(net, "r-bad-secret", "P1", GUANGZHOU, secret="x"),
        "r-uninsured": register_away(net, "r-uninsured", "N1", GUANGZHOU, secret="n1"),
        "r-unknown-region": register_away(net, "r-unknown-region", "P1", "530100", secret="s1"),
        "r-not-direct": register_away(net, "r-not-direct", "P1", BEIJING, secret="s1"),
        "r-home": register_away(net, "r-home", "P1", HENAN, secret="s1"),
        "r-period": register_away(
            net, "r-period", "P1", GUANGZHOU, secret="s1", from_ms=DAY_MS, until_ms=DAY_MS
        ),
    }
    assert {rid: o.outcome for rid, o in got.items()} == {
        "r-bad-secret": ReasonCode.IDENTITY_CHECK_FAILED,
        "r-uninsured": ReasonCode.BENEFICIARY_NOT_INSURED,
        "r-unknown-region": ReasonCode.UNKNOWN_REGION,
        "r-not-direct": ReasonCode.CARE_REGION_NOT_ENABLED,
        "r-home": ReasonCode.CARE_NOT_AWAY,
        "r-period": ReasonCode.INVALID_PERIOD,
    }
    # Refused before the directory (identity) or by it: nothing is active.
    registrations = net.clearinghouse.store.away_registrations
    assert registrations.get("r-bad-secret") is None
    refused = registrations.get("r-not-direct")
    assert refused is not None and refused.status == "refused"


def test_registration_asked_again_is_answered_again_and_revocation_ends_it() -> None:
    net = world()
    register_away(net, "r1", "P1", GUANGZHOU, secret="s1")
    again = register_away(net, "r1", "P1", GUANGZHOU, secret="s1")
    assert again.outcome == COMMITTED
    assert len(net.regions[HENAN].store.away_requests.history("r1")) == 2
    net.send(region_address(HENAN), RevokeAwayRegistration("u1", "P1", "s1", "r1", CLIENT))
    net.send(region_address(HENAN), RevokeAwayRegistration("u2", "P1", "s1", "nope", CLIENT))
    net.deliver_all()
    answers = {r.request_id: r for r in net.replies if isinstance(r, AwayRegistrationOutcome)}
    assert answers["u1"].outcome == COMMITTED
    assert answers["u2"].outcome == ReasonCode.UNKNOWN_REGISTRATION
    recorded = net.clearinghouse.store.away_registrations.get("r1")
    assert recorded is not None and recorded.status == "revoked"
