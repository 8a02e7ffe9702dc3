"""The ``gongji`` command: run a service, the demo, or the tools around them."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from types import ModuleType

from broker.connection import BrokerUnavailable
from broker.publisher import Unroutable
from gongji.cluster.local import ClusterError
from gongji.commands import COMMANDS
from gongji.commands.options import UsageError, namespace_of
from gongji.commands.serve import StartupError


def _modules() -> dict[str, ModuleType]:
    return {name: importlib.import_module(f"gongji.commands.{name}") for name in COMMANDS}


def build_parser(modules: dict[str, ModuleType] | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gongji",
        description="Cross-province family mutual aid of medical-insurance personal accounts.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in (modules or _modules()).values():
        module.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    modules = _modules()
    args = build_parser(modules).parse_args(argv)
    try:
        # Given on the command line or by $GONGJI_NAMESPACE: refused before anything runs.
        if getattr(args, "namespace", None) is not None:
            namespace_of(args.namespace)
        status: int = modules[args.command].run(args)
        return status
    except UsageError as error:
        print(f"gongji: {error}", file=sys.stderr)
        return 2
    except (BrokerUnavailable, ClusterError, StartupError) as error:
        print(f"gongji: {error}", file=sys.stderr)
        return 1
    except Unroutable as error:
        namespace = getattr(args, "namespace", None)
        where = f"namespace {namespace!r}" if namespace else "that namespace"
        print(f"gongji: {error}: is a cluster running in {where}?", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
