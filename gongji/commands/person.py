"""``gongji person enroll``: enroll (or re-insure) one person in a region, as the cluster's
operator; ``gongji person show``: what the region's file holds about a person;
``register-away`` and ``revoke-away``: care away from home (``gongji.commands.away``).

``show`` prints the person number (the operator asked for that person); it never prints
the secret. It reads the files read-only, so the running services keep their write locks.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sqlite3
import sys
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from clearinghouse.service import clearinghouse_database
from contracts.identifiers import region_address
from contracts.operations import EnrollPerson
from contracts.vocabulary import Insurance
from gongji.commands.away import add_registration_actions, china_day, run_registration
from gongji.commands.options import DEFAULT_CLUSTER_DIR, UsageError, cluster_target, region_code
from gongji.commands.requesting import (
    REFUSED,
    add_request_options,
    amount_fen,
    identifier,
    operator_client,
    secret,
    word_of,
)
from regions.service import region_database
from regions.stores.accounts import person_account, wallet_account

ENROLL_POLL_S = 0.1


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("person", help="enroll or look at one insured person")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    enroll = actions.add_parser(
        "enroll",
        help="enroll a person in a region and wait until the region has recorded it",
        description="Send an enrolment to the region, as the cluster's operator, and wait"
        " until the region's file shows the person so insured. Enrolling a person known"
        " already changes the insurance (none ends it, and the person's bindings); the"
        " balance is never touched again.",
    )
    enroll.add_argument("--region", type=region_code, required=True, metavar="CODE")
    enroll.add_argument("--psn", type=identifier, required=True, help="the person number")
    enroll.add_argument(
        "--insurance", type=word_of(Insurance), required=True, help=", ".join(Insurance)
    )
    enroll.add_argument(
        "--balance-fen",
        type=amount_fen,
        metavar="N",
        help="opening balance of the personal account (employee insurance only)",
    )
    enroll.add_argument(
        "--secret",
        type=secret,
        default="",
        help="what the identity check compares (default: empty)",
    )
    add_request_options(enroll)
    add_registration_actions(actions)
    show = actions.add_parser(
        "show",
        help="a person's insurance, balances and bindings (reads the SQLite files, read-only)",
    )
    show.add_argument("--region", type=region_code, required=True, metavar="CODE")
    show.add_argument("--psn", type=identifier, required=True, help="the person number")
    show.add_argument("--json", action="store_true", help="print one JSON object")
    show.add_argument(
        "--data-dir",
        type=Path,
        default=Path(os.environ.get("GONGJI_CLUSTER_DIR", DEFAULT_CLUSTER_DIR)),
        help="where the region and clearinghouse files are (default: $GONGJI_CLUSTER_DIR "
        "or %(default)s)",
    )


# --- reading a person -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Account:
    available_fen: int
    """What may still be debited (holds under way deducted)."""
    posted_fen: int


@dataclass(frozen=True, slots=True)
class PersonRecord:
    """A person as the region's file (and the clearinghouse's directory) has it."""

    psn_no: str
    region: str
    insurance: str
    enrolled_at_ms: int
    account: Account | None
    """The personal account (employee insurance only)."""
    wallet: Account | None
    """The medical-insurance wallet, once money was moved into it."""
    bindings: list[dict[str, Any]]
    """The directory's bindings with this person as co-payer or beneficiary (empty when
    the clearinghouse's file is not in the data directory)."""
    premiums: list[dict[str, Any]]
    away: list[dict[str, Any]] = field(default_factory=list)
    """The directory's registrations of care away from home (备案) of this person."""


@contextlib.contextmanager
def _read_only(path: Path) -> Iterator[sqlite3.Connection]:
    if not path.exists():
        raise FileNotFoundError(path)
    sql = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    sql.row_factory = sqlite3.Row
    try:
        yield sql
    finally:
        sql.close()


def _account(sql: sqlite3.Connection, account: str) -> Account | None:
    row = sql.execute(
        "SELECT credits_posted - debits_posted - debits_pending, credits_posted - debits_posted"
        " FROM ledger_accounts WHERE id = ?",
        (account,),
    ).fetchone()
    return None if row is None else Account(int(row[0]), int(row[1]))


def read_person(data_dir: Path, region: str, psn_no: str) -> PersonRecord | None:
    """The person from the region's file in ``data_dir``; None when the region does not
    know the person. FileNotFoundError when the region's file is not there."""
    with _read_only(region_database(data_dir, region)) as sql:
        person = sql.execute(
            "SELECT insurance, enrolled_at_ms FROM persons WHERE psn_no = ?", (psn_no,)
        ).fetchone()
        if person is None:
            return None
        account = _account(sql, person_account(psn_no))
        wallet = _account(sql, wallet_account(psn_no))
        premiums = [
            dict(row)
            for row in sql.execute(
                "SELECT year, state, amount_fen, transfer_id FROM premiums WHERE psn_no = ?"
                " ORDER BY year",
                (psn_no,),
            )
        ]
    return PersonRecord(
        psn_no,
        region,
        person["insurance"],
        person["enrolled_at_ms"],
        account,
        wallet,
        _bindings(data_dir, region, psn_no),
        premiums,
        _away(data_dir, region, psn_no),
    )


def _bindings(data_dir: Path, region: str, psn_no: str) -> list[dict[str, Any]]:
    # The directory is the clearinghouse's: a region keeps only the requests it passed on.
    try:
        with _read_only(clearinghouse_database(data_dir)) as sql:
            rows = sql.execute(
                "SELECT binding_id, copayer, copayer_region, beneficiary, beneficiary_region,"
                " relationship, status, reason FROM bindings"
                " WHERE (copayer = ? AND copayer_region = ?)"
                " OR (beneficiary = ? AND beneficiary_region = ?)"
                " ORDER BY created_at_ms, binding_id",
                (psn_no, region, psn_no, region),
            ).fetchall()
    except FileNotFoundError:
        return []
    return [dict(row) for row in rows]


def _away(data_dir: Path, region: str, psn_no: str) -> list[dict[str, Any]]:
    try:
        with _read_only(clearinghouse_database(data_dir)) as sql:
            rows = sql.execute(
                "SELECT registration_id, care_region, from_ms, until_ms, status, reason"
                " FROM away_registrations WHERE beneficiary = ? AND insured_region = ?"
                " ORDER BY registration_id",
                (psn_no, region),
            ).fetchall()
    except (FileNotFoundError, sqlite3.OperationalError):  # no file, or one without the table
        return []
    return [dict(row) for row in rows]


def format_person(person: PersonRecord) -> str:
    lines = [
        f"person {person.psn_no} in {person.region}: {person.insurance} insured",
        f"  personal account: {_money(person.account)}",
        f"  wallet:           {_money(person.wallet)}",
    ]
    for b in person.bindings:
        status = b["status"] + (f" ({b['reason']})" if b["reason"] else "")
        if b["copayer"] == person.psn_no and b["copayer_region"] == person.region:
            other = f"pays for {b['beneficiary']} in {b['beneficiary_region']}"
        else:
            other = f"paid for by {b['copayer']} in {b['copayer_region']}"
        lines.append(f"  binding {b['binding_id']}: {other} ({b['relationship']}), {status}")
    if not person.bindings:
        lines.append("  bindings: none")
    for p in person.premiums:
        lines.append(f"  premium {p['year']}: {p['amount_fen']} fen, {p['state']}")
    for a in person.away:
        status = a["status"] + (f" ({a['reason']})" if a["reason"] else "")
        until = f"to {china_day(a['until_ms'] - 1)}" if a["until_ms"] else "with no end"
        lines.append(
            f"  care away from home {a['registration_id']}: at {a['care_region']} from"
            f" {china_day(a['from_ms'])} {until}, {status}"
        )
    return "\n".join(lines)


def _money(account: Account | None) -> str:
    if account is None:
        return "none"
    if account.available_fen == account.posted_fen:
        return f"{account.posted_fen} fen"
    return f"{account.posted_fen} fen ({account.available_fen} fen available)"


def _show(args: argparse.Namespace) -> int:
    data_dir = args.data_dir
    try:
        person = read_person(data_dir, args.region, args.psn)
    except FileNotFoundError:
        print(f"gongji: no file of region {args.region} in {data_dir}", file=sys.stderr)
        return 1
    except sqlite3.Error as error:
        print(f"gongji: cannot read region {args.region}'s file: {error}", file=sys.stderr)
        return 1
    if person is None:
        print(f"gongji: region {args.region} has no person {args.psn}", file=sys.stderr)
        return 1
    print(json.dumps(asdict(person)) if args.json else format_person(person))
    return 0


# --- enrolling a person -----------------------------------------------------------------


async def _enroll(args: argparse.Namespace) -> int:
    if args.balance_fen is not None and args.insurance is not Insurance.EMPLOYEE:
        raise UsageError("--balance-fen: only an employee-insured person has a personal account")
    target = cluster_target(args)
    data_dir = target.cluster_dir
    before = _known(data_dir, args.region, args.psn)
    async with operator_client(target, "person-enroll") as client:
        enrolment = EnrollPerson(args.psn, args.insurance, args.balance_fen or 0, args.secret)
        await client.send(region_address(args.region), enrolment)
    if before is False:  # no file to watch: a cluster whose files are elsewhere
        print(f"person {args.psn}: enrolment sent to {args.region} (no file here to confirm it)")
        return 0
    person = await _recorded(data_dir, args.region, args.psn, args.insurance, args.timeout)
    if person is None:
        print(
            f"gongji person enroll: region {args.region} has not recorded {args.psn} as "
            f"{args.insurance} within {args.timeout:g} s",
            file=sys.stderr,
        )
        return REFUSED
    if args.json:
        print(json.dumps({"enrolled": before is None, **asdict(person)}))
    else:
        print("enrolled" if before is None else "known already (the balance is untouched)")
        print(format_person(person))
    return 0


def _known(data_dir: Path, region: str, psn_no: str) -> PersonRecord | bool | None:
    """The person as recorded before, None when unknown, False when there is no file."""
    try:
        return read_person(data_dir, region, psn_no)
    except FileNotFoundError:
        return False


async def _recorded(
    data_dir: Path, region: str, psn_no: str, insurance: Insurance, timeout_s: float
) -> PersonRecord | None:
    """The person once the region's file shows them so insured (the region commits the
    enrolment before it acknowledges it), or None after ``timeout_s``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        with contextlib.suppress(sqlite3.Error):  # busy, or mid-checkpoint: look again
            person = read_person(data_dir, region, psn_no)
            if person is not None and person.insurance == insurance.value:
                return person
        if loop.time() >= deadline:
            return None
        await asyncio.sleep(ENROLL_POLL_S)


def run(args: argparse.Namespace) -> int:
    if args.action == "show":
        return _show(args)
    if args.action in ("register-away", "revoke-away"):
        return asyncio.run(run_registration(args))
    return asyncio.run(_enroll(args))
