"""``gongji unbind``: a co-payer revokes one of his or her bindings, through his or her
own region, and the directory's decision is printed."""

from __future__ import annotations

import argparse
import asyncio

from contracts.operations import RevokeBinding
from gongji.commands.options import cluster_target, region_code
from gongji.commands.requesting import (
    add_request_options,
    identifier,
    new_id,
    no_answer,
    operator_client,
    print_binding_outcome,
    secret,
)


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "unbind",
        help="revoke a binding and wait for the directory's decision",
        description="Ask the co-payer's region, identity checked, to withdraw the binding"
        " from the national directory. Exit 0 when withdrawn, 1 when refused.",
    )
    parser.add_argument("--binding-id", type=identifier, required=True, metavar="ID")
    parser.add_argument("--copayer", type=identifier, required=True, metavar="PSN")
    parser.add_argument("--copayer-region", type=region_code, required=True, metavar="CODE")
    parser.add_argument("--secret", type=secret, required=True, help="the co-payer's")
    add_request_options(parser)


async def _unbind(args: argparse.Namespace) -> int:
    async with operator_client(cluster_target(args), "unbind") as client:
        request = RevokeBinding(
            new_id("unbind"), args.copayer, args.secret, args.binding_id, client.address
        )
        try:
            outcome = await client.bind(args.copayer_region, request, timeout_s=args.timeout)
        except TimeoutError as error:
            return no_answer("unbind", error)
    return print_binding_outcome("revoked", outcome, args.json)


def run(args: argparse.Namespace) -> int:
    return asyncio.run(_unbind(args))
