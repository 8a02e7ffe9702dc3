"""Planted bugs are caught: the invariants are not vacuous."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from gongji.sim import SimConfig, SimReport, format_report, parse_faults, run_simulation

ONLY_COPAY: dict[str, Any] = {
    "window_ms": 0,
    "wallet_share": 0.0,
    "premium_share": 0.0,
    "away_share": 0.0,
}


def run(
    plant: str, faults: str, seed: int = 1, *, explain: bool = False, **settings: Any
) -> SimReport:
    config = SimConfig(
        seed=seed,
        transfers=400,
        regions=6,
        faults=parse_faults(faults),
        plant=plant,
        requests_per_second=100,
        **settings,
    )
    return run_simulation(config, explain=explain)


def kinds(report: SimReport) -> Counter[str]:
    return Counter(v.invariant for v in report.violations)


@pytest.mark.timeout(120)
def test_double_post_on_redelivered_commit_is_caught() -> None:
    found = kinds(run("double-post", "duplicate=0.1"))
    assert found["exactly_once"] and found["no_negative_balance"] and found["conservation"]
    assert run("", "duplicate=0.1").ok  # the real region, same faults: clean


@pytest.mark.timeout(120)
def test_double_credit_on_redelivered_credit_is_caught() -> None:
    found = kinds(run("double-credit", "duplicate=0.1"))
    assert found["exactly_once"] and found["conservation"] and found["bilateral_positions"]


@pytest.mark.timeout(120)
def test_coordinator_aborting_after_commit_on_restart_is_caught() -> None:
    report = run("abort-on-restart", "crash=0.05", **ONLY_COPAY)
    details = [v.detail for v in report.violations if v.invariant == "agreement"]
    # Aborting (the Abort it sends is answered with the post) or aborted.
    assert any("but the clearinghouse is abort" in d for d in details), report.violations
    assert run("", "crash=0.05", **ONLY_COPAY).ok


@pytest.mark.timeout(300)
def test_coordinator_forgetting_its_timers_on_restart_is_caught() -> None:
    # Without client retries, and with its regions' re-sent requests ignored, nothing
    # else revives a transfer the coordinator forgot.
    stuck = []
    for seed in (1, 2, 3):
        report = run("forget-on-restart", "crash=0.05", seed, client_retry_ms=0, **ONLY_COPAY)
        stuck += [v for v in report.violations if "clearinghouse left it" in v.detail]
    assert stuck


@pytest.mark.timeout(180)
def test_a_violation_prints_seed_replay_command_and_the_transfers_story() -> None:
    report = run("double-post", "duplicate=0.1", seed=5, explain=True)
    assert not report.ok
    assert report.replay.startswith("gongji sim --seed 5 ")
    assert "--plant double-post" in report.replay
    assert report.replay_hash_matches is True
    assert report.traces and all(report.traces.values())
    story = next(iter(report.traces.values()))
    assert any("Commit" in line for line in story)
    text = format_report(report)
    assert "VIOLATIONS (seed 5)" in text and "replay: gongji sim --seed 5" in text


# --- bugs planted in the step engine the RabbitMQ shell runs (broker.engine) ---


def acked_too_early(report: SimReport) -> list[str]:
    return [v.detail for v in report.violations if v.invariant == "ack after commit and confirm"]


@pytest.mark.timeout(120)
def test_engine_acking_before_commit_is_caught() -> None:
    details = acked_too_early(run("ack-before-commit", "crash=0.05"))
    assert any("before its step committed" in d for d in details)
    assert run("", "crash=0.05").ok


@pytest.mark.timeout(120)
def test_engine_acking_a_step_whose_publish_failed_is_caught() -> None:
    report = run("ack-failed-publish", "nack=0.05")
    assert any("answers failed" in d for d in acked_too_early(report))
    # And it does real harm: requests whose answers were never sent stay unanswered.
    assert kinds(report)["liveness"]
    assert run("", "nack=0.05").ok


@pytest.mark.timeout(120)
def test_engine_settling_a_later_step_first_is_caught() -> None:
    details = acked_too_early(run("settle-out-of-order", "none"))
    assert any("were not confirmed" in d for d in details)
    assert run("", "none").ok


@pytest.mark.timeout(120)
def test_engine_believing_every_sender_is_caught_by_the_hostile_participant() -> None:
    report = run("trust-senders", "hostile=5")
    assert kinds(report)["forgeries have no effect"]
    clean = run("", "hostile=5")
    assert clean.ok and clean.faults_injected["hostile"] > 0


@pytest.mark.timeout(120)
def test_a_leg_hold_that_expires_by_itself_is_caught() -> None:
    """With several payer legs, a hold that expires by itself lets one leg post while
    another does not: money moves in some regions and not in others."""
    found = kinds(run("expiring-legs", "expiry=0.3,delay=0.2", away_share=0.5))
    assert found["no_anomaly"]  # "leg not posted ...: HOLD_EXPIRED"
    assert run("", "expiry=0.3,delay=0.2", away_share=0.5).ok  # prepared holds: clean
