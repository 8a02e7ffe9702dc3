"""``gongji person register-away`` / ``revoke-away``: a beneficiary registers (备案) care
away from home through the insured region, or revokes a registration; ``gongji bill
submit-away``: a hospital's bill at the region of care.

Dates are calendar days in China Standard Time: a registration runs from the start of
``--from`` (default: today) to the end of ``--until`` (default: no end).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from dataclasses import asdict

from contracts.operations import (
    AwayRegistrationOutcome,
    RequestAwayRegistration,
    RevokeAwayRegistration,
    SubmitAwayBill,
)
from gongji.commands.options import cluster_target, region_code
from gongji.commands.requesting import (
    REFUSED,
    add_request_options,
    amount_fen,
    identifier,
    new_id,
    no_answer,
    operator_client,
    request_and_print,
    secret,
)

CHINA = dt.timezone(dt.timedelta(hours=8))


def day(value: str) -> dt.date:
    """A calendar day, ``YYYY-MM-DD``."""
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a day (YYYY-MM-DD)") from None


def day_start_ms(date: dt.date) -> int:
    """The first instant of ``date`` in China Standard Time, in epoch milliseconds."""
    start = dt.datetime(date.year, date.month, date.day, tzinfo=CHINA)
    return int(start.timestamp() * 1000)


def china_day(at_ms: int) -> str:
    """The China calendar day of an instant, ``YYYY-MM-DD``."""
    return dt.datetime.fromtimestamp(at_ms / 1000, CHINA).date().isoformat()


def period_ms(first: dt.date | None, last: dt.date | None) -> tuple[int, int]:
    """(from_ms, until_ms) of a stay from ``first`` (None: today) to the end of ``last``
    (None: no end, 0)."""
    first = first or dt.datetime.now(CHINA).date()
    until = 0 if last is None else day_start_ms(last + dt.timedelta(days=1))
    return day_start_ms(first), until


def add_registration_actions(actions: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The ``register-away`` and ``revoke-away`` actions of ``gongji person``."""
    register = actions.add_parser(
        "register-away",
        help="register care away from home (异地就医备案) and wait for the directory's decision",
        description="Ask the insured region, identity checked, to register care in another"
        " region; the national directory refuses a region of care that is unknown or does"
        " not settle such bills directly. Prints the registration id: exit 0 when"
        " recorded, 1 when refused.",
    )
    _person_options(register)
    register.add_argument("--region-of-care", type=region_code, required=True, metavar="CODE")
    register.add_argument("--from", dest="first", type=day, metavar="DATE", help="default: today")
    register.add_argument("--until", dest="last", type=day, metavar="DATE", help="last day")
    add_request_options(register)
    revoke = actions.add_parser(
        "revoke-away",
        help="revoke a registration of care away from home",
        description="Ask the insured region, identity checked, to revoke a registration.",
    )
    _person_options(revoke)
    revoke.add_argument("--registration", type=identifier, required=True, metavar="ID")
    add_request_options(revoke)


def _person_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--region", type=region_code, required=True, metavar="CODE", help="the insured region"
    )
    parser.add_argument("--psn", type=identifier, required=True, help="the person number")
    parser.add_argument("--secret", type=secret, default="", help="the identity check's secret")


async def run_registration(args: argparse.Namespace) -> int:
    async with operator_client(cluster_target(args), "person-away") as client:
        request: RequestAwayRegistration | RevokeAwayRegistration
        if args.action == "register-away":
            from_ms, until_ms = period_ms(args.first, args.last)
            request = RequestAwayRegistration(
                new_id("away"),
                args.psn,
                args.secret,
                args.region_of_care,
                from_ms,
                until_ms,
                client.address,
            )
        else:
            request = RevokeAwayRegistration(
                new_id("unaway"), args.psn, args.secret, args.registration, client.address
            )
        try:
            outcome = await client.register_away(args.region, request, timeout_s=args.timeout)
        except TimeoutError as error:
            return no_answer(f"person {args.action}", error)
    done = "recorded" if args.action == "register-away" else "revoked"
    return print_registration_outcome(done, outcome, args.json)


def print_registration_outcome(done: str, outcome: AwayRegistrationOutcome, as_json: bool) -> int:
    if as_json:
        fields = asdict(outcome)
        fields["reason"] = None if outcome.reason is None else outcome.reason.value
        print(json.dumps({"outcome": outcome.outcome, **fields}))
    elif outcome.reason is None:
        print(f"registration {outcome.registration_id}: {done} (request {outcome.request_id})")
    else:
        detail = f": {outcome.detail}" if outcome.detail else ""
        print(
            f"registration: refused {outcome.reason.value}{detail} (request {outcome.request_id})"
        )
    return 0 if outcome.reason is None else REFUSED


def add_away_bill_action(actions: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The ``submit-away`` action of ``gongji bill``."""
    submit = actions.add_parser(
        "submit-away",
        help="submit a bill at the region of care (care away from home) and wait",
        description="Send a bill's out-of-pocket share to the region of care for a person"
        " insured elsewhere who registered the stay; its catalogue says what personal"
        " accounts may pay, the insured region's policy the order. Exit 0 when paid, 1"
        " when refused.",
    )
    submit.add_argument("--region-of-care", type=region_code, required=True, metavar="CODE")
    submit.add_argument("--insured-region", type=region_code, required=True, metavar="CODE")
    submit.add_argument("--beneficiary", type=identifier, required=True, metavar="PSN")
    submit.add_argument("--amount-fen", type=amount_fen, required=True, metavar="N")
    submit.add_argument("--transfer-id", type=identifier, metavar="ID", help="default: a new one")
    add_request_options(submit)


async def run_away_bill(args: argparse.Namespace) -> int:
    transfer_id = args.transfer_id or new_id("away-bill")
    return await request_and_print(
        args,
        region=args.region_of_care,
        build=lambda reply_to: SubmitAwayBill(
            transfer_id, args.beneficiary, args.insured_region, args.amount_fen, reply_to
        ),
        transfer_id=transfer_id,
        command="bill submit-away",
        what="bill",
    )
