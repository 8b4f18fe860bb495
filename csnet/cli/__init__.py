"""The ``csnet`` command. Each sub-command lives in a module of this package that defines
``add_parser(subparsers)``; the parser it registers sets ``func`` to a callable taking the parsed
arguments and returning an exit status."""
from __future__ import annotations

import argparse
import importlib
import sys

# Explicit registry: command module -> the sub-commands it registers.
COMMAND_MODULES = (
    "csnet.cli.data",    # corpus, degrade
    "csnet.cli.models",  # models
    "csnet.cli.train",   # train, eval, restore, runs
    "csnet.cli.bench",   # bench
    "csnet.cli.suite",   # suite
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="csnet", description="CSNet analysis and ablation suite: data, models, training, studies."
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except BrokenPipeError:  # `csnet corpus | head`: the reader left; not an error of ours
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
