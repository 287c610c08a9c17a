"""Exit codes, the usage error, the stop request and summary output: what every command shares.

The CLI parses and maps errors to exit codes; commands and the runner use these names. Keeping
them here lets imports run one way: `cli` → `commands` → `runner` → `output`.
"""

from __future__ import annotations

import argparse
import json
import threading
from typing import Any

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_LOCKED, EXIT_INTERRUPTED = 0, 1, 2, 3, 5


class UsageError(Exception):
    exit_code = EXIT_USAGE


class StopRequest(threading.Event):
    """Set by the first SIGTERM or SIGINT of a `run` or `backfill`.

    The runner stops at the next load boundary and the API client sends no new request, so a
    walk in progress ends within one request. A second signal stops the process at once (the
    next run recovers from that too).
    """

    signal_name: str = ""


STOP = StopRequest()


def one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def emit(args: argparse.Namespace, summary: Any) -> None:
    if args.quiet:
        return
    if args.json:
        print(json.dumps({**summary.as_dict(), "ok": True}))
    else:
        print(summary.line())
