"""``gongji bind``: a co-payer binds a relative for family mutual aid (家庭共济), through
his or her own region, and the directory's decision is printed."""

from __future__ import annotations

import argparse
import asyncio

from contracts.operations import RequestBinding
from contracts.vocabulary import Relationship
from gongji.commands.options import cluster_target
from gongji.commands.requesting import (
    add_request_options,
    new_id,
    no_answer,
    operator_client,
    print_binding_outcome,
    word_of,
)
from gongji.commands.wallet import add_payer_options


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "bind",
        help="bind a relative to a co-payer and wait for the directory's decision",
        description="Ask the co-payer's region, identity checked, to bind the beneficiary in"
        " the national directory. Prints the binding id: exit 0 when recorded, 1 when"
        " refused (the reason code and detail are printed).",
    )
    add_payer_options(parser)
    parser.add_argument(
        "--relationship",
        type=word_of(Relationship),
        required=True,
        help=f"the beneficiary's relationship to the co-payer: {', '.join(Relationship)}",
    )
    add_request_options(parser)


async def _bind(args: argparse.Namespace) -> int:
    async with operator_client(cluster_target(args), "bind") as client:
        request = RequestBinding(
            new_id("bind"),
            args.copayer,
            args.secret,
            args.beneficiary,
            args.beneficiary_region,
            args.relationship,
            client.address,
        )
        try:
            outcome = await client.bind(args.copayer_region, request, timeout_s=args.timeout)
        except TimeoutError as error:
            return no_answer("bind", error)
    return print_binding_outcome("recorded", outcome, args.json)


def run(args: argparse.Namespace) -> int:
    return asyncio.run(_bind(args))
