"""The ``lmrec`` command line: a thin layer over the library.

Each subcommand parses its flags, validates everything it can before doing any
work (inputs readable, outputs writable, model name and parameters valid), calls
one library function, and writes results. Errors in the user's input end the
process with exit code 2 and a one-paragraph message, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from lmrec import _threads
from lmrec._version import __version__
from lmrec.errors import LmrecError

EXIT_USAGE = 2


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand registered."""
    from lmrec.cli import (
        data_cmds,
        eval_cmds,
        explain_cmds,
        index_cmds,
        model_cmds,
        privacy_cmds,
        ranker_cmds,
        scale_cmds,
        serve_cmds,
    )

    parser = argparse.ArgumentParser(
        prog="lmrec",
        description="Recommender systems from interaction logs and item text: "
        "load, split, train, recommend, evaluate and compare.",
    )
    parser.add_argument("--version", action="version", version=f"lmrec {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    data_cmds.register(sub)
    model_cmds.register(sub)
    ranker_cmds.register(sub)
    eval_cmds.register(sub)
    explain_cmds.register(sub)
    serve_cmds.register(sub)
    scale_cmds.register(sub)
    index_cmds.register(sub)
    privacy_cmds.register(sub)
    return parser


def one_line(text: str) -> str:
    """``text`` on one line: its lines joined by single spaces."""
    return " ".join(part.strip() for part in str(text).splitlines() if part.strip())


class _WarningPrinter:
    """``warnings.showwarning`` for the CLI: each distinct message once, on one line.

    Python's default shows the warning's source file and line (internal code the
    user cannot act on) and repeats a message raised from two places.
    """

    def __init__(self, command: str) -> None:
        self.command = command
        self.seen: set[str] = set()

    def __call__(
        self,
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: object = None,
        line: str | None = None,
    ) -> None:
        text = one_line(str(message))
        if text in self.seen:
            return
        self.seen.add(text)
        print(f"lmrec {self.command}: warning: {text}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the process exit code (0 success, 2 bad input)."""
    import warnings

    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # the exact command, for reports
    from lmrec.data.vocabulary import cli_vocabulary

    with warnings.catch_warnings():
        warnings.simplefilter("always")  # every warning reaches the printer, which dedupes
        warnings.showwarning = _WarningPrinter(args.command)
        try:
            _threads.configure()  # OpenMP settings before any command loads torch/numba/implicit
            with cli_vocabulary():  # data errors name --flags, not library parameters
                return int(args.func(args) or 0)
        except (
            LmrecError,
            FileNotFoundError,
            FileExistsError,
            PermissionError,
            IsADirectoryError,
            NotADirectoryError,
        ) as e:
            msg = (
                str(e)
                if not isinstance(e, OSError) or not e.filename
                else f"{e.strerror}: {e.filename}"
            )
            print(f"lmrec {args.command}: error: {one_line(msg)}", file=sys.stderr)
            return EXIT_USAGE
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            return 130


def entry() -> None:
    """Console-script entry point."""
    sys.exit(main())
