"""The ``weightdecay`` command. Each subcommand lives in its own module with a ``register(subparsers)``
function; this file only dispatches. Bad input, whether argparse finds it (a missing or malformed option) or
the library does (:class:`weightdecay.errors.UserError`), prints one line and exits with status 2."""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import NoReturn

from weightdecay.errors import UserError

# Modules under weightdecay.cli, each adding its subcommands.
COMMAND_MODULES: list[str] = ["sweep", "rules", "suggest", "tasks", "transfer", "dashboard", "monitor"]


class OneLineErrorParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose own errors are one line and exit status 2, like a UserError; the subcommands'
    parsers are of the same class (``add_subparsers`` makes them so), whichever module adds them."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    from weightdecay import __version__

    parser = OneLineErrorParser(
        prog="weightdecay",
        description="Weight decay that does what you believe it does: conventions, rules and lr×wd sweeps.",
    )
    parser.add_argument("--version", action="version", version=f"weightdecay {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"weightdecay.cli.{name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except UserError as exc:
        print(f"weightdecay {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"weightdecay {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
