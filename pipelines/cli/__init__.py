"""The ``nowcast`` command line.

Each subcommand lives in its own module of this package and registers itself in
:data:`COMMANDS` with ``@COMMANDS.register("name")`` on a function
``(subparsers) -> None`` that adds its parser and sets ``func`` (the handler taking the
parsed ``argparse.Namespace`` and returning an exit code). The CLI is the output layer:
handlers may print results for the user; library code logs.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys
import traceback
import warnings
from collections.abc import Callable, Sequence

from pipelines.cli._errors import environment_message
from simvp_model.allocator import tune_glibc_malloc
from simvp_model.registry import Registry

AddCommand = Callable[[argparse._SubParsersAction], None]
COMMANDS: Registry[AddCommand] = Registry("command")


def _load_commands() -> None:
    """Import every module of this package so each registers its subcommand."""
    for info in pkgutil.iter_modules(__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"{__name__}.{info.name}")


def build_parser() -> argparse.ArgumentParser:
    """The full ``nowcast`` parser with every registered subcommand."""
    if not len(COMMANDS):
        _load_commands()
    parser = argparse.ArgumentParser(
        prog="nowcast", description="SimVP nowcasting: ingest, train, forecast, verify."
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="debug logging; tracebacks with errors"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        COMMANDS.get(name)(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``nowcast`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    tune_glibc_malloc()  # training/inference steps reuse their heap instead of page-faulting
    try:
        with warnings.catch_warnings():  # restores the caller's handler afterwards
            warnings.showwarning = _log_warning  # library warnings: one debug line, not raw text
            return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError) as error:
        # Bad input from the user: one clear line, no traceback.
        return _fail(args, str(error), 2)
    except OSError as error:
        # The environment (disk full, permissions, a file where a directory belongs, an
        # unreachable scheduler): one actionable line; the traceback with -v.
        return _fail(args, environment_message(error), 1)


def _log_warning(message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ANN001
    """Show a Python warning as one debug log line (``-v`` shows it) instead of raw text.

    Library warnings (numpy ``RuntimeWarning`` on hostile values, pandas hints, xarray's
    ``SerializationWarning``) are not the user's to act on: what matters reaches them as an
    error naming the file, or in the command's summary.
    """
    text = " ".join(str(message).split())
    logging.getLogger("py.warnings").debug(
        "%s: %s (%s:%s)", category.__name__, text, filename, lineno
    )


def _fail(args: argparse.Namespace, message: str, code: int) -> int:
    """Print ``message`` as one line (after the traceback with ``-v``) and return ``code``."""
    if args.verbose:
        traceback.print_exc()
    print(f"nowcast {args.command}: error: {message}", file=sys.stderr)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
