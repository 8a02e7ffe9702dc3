"""``gongji premium pay``: a co-payer pays a resident relative's yearly premium
(代缴居民医保) from his or her personal account, and the outcome is printed."""

from __future__ import annotations

import argparse
import asyncio
import datetime

from contracts.operations import RequestPremiumPayment
from gongji.commands.requesting import (
    add_request_options,
    identifier,
    new_id,
    request_and_print,
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
    transfer_id = args.transfer_id or new_id("premium")
    return await request_and_print(
        args,
        region=args.copayer_region,
        build=lambda reply_to: RequestPremiumPayment(
            transfer_id,
            args.copayer,
            args.secret,
            args.beneficiary,
            args.beneficiary_region,
            args.year,
            reply_to,
        ),
        transfer_id=transfer_id,
        command="premium pay",
        what="premium payment",
    )


def run(args: argparse.Namespace) -> int:
    return asyncio.run(_pay(args))
