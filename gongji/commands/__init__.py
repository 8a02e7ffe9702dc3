"""Subcommands of ``gongji``: each module has ``register(subparsers)`` and ``run(args)``.

To add a command, write a module here and add its name to ``COMMANDS``.
"""

COMMANDS: tuple[str, ...] = (
    "clearinghouse",
    "region",
    "province",
    "demo",
    "admin",
    "report",
    "cluster",
    "compose",
    "logs",
    "load",
    "sim",
    "audit",
    "person",
    "bind",
    "unbind",
    "bill",
    "wallet",
    "premium",
    "transfer",
)
