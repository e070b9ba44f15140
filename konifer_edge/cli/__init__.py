"""`konifer-edge`: the operator's entry points, one module per group of commands.

``server`` (serve, migrate, check-config), ``sweep`` and ``access`` (sign, keys) each register
their commands on the one parser built here; ``common`` loads the configuration and its database.
"""

from __future__ import annotations

import argparse
from importlib.metadata import PackageNotFoundError, version

from konifer_edge.cli import access, server, sweep
from konifer_edge.observability.logs import configure_logging


def _version() -> str:
    try:
        return version("konifer-edge")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="konifer-edge", description="An image CDN origin for the Konifer asset API")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", required=True)
    server.add_commands(commands)  # serve, migrate, check-config
    sweep.add_commands(commands)  # sweep
    access.add_commands(commands)  # sign, keys create | list | revoke
    return parser


def main(argv: list[str] | None = None) -> int:
    configure_logging()
    args = build_parser().parse_args(argv)
    result: int = args.handler(args)
    return result
