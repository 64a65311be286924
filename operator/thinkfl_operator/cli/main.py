"""``thinkfl``: demo, diagnose, evaluate and bench from the command line.

A user error (missing folder, malformed file, bad time) is one line on stderr naming the file or
value, and exit code 2; never a traceback. The commands' module (engines, pandas, openai) is
imported only after the arguments are read: ``thinkfl --help`` answers at once.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import sys
from pathlib import Path

from thinkfl_operator.cli.parser import EXIT_USER_ERROR, build_parser
from thinkfl_operator.core.errors import BackendError, NoEvidence, UserInputError
from thinkfl_operator.incident.spec import HEX_ID_PATTERN

__all__ = ["EXIT_USER_ERROR", "build_parser", "check_arguments", "main"]

#: Exit code after Ctrl-C (128 + SIGINT).
EXIT_INTERRUPTED = 130

#: Milliseconds pyarrow's allocator (mimalloc) keeps freed pages before giving them back to
#: the OS (by default far sooner). Loading a day frees and allocates hundreds of MiB in a second;
#: given back at once, every page is faulted in again: 2023-01-29's evaluation faulted ~45k
#: pages, ~16k fewer with this (sys CPU ~60 ms less a run, peak RSS ~100-250 MiB more). Only
#: for the commands that run once and end (``DELAYED_PURGE``): the operator (``run``) and its
#: workers live on and give memory back as mimalloc does by default.
ALLOCATOR_PURGE_MS = 5000
DELAYED_PURGE = frozenset({"demo", "diagnose", "evaluate", "bench"})

_TRACE_ID = re.compile(HEX_ID_PATTERN)


def check_arguments(args: argparse.Namespace) -> None:
    """Every flag checked before any work: ``UserInputError`` naming the flag (a diagnosis is
    never run only to fail at the end on a path it cannot write)."""
    window = getattr(args, "window", None)
    if window is not None and not (window > 0 and math.isfinite(window)):
        raise UserInputError(f"--window {window:g}: give the seconds after --time to search, above 0")
    trace_id = (getattr(args, "trace_id", "") or "").strip()
    if trace_id and not _TRACE_ID.match(trace_id):
        raise UserInputError(f"--trace-id {trace_id!r}: a trace ID is 1 to 32 hexadecimal digits")
    target = getattr(args, "json", None)
    if target is not None:
        folder = Path(target).parent
        if not folder.is_dir():
            raise UserInputError(f"--json {target}: no such folder {folder}")
        if not os.access(folder, os.W_OK):
            raise UserInputError(f"--json {target}: the folder {folder} is not writable")


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(argv)
    except KeyboardInterrupt:  # Ctrl-C: a line, not a traceback; 128 + SIGINT, as shells report it
        sys.stderr.write("thinkfl: interrupted\n")
        return EXIT_INTERRUPTED


def _main(argv: list[str] | None) -> int:
    args = build_parser().parse_args(argv)
    if args.command in DELAYED_PURGE:  # read by mimalloc when pyarrow loads: before the imports
        os.environ.setdefault("MIMALLOC_PURGE_DELAY", str(ALLOCATOR_PURGE_MS))  # the user's wins
    from thinkfl_operator.cli import commands  # the heavy imports, once the arguments are read
    from thinkfl_operator.config.logs import configure_logging
    from thinkfl_operator.config.settings import get_settings

    try:
        check_arguments(args)
        settings = commands.with_overrides(get_settings(), args)
    except UserInputError as exc:
        sys.stderr.write(f"thinkfl: error: {exc}\n")
        return EXIT_USER_ERROR
    configure_logging(settings.log_level, settings.log_format)
    from thinkfl_operator.observability.otel import configure_tracing

    configure_tracing()  # spans exported only when OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT is set
    try:
        return int(commands.COMMANDS[args.command](args, settings))
    except UserInputError as exc:
        sys.stderr.write(f"thinkfl: error: {exc}\n")
        return EXIT_USER_ERROR
    except NoEvidence as exc:
        sys.stderr.write(f"thinkfl: nothing to diagnose: {exc}\n")
        return 1
    except BackendError as exc:
        sys.stderr.write(f"thinkfl: {exc}\n")
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
