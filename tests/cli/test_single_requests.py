"""One request at a time from the CLI: ``gongji person``, ``bind``, ``unbind``, ``bill
submit``, ``wallet transfer``, ``premium pay`` and ``transfer show``, run as an operator
runs them (subprocesses) against one real local cluster (Shanghai and Wuhan)."""

from __future__ import annotations

import dataclasses
import json
import uuid
from dataclasses import dataclass
from typing import Any

import pytest

from contracts.policy import DEFAULT_RESIDENT_PREMIUM_FEN
from tests.cli.conftest import RunningCluster, gongji

pytestmark = pytest.mark.timeout(120)

SHANGHAI, WUHAN = "310000", "420100"
OPENING_FEN = 100_000


@dataclass(frozen=True)
class Family:
    """A co-payer in Shanghai bound to a resident parent in Wuhan, enrolled and bound
    through the CLI; ``unbound`` is a Wuhan resident nobody pays for."""

    copayer: str
    parent: str
    unbound: str
    secret: str
    binding_id: str


def run(cluster: RunningCluster, *args: str) -> Any:
    """``gongji ARGS --json --data-dir <cluster>``: exit 0 and its one JSON object."""
    done = gongji(*args, "--json", "--data-dir", str(cluster.data_dir))
    assert done.returncode == 0, (done.stdout, done.stderr)
    return json.loads(done.stdout)


def show(cluster: RunningCluster, region: str, psn: str) -> Any:
    return run(cluster, "person", "show", "--region", region, "--psn", psn)


def available_fen(cluster: RunningCluster, region: str, psn: str) -> int:
    account = show(cluster, region, psn)["account"]
    assert account is not None
    return int(account["available_fen"])


def enroll(cluster: RunningCluster, region: str, psn: str, insurance: str, *more: str) -> Any:
    return run(
        cluster,
        "person",
        "enroll",
        "--region",
        region,
        "--psn",
        psn,
        "--insurance",
        insurance,
        *more,
    )


def payer_flags(
    family: Family, *, secret: str | None = None, beneficiary: str | None = None
) -> list[str]:
    """The co-payer (in Shanghai) proving who he or she is, paying for the parent (or
    ``beneficiary``) in Wuhan."""
    return [
        "--copayer",
        family.copayer,
        "--copayer-region",
        SHANGHAI,
        "--secret",
        family.secret if secret is None else secret,
        "--beneficiary",
        family.parent if beneficiary is None else beneficiary,
        "--beneficiary-region",
        WUHAN,
    ]


@pytest.fixture(scope="module")
def family(running_cluster: RunningCluster) -> Family:
    tag = uuid.uuid4().hex[:8]
    copayer, parent, unbound = f"cli-{tag}-child", f"cli-{tag}-parent", f"cli-{tag}-alone"
    secret = f"s-{tag}"
    balance = str(OPENING_FEN)
    enroll(
        running_cluster, SHANGHAI, copayer, "employee", "--balance-fen", balance, "--secret", secret
    )
    enroll(running_cluster, WUHAN, parent, "resident")
    enroll(running_cluster, WUHAN, unbound, "resident")
    unbound_yet = Family(copayer, parent, unbound, secret, binding_id="")
    bound = run(running_cluster, "bind", *payer_flags(unbound_yet), "--relationship", "parent")
    assert bound["outcome"] == "COMMITTED" and bound["binding_id"]
    return dataclasses.replace(unbound_yet, binding_id=bound["binding_id"])


def test_an_enrolled_person_shows_insurance_balance_and_binding(
    running_cluster: RunningCluster, family: Family
) -> None:
    person = show(running_cluster, SHANGHAI, family.copayer)

    assert person["psn_no"] == family.copayer
    assert person["insurance"] == "employee"
    assert person["account"]["posted_fen"] > 0
    [binding] = person["bindings"]
    assert binding["binding_id"] == family.binding_id
    assert (binding["beneficiary"], binding["beneficiary_region"]) == (family.parent, WUHAN)
    assert binding["status"] == "active"
    resident = show(running_cluster, WUHAN, family.parent)
    assert resident["insurance"] == "resident" and resident["account"] is None
    text = gongji(
        "person",
        "show",
        "--region",
        WUHAN,
        "--psn",
        family.parent,
        "--data-dir",
        str(running_cluster.data_dir),
    )
    assert text.returncode == 0, text.stderr
    assert f"paid for by {family.copayer} in {SHANGHAI} (parent), active" in text.stdout
    assert "secret" not in text.stdout


def test_enrolling_again_leaves_the_balance(
    running_cluster: RunningCluster, family: Family
) -> None:
    before = available_fen(running_cluster, SHANGHAI, family.copayer)

    again = enroll(running_cluster, SHANGHAI, family.copayer, "employee", "--balance-fen", "5")

    assert again["enrolled"] is False
    assert again["account"]["available_fen"] == before


def test_a_bound_parents_bill_is_paid_by_the_copayer(
    running_cluster: RunningCluster, family: Family
) -> None:
    before = available_fen(running_cluster, SHANGHAI, family.copayer)
    transfer_id = f"cli-bill-{uuid.uuid4().hex[:8]}"

    outcome = run(
        running_cluster,
        "bill",
        "submit",
        "--region",
        WUHAN,
        "--beneficiary",
        family.parent,
        "--amount-fen",
        "3000",
        "--transfer-id",
        transfer_id,
    )

    assert outcome["outcome"] == "COMMITTED"
    assert (outcome["transfer_id"], outcome["paid_fen"]) == (transfer_id, 3000)
    assert (outcome["payer_region"], outcome["remaining_fen"]) == (SHANGHAI, 0)
    assert available_fen(running_cluster, SHANGHAI, family.copayer) == before - 3000
    timeline = run(running_cluster, "transfer", "show", transfer_id)
    assert timeline["clearinghouse"]["state"] == "committed"
    assert timeline["clearinghouse"]["posted_fen"] == 3000
    text = gongji("transfer", "show", transfer_id, "--data-dir", str(running_cluster.data_dir))
    report = gongji("report", "transfer", transfer_id, "--data-dir", str(running_cluster.data_dir))
    assert text.returncode == report.returncode == 0
    assert text.stdout == report.stdout
    assert "committed" in text.stdout.splitlines()[0]


def test_a_bill_sent_again_with_its_id_is_paid_once(
    running_cluster: RunningCluster, family: Family
) -> None:
    before = available_fen(running_cluster, SHANGHAI, family.copayer)
    transfer_id = f"cli-bill-{uuid.uuid4().hex[:8]}"
    bill = ["bill", "submit", "--region", WUHAN, "--beneficiary", family.parent]
    bill += ["--amount-fen", "1200", "--transfer-id", transfer_id]

    first = run(running_cluster, *bill)
    again = run(running_cluster, *bill)

    assert first == again
    assert first["outcome"] == "COMMITTED"
    assert available_fen(running_cluster, SHANGHAI, family.copayer) == before - 1200


def test_a_bill_of_someone_nobody_pays_for_is_refused_with_no_binding(
    running_cluster: RunningCluster, family: Family
) -> None:
    done = gongji(
        "bill",
        "submit",
        "--region",
        WUHAN,
        "--beneficiary",
        family.unbound,
        "--amount-fen",
        "700",
        "--data-dir",
        str(running_cluster.data_dir),
    )

    assert done.returncode == 1, (done.stdout, done.stderr)
    assert ": refused NO_BINDING" in done.stdout


def test_a_wallet_transfer_moves_money_into_the_relatives_wallet(
    running_cluster: RunningCluster, family: Family
) -> None:
    before = available_fen(running_cluster, SHANGHAI, family.copayer)

    outcome = run(
        running_cluster, "wallet", "transfer", *payer_flags(family), "--amount-fen", "500"
    )

    assert (outcome["outcome"], outcome["paid_fen"], outcome["flow"]) == (
        "COMMITTED",
        500,
        "wallet",
    )
    assert available_fen(running_cluster, SHANGHAI, family.copayer) == before - 500
    assert show(running_cluster, WUHAN, family.parent)["wallet"]["posted_fen"] >= 500


def test_a_wrong_secret_is_refused(running_cluster: RunningCluster, family: Family) -> None:
    flags = payer_flags(family, secret="not-the-secret")

    done = gongji(
        "wallet",
        "transfer",
        *flags,
        "--amount-fen",
        "500",
        "--data-dir",
        str(running_cluster.data_dir),
    )

    assert done.returncode == 1, (done.stdout, done.stderr)
    assert ": refused IDENTITY_CHECK_FAILED" in done.stdout


def test_a_premium_payment_is_paid_once_a_year(
    running_cluster: RunningCluster, family: Family
) -> None:
    before = available_fen(running_cluster, SHANGHAI, family.copayer)

    paid = run(running_cluster, "premium", "pay", *payer_flags(family), "--year", "2031")
    again = gongji(
        "premium",
        "pay",
        *payer_flags(family),
        "--year",
        "2031",
        "--data-dir",
        str(running_cluster.data_dir),
    )

    assert (paid["outcome"], paid["flow"]) == ("COMMITTED", "premium")
    assert paid["paid_fen"] == DEFAULT_RESIDENT_PREMIUM_FEN
    assert available_fen(running_cluster, SHANGHAI, family.copayer) == before - paid["paid_fen"]
    assert again.returncode == 1
    assert ": refused PREMIUM_ALREADY_PAID" in again.stdout


def test_unbinding_ends_the_binding(running_cluster: RunningCluster, family: Family) -> None:
    tag = uuid.uuid4().hex[:8]
    sibling = f"cli-{tag}-sibling"
    enroll(running_cluster, WUHAN, sibling, "resident")
    flags = payer_flags(family, beneficiary=sibling)
    bound = run(running_cluster, "bind", *flags, "--relationship", "sibling")

    revoked = run(
        running_cluster,
        "unbind",
        "--binding-id",
        bound["binding_id"],
        "--copayer",
        family.copayer,
        "--copayer-region",
        SHANGHAI,
        "--secret",
        family.secret,
    )

    assert revoked["outcome"] == "COMMITTED"
    [binding] = show(running_cluster, WUHAN, sibling)["bindings"]
    assert binding["status"] != "active"


@pytest.mark.parametrize(
    ("argv", "error"),
    [
        (
            ["bill", "submit", "--region", "4201", "--beneficiary", "A1", "--amount-fen", "1"],
            "argument --region: '4201' is not a 6-digit region code",
        ),
        (
            ["bill", "submit", "--region", WUHAN, "--beneficiary", "A1", "--amount-fen", "0"],
            "argument --amount-fen: '0' must be from 1 to",
        ),
        (
            ["bill", "submit", "--region", WUHAN, "--beneficiary", "A1", "--amount-fen", "1.5"],
            "argument --amount-fen: '1.5' is not a whole number of fen",
        ),
        (
            ["bill", "submit", "--region", WUHAN, "--beneficiary", "a b", "--amount-fen", "1"],
            "argument --beneficiary: 'a b' is not an identifier",
        ),
        (
            [
                "bill",
                "submit",
                "--region",
                WUHAN,
                "--beneficiary",
                "A1",
                "--amount-fen",
                "1",
                "--transfer-id",
                "x" * 65,
            ],
            "argument --transfer-id:",
        ),
        (
            ["person", "enroll", "--region", WUHAN, "--psn", "A1", "--insurance", "gold"],
            "argument --insurance: 'gold' is not one of employee, resident, none",
        ),
        (
            [
                "person",
                "enroll",
                "--region",
                WUHAN,
                "--psn",
                "A1",
                "--insurance",
                "resident",
                "--balance-fen",
                "5",
            ],
            "--balance-fen: only an employee-insured person",
        ),
        (
            [
                "bind",
                "--copayer",
                "A1",
                "--copayer-region",
                SHANGHAI,
                "--secret",
                "s",
                "--beneficiary",
                "B1",
                "--beneficiary-region",
                WUHAN,
                "--relationship",
                "cousin",
            ],
            "argument --relationship: 'cousin' is not one of spouse, parent",
        ),
        (
            [
                "premium",
                "pay",
                "--copayer",
                "A1",
                "--copayer-region",
                SHANGHAI,
                "--secret",
                "s",
                "--beneficiary",
                "B1",
                "--beneficiary-region",
                WUHAN,
                "--year",
                "0",
            ],
            "argument --year: '0' is not a year",
        ),
        (
            ["unbind", "--binding-id", "b1", "--copayer", "A1", "--copayer-region", SHANGHAI],
            "the following arguments are required: --secret",
        ),
        (["transfer", "show", "no such id"], "argument ID: 'no such id' is not an identifier"),
    ],
)
def test_a_bad_flag_is_refused_in_one_line_with_status_2(
    argv: list[str], error: str, tmp_path: Any
) -> None:
    done = gongji(*argv, "--data-dir", str(tmp_path))

    assert done.returncode == 2, (done.stdout, done.stderr)
    assert error in done.stderr.splitlines()[-1]
    assert done.stdout == ""


def test_show_of_an_unknown_person_exits_1(running_cluster: RunningCluster) -> None:
    done = gongji(
        "person",
        "show",
        "--region",
        WUHAN,
        "--psn",
        "nobody-here",
        "--data-dir",
        str(running_cluster.data_dir),
    )

    assert done.returncode == 1
    assert done.stderr == f"gongji: region {WUHAN} has no person nobody-here\n"
