"""`polytomic-etl`: run, backfill, report, sql, views, check, demo, sandbox.

Exit codes: 0 ok; 1 the run failed (API, load, warehouse); 2 config, auth or usage error;
3 another run holds the lock; 5 interrupted (SIGTERM or Ctrl-C): the run stopped at a load
boundary and the next run continues from there.

Files the tool writes are private to its user (umask 077: directories 0700, files 0600).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Iterator
from importlib.metadata import PackageNotFoundError, version
from importlib.util import find_spec
from pathlib import Path
from types import FrameType

from pipelines.errors import config_error
from pipelines.output import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, STOP, UsageError, one_line

log = logging.getLogger("polytomic_etl")
OPTIONAL_COLLECTORS = ("tqdm", "enlighten", "alive_progress")


def _version() -> str:
    try:
        return version("polytomic-etl")
    except PackageNotFoundError:
        return "unknown"


def _target_options() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    where = common.add_argument_group("warehouse")
    where.add_argument(
        "--duckdb", metavar="PATH", help="DuckDB file (default ./polytomic_etl.duckdb)"
    )
    where.add_argument(
        "--destination", default="duckdb", help="any dlt destination, configured the dlt way"
    )
    where.add_argument("--dataset", default="polytomic", help="dataset / schema name")
    where.add_argument("--pipelines-dir", help="dlt working directories (default ~/.dlt/pipelines)")
    where.add_argument("--pipeline-name", help="override the derived pipeline name")
    where.add_argument(
        "--config-dir",
        help="project dir holding .dlt/ (or the .dlt dir itself); cron does not start in it",
    )
    out = common.add_argument_group("output")
    out.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    out.add_argument("--quiet", action="store_true", help="print nothing on success")
    out.add_argument("--verbose", action="store_true", help="log progress and full errors")
    return common


def _strict_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--strict", action="store_true", help="an unknown config key is an error (exit 2)"
    )


def _selection_options(parser: argparse.ArgumentParser) -> None:
    _strict_option(parser)
    parser.add_argument(
        "--bulk-sync-id", action="append", dest="bulk_sync_ids", metavar="ID", help="repeatable"
    )
    parser.add_argument("--shard", metavar="I/N", help="load a stable hash-based subset of syncs")
    parser.add_argument(
        "--progress",
        choices=["log", *(name for name in OPTIONAL_COLLECTORS if find_spec(name))],
        help="dlt progress collector (off by default); tqdm, enlighten and alive_progress "
        "are offered once installed",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="polytomic-etl", description="Load Polytomic bulk-sync execution history."
    )
    parser.add_argument("--version", action="version", version=f"polytomic-etl {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    common = _target_options()

    run = sub.add_parser("run", parents=[common], help="incremental load (what cron calls)")
    _selection_options(run)

    backfill = sub.add_parser("backfill", parents=[common], help="re-read a window, or reload")
    _selection_options(backfill)
    backfill.add_argument("--since", help="window start, UTC date or datetime (inclusive)")
    backfill.add_argument("--until", help="window end, UTC date or datetime (exclusive)")
    backfill.add_argument("--full", action="store_true", help="drop and reload from scratch")
    backfill.add_argument("--yes", action="store_true", help="confirm --full without a prompt")

    report = sub.add_parser("report", parents=[common], help="health, failures, durations")
    report.add_argument("--html", metavar="FILE", help="also write a self-contained HTML page")
    report.add_argument("--since", help="narrow the period (UTC date or datetime)")
    report.add_argument("--sync", metavar="NAME", help="focus on one sync (name or id)")

    sub.add_parser(
        "views",
        parents=[common],
        help="create or refresh the reporting views (run does it after each load)",
    )

    check = sub.add_parser(
        "check", parents=[common], help="test connectivity and auth; load nothing"
    )
    _strict_option(check)

    sql = sub.add_parser(
        "sql",
        parents=[common],
        help="run SQL against the warehouse, read-only (stdin or a prompt when no statement)",
    )
    sql.add_argument("statement", nargs="?", help="SQL to run; the dataset is the default schema")
    sql.add_argument("--csv", action="store_true", help="print CSV instead of a table")

    demo = sub.add_parser("demo", help="sandbox -> DuckDB -> report, with no configuration")
    demo.add_argument("--duckdb", default="demo.duckdb", metavar="PATH")
    demo.add_argument("--html", default="demo-report.html", metavar="FILE")

    sandbox = sub.add_parser("sandbox", help="serve the simulated Polytomic API on loopback")
    from pipelines.sandbox import cli as sandbox_cli

    sandbox_cli.add_arguments(sandbox)
    return parser


def _configure(args: argparse.Namespace) -> None:
    # dlt's anonymous telemetry would send requests off this machine (through any proxy).
    # Set before dlt first resolves its runtime configuration (the reload below, or its first
    # use): it starts its telemetry then, once per process.
    os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
    config_dir = getattr(args, "config_dir", None)
    if config_dir:
        path = Path(config_dir).expanduser().resolve()
        if not path.is_dir():
            raise UsageError(f"--config-dir {config_dir}: not a directory")
        os.environ["DLT_PROJECT_DIR"] = str(path.parent if path.name == ".dlt" else path)
        from dlt.common.configuration.container import Container
        from dlt.common.configuration.specs.pluggable_run_context import PluggableRunContext

        Container()[PluggableRunContext].reload()  # providers may already be cached
    verbose = getattr(args, "verbose", False)
    ours = logging.getLogger("polytomic_etl")
    for handler in [h for h in ours.handlers if isinstance(h, _StderrHandler)]:
        ours.removeHandler(handler)
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter("polytomic-etl: %(levelname)s: %(message)s"))
    ours.addHandler(handler)
    ours.propagate = False
    quiet = getattr(args, "quiet", False) and not verbose
    ours.setLevel(logging.INFO if verbose else logging.ERROR if quiet else logging.WARNING)
    if getattr(args, "command", None) == "sandbox":
        return  # serves the API; never starts dlt
    # dlt logs through its own logger, created with the level its run context resolves
    # (environment, then config.toml) when it starts: with --config-dir that was the reload
    # above. --quiet wins over both (a successful quiet run prints nothing, so cron mails
    # nothing); --verbose shows dlt's warnings, not its INFO flood (our own INFO lines say
    # what each sync did); otherwise the user's level, or ERROR.
    import dlt
    from dlt.common.configuration.container import Container
    from dlt.common.configuration.specs.pluggable_run_context import PluggableRunContext

    own = "_POLYTOMIC_ETL_DLT_LOG_LEVEL"  # a level an earlier call in this process imposed
    if os.environ.get("RUNTIME__LOG_LEVEL") == os.environ.pop(own, None):
        os.environ.pop("RUNTIME__LOG_LEVEL", None)
    configured = dlt.config.get("runtime.log_level")
    level = "ERROR" if quiet else configured or ("WARNING" if verbose else "ERROR")
    if level != configured:
        os.environ["RUNTIME__LOG_LEVEL"] = os.environ[own] = level
    Container()[PluggableRunContext].initialize_runtime()  # the logger, with that level


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever `sys.stderr` is at the time, so redirection is honoured."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


LOADING_COMMANDS = ("run", "backfill")


def _on_signal(signum: int, frame: FrameType | None) -> None:
    if STOP.is_set():
        signal.signal(signum, signal.SIG_DFL)
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        os.kill(os.getpid(), signum)
        return
    STOP.signal_name = signal.Signals(signum).name
    STOP.set()


@contextlib.contextmanager
def _graceful_stop(command: str) -> Iterator[None]:
    """SIGTERM and SIGINT end a load command at a load boundary, with exit 5."""
    STOP.clear()
    if command not in LOADING_COMMANDS or threading.current_thread() is not threading.main_thread():
        yield
        return
    # dlt's own handlers (normalize, load) would take the signal and then forget it.
    os.environ.setdefault("RUNTIME__INTERCEPT_SIGNALS", "false")
    previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    umask = os.umask(0o077)  # state, load packages, traces, lock: 0700 directories, 0600 files
    try:
        with _graceful_stop(args.command):
            return _main(args)
    finally:
        os.umask(umask)


def _main(args: argparse.Namespace) -> int:
    try:
        _configure(args)
        from pipelines import commands

        return commands.dispatch(args)
    except KeyboardInterrupt:
        print("polytomic-etl: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `polytomic-etl report | head`: the reader has what it wanted
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except Exception as raised:  # every failure ends as one clear line, cause first
        from sources.polytomic.errors import redact  # no secret reaches the terminal

        exc: BaseException = config_error(raised) or raised  # config errors: exit 2, one line
        code = getattr(exc, "exit_code", EXIT_FAILED)
        summary = getattr(exc, "summary", None)
        if getattr(args, "json", False) and summary is not None:
            error = redact(one_line(exc), limit=None)
            print(json.dumps({**summary.as_dict(), "ok": False, "error": error}))
        print(f"polytomic-etl: {redact(one_line(exc), limit=None)}", file=sys.stderr)
        if getattr(args, "verbose", False):
            logging.getLogger("polytomic_etl").exception("details")
        return int(code)


if __name__ == "__main__":
    sys.exit(main())
