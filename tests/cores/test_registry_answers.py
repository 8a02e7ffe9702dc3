"""The clearinghouse answers an operator's registry changes, and counts a window's regions
out of those that take part."""

from __future__ import annotations

from clearinghouse.core import ClearinghouseCore
from clearinghouse.store import ClearinghouseStore
from contracts.effects import Anomaly, Effects
from contracts.identifiers import region_address
from contracts.operations import (
    CloseWindow,
    ConfigureRegion,
    Reconciled,
    RegisterRegion,
    RegistryChanged,
    SetRegionEnabled,
    WindowPosition,
    WindowSummary,
)
from contracts.participants import Participant, Role
from contracts.permissions import IMPERSONATION, refusal
from contracts.vocabulary import RegistryResult as R
from tests.cores.world import BEIJING, CHENGDU, WUHAN

OPERATOR = "client.operator"


def core(*enabled: tuple[str, bool]) -> ClearinghouseCore:
    hub = ClearinghouseCore(ClearinghouseStore.open(":memory:"))
    for code, on in enabled:
        with hub.store.db.transaction():
            hub.handle(RegisterRegion(code, f"region {code}", "p", on), 0)
    return hub


def set_enabled(hub: ClearinghouseCore, code: str, on: bool, reply_to: str = OPERATOR) -> Effects:
    with hub.store.db.transaction():
        return hub.handle(SetRegionEnabled(code, on, reply_to), 0)


def answers(effects: Effects) -> list[tuple[str, RegistryChanged]]:
    return [(o.address, o.op) for o in effects.outgoing if isinstance(o.op, RegistryChanged)]


def test_enable_disable_and_again_answer_what_happened() -> None:
    hub = core((BEIJING, False))
    steps = [(True, R.ENABLED), (True, R.ALREADY_ENABLED), (False, R.DISABLED)]
    steps.append((False, R.ALREADY_DISABLED))
    for on, expected in steps:
        effects = set_enabled(hub, BEIJING, on)
        assert answers(effects) == [(OPERATOR, RegistryChanged(BEIJING, expected))]
        region = hub.store.region(BEIJING)
        assert region is not None and region.enabled is on
        # The region is configured each time (idempotent; heals a missed configuration).
        configure = [
            (o.address, o.op.enabled) for o in effects.outgoing if isinstance(o.op, ConfigureRegion)
        ]
        assert configure == [(region_address(BEIJING), on)]


def test_unknown_region_is_answered_and_changes_nothing() -> None:
    hub = core((BEIJING, True))
    effects = set_enabled(hub, "999999", False)
    assert answers(effects) == [(OPERATOR, RegistryChanged("999999", R.UNKNOWN_REGION))]
    assert [o for o in effects.outgoing if not isinstance(o.op, RegistryChanged)] == []
    assert any(isinstance(e, Anomaly) for e in effects.events)
    assert hub.store.region("999999") is None


def test_without_reply_to_no_answer_is_sent() -> None:
    hub = core((BEIJING, False))
    assert answers(set_enabled(hub, BEIJING, True, reply_to="")) == []
    assert answers(set_enabled(hub, "999999", True, reply_to="")) == []
    with hub.store.db.transaction():
        quiet = hub.handle(RegisterRegion(CHENGDU, "c", "p", True), 0)
        asked = hub.handle(RegisterRegion(WUHAN, "w", "p", True, reply_to=OPERATOR), 0)
    assert answers(quiet) == []
    assert answers(asked) == [(OPERATOR, RegistryChanged(WUHAN, R.REGISTERED))]


def test_reply_to_is_the_operators_own_address_or_empty() -> None:
    operator = Participant(Role.ADMIN, "operator")
    assert operator.address == OPERATOR
    assert refusal(operator, SetRegionEnabled(BEIJING, True, OPERATOR)) is None
    assert refusal(operator, SetRegionEnabled(BEIJING, True)) is None
    assert refusal(operator, SetRegionEnabled(BEIJING, True, "client.other")) == IMPERSONATION
    assert refusal(operator, RegisterRegion(BEIJING, "b", "p", True, reply_to="client.x")) == (
        IMPERSONATION
    )
    # The other admin requests still need their answer address.
    assert refusal(operator, CloseWindow("c1", "")) == IMPERSONATION
    region = Participant(Role.REGION, BEIJING)
    assert refusal(region, RegistryChanged(BEIJING, R.ENABLED)) is not None


def window_report(hub: ClearinghouseCore, op: CloseWindow) -> tuple[WindowSummary, list[str]]:
    with hub.store.db.transaction():
        effects = hub.handle(op, 1_000)
    summary = next(o.op for o in effects.outgoing if isinstance(o.op, WindowSummary))
    listed = [
        f"{o.op.region}:{'part' if o.op.taking_part else 'disabled'}"
        for o in effects.outgoing
        if isinstance(o.op, WindowPosition)
    ]
    return summary, listed


def test_window_counts_reconciled_out_of_the_regions_taking_part() -> None:
    hub = core((WUHAN, True), (CHENGDU, True), (BEIJING, False))
    summary, listed = window_report(hub, CloseWindow("close-1", OPERATOR))
    assert (summary.regions, summary.reconciled_regions, summary.disabled_regions) == (2, 0, 1)
    assert listed == [f"{BEIJING}:disabled", f"{WUHAN}:part", f"{CHENGDU}:part"]
    # Every registered region reconciles its report, the disabled one included: it is not
    # counted, so the count never exceeds the regions that take part.
    with hub.store.db.transaction():
        for code in (WUHAN, CHENGDU, BEIJING):
            hub.handle(Reconciled(summary.window, code, 0, 0, 0), 2_000)
    summary, _ = window_report(hub, CloseWindow("close-1", OPERATOR))  # asked again
    assert (summary.regions, summary.reconciled_regions, summary.disabled_regions) == (2, 2, 1)
