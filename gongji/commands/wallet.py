"""``gongji wallet transfer``: move money from a co-payer's personal account into a
relative's medical-insurance wallet (医保钱包), and print the outcome."""

from __future__ import annotations

import argparse
import asyncio

from contracts.operations import RequestWalletTransfer
from gongji.commands.options import region_code
from gongji.commands.requesting import (
    add_request_options,
    amount_fen,
    identifier,
    new_id,
    request_and_print,
    secret,
)


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("wallet", help="wallet transfers on a running cluster")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    transfer = actions.add_parser(
        "transfer",
        help="move money into a relative's wallet and wait for the outcome",
        description="Ask the co-payer's region, identity checked, to move --amount-fen from"
        " the co-payer's personal account into the beneficiary's wallet (in full or not at"
        " all). Exit 0 when committed, 1 when refused.",
    )
    add_payer_options(transfer)
    transfer.add_argument("--amount-fen", type=amount_fen, required=True, metavar="N")
    transfer.add_argument("--transfer-id", type=identifier, metavar="ID", help="default: a new one")
    add_request_options(transfer)


def add_payer_options(parser: argparse.ArgumentParser) -> None:
    """Who pays (and proves it) and for whom: the flags of a transfer with a known payer."""
    parser.add_argument("--copayer", type=identifier, required=True, metavar="PSN")
    parser.add_argument("--copayer-region", type=region_code, required=True, metavar="CODE")
    parser.add_argument("--secret", type=secret, required=True, help="the co-payer's")
    parser.add_argument("--beneficiary", type=identifier, required=True, metavar="PSN")
    parser.add_argument("--beneficiary-region", type=region_code, required=True, metavar="CODE")


async def _transfer(args: argparse.Namespace) -> int:
    transfer_id = args.transfer_id or new_id("wallet")
    return await request_and_print(
        args,
        region=args.copayer_region,
        build=lambda reply_to: RequestWalletTransfer(
            transfer_id,
            args.copayer,
            args.secret,
            args.beneficiary,
            args.beneficiary_region,
            args.amount_fen,
            reply_to,
        ),
        transfer_id=transfer_id,
        command="wallet transfer",
        what="wallet transfer",
    )


def run(args: argparse.Namespace) -> int:
    return asyncio.run(_transfer(args))
