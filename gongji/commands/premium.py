"""``gongji premium pay``: a co-payer pays a resident relative's yearly premium
(代缴居民医保) from his or her personal account, and the outcome is printed."""

from __future__ import annotations

import argparse
import asyncio
import datetime

from contracts.operations import RequestPremiumPayment
from gongji.commands.options import cluster_target
from gongji.commands.requesting import (
    add_request_options,
    identifier,
    new_id,
    no_answer,
    operator_client,
    print_outcome,
    year,
)
from gongji.commands.wallet import add_payer_options


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("premium", help="premium payments on a running cluster")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    pay = actions.add_parser(
        "pay",
        help="pay a resident relative's premium and wait for the outcome",
        description="Ask the co-payer's region, identity checked, to pay the beneficiary's"
        " resident premium of --year (the amount is the beneficiary's region's). Exit 0 when"
        " committed, 1 when refused.",
    )
    add_payer_options(pay)
    pay.add_argument(
        "--year",
        type=year,
        default=datetime.date.today().year,
        help="the premium year (default: %(default)s)",
    )
    pay.add_argument("--transfer-id", type=identifier, metavar="ID", help="default: a new one")
    add_request_options(pay)


async def _pay(args: argparse.Namespace) -> int:
    async with operator_client(cluster_target(args), "premium-pay") as client:
        request = RequestPremiumPayment(
            args.transfer_id or new_id("premium"),
            args.copayer,
            args.secret,
            args.beneficiary,
            args.beneficiary_region,
            args.year,
            client.address,
        )
        try:
            outcome = await client.request(
                args.copayer_region, request, request.transfer_id, timeout_s=args.timeout
            )
        except TimeoutError as error:
            return no_answer("premium pay", error)
    return print_outcome("premium payment", outcome, args.json)


def run(args: argparse.Namespace) -> int:
    return asyncio.run(_pay(args))
