"""What the one-request commands share (``person``, ``bind``, ``unbind``, ``bill``,
``wallet``, ``premium``): flag types with one-line errors, the operator's client, and
how an outcome is printed and turned into an exit status.

Exit statuses: 0 the request was carried out (committed, accepted), 1 it was refused
(the reason code and detail are printed) or no answer came, 2 a usage error.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict
from enum import StrEnum
from typing import TypeVar

from broker.connection import connect
from broker.topology import Topology
from contracts.identifiers import IDENTIFIER_CHARACTERS, MAX_IDENTIFIER_LENGTH, is_identifier
from contracts.operations import (
    MAX_AMOUNT_FEN,
    MAX_SECRET_LENGTH,
    MAX_YEAR,
    BillOutcome,
    BindingOutcome,
    Operation,
)
from gongji.client import BillClient
from gongji.cluster.local import OPERATOR
from gongji.commands.options import ClusterTarget, add_cluster_options, cluster_target

E = TypeVar("E", bound=StrEnum)

DEFAULT_TIMEOUT_S = 30.0
REFUSED = 1


def identifier(value: str) -> str:
    """A person number, transfer, binding or request id (``contracts.identifiers``)."""
    if not is_identifier(value):
        raise argparse.ArgumentTypeError(
            f"{value!r} is not an identifier (1 to {MAX_IDENTIFIER_LENGTH} of "
            f"{IDENTIFIER_CHARACTERS})"
        )
    return value


def word_of(vocabulary: type[E]) -> Callable[[str], E]:
    """An argument type for one word of ``vocabulary`` (``Insurance``, ``Relationship``)."""
    words = ", ".join(vocabulary)

    def parse(value: str) -> E:
        try:
            return vocabulary(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{value!r} is not one of {words}") from None

    return parse


def amount_fen(value: str) -> int:
    """A positive whole number of fen, at most the wire's bound."""
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number of fen") from None
    if not 0 < number <= MAX_AMOUNT_FEN:
        raise argparse.ArgumentTypeError(f"{value!r} must be from 1 to {MAX_AMOUNT_FEN} fen")
    return number


def secret(value: str) -> str:
    """The identity check's stand-in: printable, at most the wire's bound."""
    if len(value) > MAX_SECRET_LENGTH:
        raise argparse.ArgumentTypeError(f"a secret has at most {MAX_SECRET_LENGTH} characters")
    if not value.isprintable():
        raise argparse.ArgumentTypeError("a secret has no control characters")
    return value


def year(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a year") from None
    if not 1 <= number <= MAX_YEAR:
        raise argparse.ArgumentTypeError(f"{value!r} is not a year (1..{MAX_YEAR})")
    return number


def timeout_s(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number of seconds") from None
    if not 0 < number <= 3600:
        raise argparse.ArgumentTypeError(f"{value!r} must be more than 0 and at most 3600 s")
    return number


def new_id(kind: str) -> str:
    """A fresh id of a request the operator makes (``cli-bill-1a2b3c4d5e6f``)."""
    return f"cli-{kind}-{uuid.uuid4().hex[:12]}"


def add_request_options(parser: argparse.ArgumentParser) -> None:
    """``--json``, ``--timeout`` and the cluster options of a command that waits for an answer."""
    parser.add_argument("--json", action="store_true", help="print the outcome as one JSON object")
    parser.add_argument(
        "--timeout",
        type=timeout_s,
        default=DEFAULT_TIMEOUT_S,
        metavar="S",
        help="give up waiting for the outcome after S seconds (exit 1; default: %(default)g)",
    )
    add_cluster_options(parser)


@contextlib.asynccontextmanager
async def operator_client(target: ClusterTarget, purpose: str) -> AsyncIterator[BillClient]:
    """A client connected as the cluster's operator; its queue is named after the
    operator (the services answer only the sender itself)."""
    connection = await connect(target.url_for(OPERATOR), name=f"gongji-{purpose}")
    try:
        client = await BillClient.open(connection, Topology(namespace=target.namespace))
        try:
            yield client
        finally:
            await client.close()
    finally:
        await connection.close()


async def request_and_print(
    args: argparse.Namespace,
    *,
    region: str,
    build: Callable[[str], Operation],
    transfer_id: str,
    command: str,
    what: str,
) -> int:
    """Send one request with a transfer id to ``region`` as the operator, wait for its
    outcome and print it. ``build`` makes the request for the client's reply address."""
    async with operator_client(cluster_target(args), command.replace(" ", "-")) as client:
        request = build(client.address)
        try:
            outcome = await client.request(region, request, transfer_id, timeout_s=args.timeout)
        except TimeoutError as error:
            return no_answer(command, error)
    return print_outcome(what, outcome, args.json)


def print_outcome(what: str, outcome: BillOutcome, as_json: bool) -> int:
    """Print a request's outcome; 0 when carried out, 1 when refused."""
    if as_json:
        fields = asdict(outcome)
        fields["reason"] = None if outcome.reason is None else outcome.reason.value
        print(json.dumps({"outcome": outcome.outcome, **fields}))
    elif outcome.reason is None:
        print(f"{what} {outcome.transfer_id}: {outcome.outcome}; {_moved(outcome)}")
    else:
        detail = f": {outcome.detail}" if outcome.detail else ""
        moved = f" ({_moved(outcome)})" if outcome.own_paid_fen or outcome.wallet_paid_fen else ""
        print(f"{what} {outcome.transfer_id}: refused {outcome.reason.value}{detail}{moved}")
    return 0 if outcome.reason is None else REFUSED


def _moved(outcome: BillOutcome) -> str:
    parts = []
    if outcome.paid_fen or not (outcome.own_paid_fen or outcome.wallet_paid_fen):
        source = f" from {outcome.payer_region}" if outcome.payer_region else ""
        parts.append(f"{outcome.paid_fen} fen{source}")
    if outcome.own_paid_fen:
        parts.append(f"{outcome.own_paid_fen} fen from the own account")
    if outcome.wallet_paid_fen:
        parts.append(f"{outcome.wallet_paid_fen} fen from the wallet")
    left = f", {outcome.remaining_fen} fen left to pay" if outcome.remaining_fen else ""
    return " + ".join(parts) + left


def print_binding_outcome(done: str, outcome: BindingOutcome, as_json: bool) -> int:
    """Print a binding request's (or revocation's) outcome, ``done`` saying what was
    accepted (recorded, revoked); 0 when accepted, 1 when refused."""
    if as_json:
        fields = asdict(outcome)
        fields["reason"] = None if outcome.reason is None else outcome.reason.value
        print(json.dumps({"outcome": outcome.outcome, **fields}))
    elif outcome.reason is None:
        print(f"binding {outcome.binding_id}: {done} (request {outcome.request_id})")
    else:
        detail = f": {outcome.detail}" if outcome.detail else ""
        print(f"binding: refused {outcome.reason.value}{detail} (request {outcome.request_id})")
    return 0 if outcome.reason is None else REFUSED


def no_answer(what: str, error: TimeoutError) -> int:
    """A request that may still be carried out: say so, exit 1."""
    print(
        f"gongji {what}: {error}; it may still be carried out (same id: send it again)",
        file=sys.stderr,
    )
    return REFUSED
