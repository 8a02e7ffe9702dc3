"""``gongji bill submit``: send one bill to the beneficiary's region and print its outcome."""

from __future__ import annotations

import argparse
import asyncio

from contracts.operations import SubmitBill
from gongji.commands.away import add_away_bill_action, run_away_bill
from gongji.commands.options import cluster_target, region_code
from gongji.commands.requesting import (
    add_request_options,
    amount_fen,
    identifier,
    new_id,
    no_answer,
    operator_client,
    print_outcome,
)


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("bill", help="submit a bill to a running cluster")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    submit = actions.add_parser(
        "submit",
        help="submit one bill and wait for its outcome",
        description="Send a bill's out-of-pocket share to the beneficiary's region, as the"
        " cluster's operator, and print its outcome: exit 0 when paid (COMMITTED), 1 when"
        " refused (the reason code and detail are printed).",
    )
    submit.add_argument(
        "--region", type=region_code, required=True, metavar="CODE", help="the beneficiary's"
    )
    submit.add_argument("--beneficiary", type=identifier, required=True, metavar="PSN")
    submit.add_argument("--amount-fen", type=amount_fen, required=True, metavar="N")
    submit.add_argument(
        "--transfer-id",
        type=identifier,
        metavar="ID",
        help="the bill's transfer id (default: a new one); the same id is the same bill",
    )
    add_request_options(submit)
    add_away_bill_action(actions)


async def _submit(args: argparse.Namespace) -> int:
    async with operator_client(cluster_target(args), "bill-submit") as client:
        bill = SubmitBill(
            args.transfer_id or new_id("bill"), args.beneficiary, args.amount_fen, client.address
        )
        try:
            outcome = await client.submit(args.region, bill, timeout_s=args.timeout)
        except TimeoutError as error:
            return no_answer("bill submit", error)
    return print_outcome("bill", outcome, args.json)


def run(args: argparse.Namespace) -> int:
    if args.action == "submit-away":
        return asyncio.run(run_away_bill(args))
    return asyncio.run(_submit(args))
