"""`polytomic-etl`: run, backfill, report, sql, views, check, demo, sandbox, cleanup.

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
import traceback
from collections.abc import Iterator
from importlib.metadata import PackageNotFoundError, version
from importlib.util import find_spec
from pathlib import Path
from types import FrameType

from pipelines.errors import config_error, configured_secrets
from pipelines.output import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, STOP, UsageError, one_line

log = logging.getLogger("polytomic_etl")
OPTIONAL_COLLECTORS = ("tqdm", "enlighten", "alive_progress")


def _version() -> str:
    try:
        return version("polytomic-etl")
    except PackageNotFoundError:
        return "unknown"


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the epilog as written; adds an option's default to its help where it has one."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if (
            not action.option_strings
            or "default" in text
            or action.default is None
            or action.default is False
            or action.default == argparse.SUPPRESS
        ):
            return text
        return f"{text} (default: %(default)s)".strip()


EXIT_LOAD = """exit codes:
  0  ok
  1  the run failed (API, load or warehouse); the summary says how far it got
  2  configuration, authentication or usage error
  3  another run of this target holds the lock
  5  interrupted by SIGTERM or Ctrl-C: stopped at a load boundary; the next run continues"""


def _epilog(example: str, exits: str) -> str:
    return f"example:\n  {example}\n\n{exits}"


def _exits(*lines: str) -> str:
    return "exit codes:\n" + "\n".join(f"  {line}" for line in lines)


def _target_options() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    where = common.add_argument_group("warehouse")
    where.add_argument(
        "--duckdb", metavar="PATH", help="DuckDB file (default: ./polytomic_etl.duckdb)"
    )
    where.add_argument(
        "--destination", default="duckdb", help="any dlt destination, configured the dlt way"
    )
    where.add_argument("--dataset", default="polytomic", help="dataset / schema name")
    where.add_argument(
        "--pipelines-dir", help="dlt working directories (default: ~/.dlt/pipelines)"
    )
    where.add_argument(
        "--pipeline-name",
        help="override the pipeline name (default: derived from destination, dataset, shard)",
    )
    where.add_argument(
        "--config-dir",
        help="project dir holding .dlt/ (or the .dlt dir itself); cron does not start in it "
        "(default: the current directory)",
    )
    return common


def _output_options(
    parser: argparse.ArgumentParser,
    json_help: str,
    quiet_help: str = "print nothing on success",
    verbose_help: str = "log what it does, and show errors in full",
) -> argparse._ArgumentGroup:
    out = parser.add_argument_group("output")
    out.add_argument("--json", action="store_true", help=json_help)
    out.add_argument("--quiet", action="store_true", help=quiet_help)
    out.add_argument("--verbose", action="store_true", help=verbose_help)
    return out


def _strict_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--strict", action="store_true", help="an unknown config key is an error (exit 2)"
    )


def _selection_options(parser: argparse.ArgumentParser) -> None:
    _strict_option(parser)
    parser.add_argument(
        "--bulk-sync-id",
        action="append",
        dest="bulk_sync_ids",
        metavar="ID",
        help="only this sync; repeatable (default: every sync)",
    )
    parser.add_argument(
        "--shard",
        metavar="I/N",
        help="load shard I of N, a stable hash-based subset of the syncs; shards are numbered "
        "from 0 (0/2 and 1/2) (default: every sync)",
    )
    parser.add_argument(
        "--progress",
        choices=["log", *(name for name in OPTIONAL_COLLECTORS if find_spec(name))],
        help="dlt progress collector (off by default); tqdm, enlighten and alive_progress "
        "are offered once installed",
    )


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The whole parser; given the command line, the sandbox's options only when it names
    `sandbox` (building them imports the sandbox package, which other commands never need)."""
    parser = argparse.ArgumentParser(
        prog="polytomic-etl",
        description="Load Polytomic bulk-sync execution history and report on it.",
        epilog="`polytomic-etl COMMAND --help` describes each command, its defaults and its "
        "exit codes.\n\n" + EXIT_LOAD,
        formatter_class=_HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"polytomic-etl {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    target = _target_options()

    def command(
        name: str, summary: str, example: str, exits: str, parents: bool = True
    ) -> argparse.ArgumentParser:
        return sub.add_parser(
            name,
            parents=[target] if parents else [],
            help=summary,
            description=summary[0].upper() + summary[1:] + ".",
            epilog=_epilog(example, exits),
            formatter_class=_HelpFormatter,
        )

    run = command(
        "run",
        "incremental load: new and changed executions since the last run (what cron calls)",
        "polytomic-etl run --quiet --config-dir /opt/polytomic-etl "
        "--duckdb /var/lib/polytomic/warehouse.duckdb",
        EXIT_LOAD,
    )
    _output_options(
        run,
        "print the summary as one JSON object",
        verbose_help="log progress, and show errors in full",
    )
    _selection_options(run)

    backfill = command(
        "backfill",
        "re-read a window of executions, or drop and reload everything (--full)",
        "polytomic-etl backfill --since 2025-01-01 --until 2025-02-01 --json",
        EXIT_LOAD,
    )
    _output_options(
        backfill,
        "print the summary as one JSON object",
        verbose_help="log progress, and show errors in full",
    )
    _selection_options(backfill)
    backfill.add_argument("--since", help="window start, UTC date or datetime (inclusive)")
    backfill.add_argument(
        "--until", help="window end, UTC date or datetime (exclusive) (default: now)"
    )
    backfill.add_argument("--full", action="store_true", help="drop and reload from scratch")
    backfill.add_argument("--yes", action="store_true", help="confirm --full without a prompt")

    report = command(
        "report",
        "sync health, failures, incidents and volume anomalies, from the warehouse (read-only)",
        "polytomic-etl report --since 2025-06-01 --sync orders --html report.html",
        _exits(
            "0  ok",
            "1  the warehouse cannot be read now (a load holds the DuckDB file: try again)",
            "2  configuration or usage error: nothing loaded yet, views missing, --sync matches",
            "   no sync or several (they are listed), --since not a date or in the future",
            "5  interrupted (Ctrl-C)",
        ),
    )
    _output_options(
        report,
        "print the whole report as one JSON object (times in ISO 8601, UTC)",
        quiet_help="print nothing (with --html, only write the page)",
    )
    report.add_argument("--html", metavar="FILE", help="also write a self-contained HTML page")
    report.add_argument(
        "--since",
        help="start of the report period, a UTC date or datetime; it narrows the runs, "
        "incidents and volume anomalies, and each section says its window (default: 30 days "
        "before the report's clock, i.e. now)",
    )
    report.add_argument(
        "--sync",
        metavar="NAME",
        help="focus on one sync: its id, or part of its name (case-insensitive); when several "
        "match they are listed (default: every sync)",
    )

    views = command(
        "views",
        "create or refresh the reporting views (run and backfill do it after each load)",
        "polytomic-etl views --destination postgres --dataset polytomic",
        _exits(
            "0  ok: created, refreshed or already current",
            "1  the warehouse failed",
            "2  configuration or usage error: nothing loaded yet, a destination without views",
            "5  interrupted (Ctrl-C)",
        ),
    )
    _output_options(views, "print the outcome as one JSON object")

    check = command(
        "check",
        "test the API (connectivity, auth, version) and the warehouse; load nothing",
        "polytomic-etl check --config-dir /opt/polytomic-etl",
        _exits(
            "0  ok: the API answered and the warehouse accepts writes",
            "1  the API or the warehouse failed",
            "2  configuration or authentication error",
            "5  interrupted (Ctrl-C)",
        ),
    )
    _output_options(check, "print the outcome and the visible syncs as one JSON object")
    _strict_option(check)

    sql = command(
        "sql",
        "run SQL against the warehouse, read-only (stdin, or a prompt when no statement)",
        'polytomic-etl sql --csv "SELECT * FROM incidents" > incidents.csv',
        _exits(
            "0  ok",
            "1  the warehouse cannot be read now (a load holds the DuckDB file, or it went away)",
            "2  bad SQL, a statement that would write, or a configuration or usage error",
            "5  interrupted (Ctrl-C)",
        ),
    )
    _output_options(
        sql,
        "print each result as a JSON array of objects",
        quiet_help="print no results (the statements still run)",
    )
    sql.add_argument("statement", nargs="?", help="SQL to run; the dataset is the default schema")
    sql.add_argument("--csv", action="store_true", help="print CSV instead of a table")

    demo = command(
        "demo",
        "sandbox -> DuckDB -> report, with no configuration",
        "polytomic-etl demo --html demo-report.html",
        _exits("0  ok", "1  the demo failed", "2  usage error", "5  interrupted (Ctrl-C)"),
        parents=False,
    )
    demo.add_argument(
        "--duckdb",
        default="demo.duckdb",
        metavar="PATH",
        help="DuckDB file, replaced (only a file an earlier demo made)",
    )
    demo.add_argument("--html", default="demo-report.html", metavar="FILE", help="the HTML report")

    sandbox = command(
        "sandbox",
        "serve the simulated Polytomic API on loopback until Ctrl-C",
        "polytomic-etl sandbox --port 8765 --seed 1 &",
        _exits(
            "0  stopped by Ctrl-C or SIGTERM",
            "1  cannot serve (the port is taken)",
            "2  usage error",
        ),
        parents=False,
    )
    if argv is None or "sandbox" in argv:
        from pipelines.sandbox import cli as sandbox_cli

        sandbox_cli.add_arguments(sandbox)
        for action in sandbox._actions:  # help texts where the sandbox gives none, for defaults
            if action.help is None and action.dest in SANDBOX_HELP:
                action.help = SANDBOX_HELP[action.dest]

    cleanup = command(
        "cleanup",
        "list, and with --yes delete, the dlt working directories of DuckDB files that are gone",
        "polytomic-etl cleanup --yes --pipelines-dir /var/dlt/pipelines",
        _exits(
            "0  ok, also when there is nothing to delete (what is kept says why)",
            "1  a directory could not be deleted (it is named)",
            "2  usage error: --pipelines-dir is empty or not a directory",
            "5  interrupted (Ctrl-C)",
        ),
        parents=False,
    )
    cleanup.add_argument(
        "--pipelines-dir",
        help="dlt working directories to look in (default: ~/.dlt/pipelines, "
        "/var/dlt/pipelines as root)",
    )
    cleanup.add_argument(
        "--yes", action="store_true", help="delete them (default: only list what would go)"
    )
    _output_options(cleanup, "print every directory and the outcome as one JSON object")
    return parser


SANDBOX_HELP = {
    "port": "port to listen on",
    "host": "address to listen on",
    "seed": "seed of the generated history: the same seed serves the same data",
    "syncs": "bulk syncs to generate",
    "executions": "executions per sync",
    "failure_rate": "share of executions that fail",
    "token_style": "page tokens",
    "last_page": "how the last page of a listing ends",
    "latency_ms": "milliseconds added per request",
}


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

        # Providers may already be cached; dlt's reload keeps the old directory unless told.
        Container()[PluggableRunContext].reload(os.environ["DLT_PROJECT_DIR"])
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
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    umask = os.umask(0o077)  # state, load packages, traces, lock: 0700 directories, 0600 files
    project = os.environ.get("DLT_PROJECT_DIR")
    run_dir = _run_dir()
    try:
        with _graceful_stop(args.command):
            return _main(args)
    finally:
        os.umask(umask)
        _restore_project_dir(project, run_dir)


def _run_dir() -> str | None:
    """dlt's current project directory, when dlt is loaded (its run context exists)."""
    if "dlt" not in sys.modules:
        return None
    from dlt.common.configuration.container import Container
    from dlt.common.configuration.specs.pluggable_run_context import PluggableRunContext

    return str(Container()[PluggableRunContext].context.run_dir)


def _restore_project_dir(project: str | None, run_dir: str | None) -> None:
    """`--config-dir` points dlt at a project for this call only (the CLI runs in-process
    in tests and in embedding code: the next call must not read this one's config)."""
    if os.environ.get("DLT_PROJECT_DIR") == project:
        return
    if project is None:
        os.environ.pop("DLT_PROJECT_DIR", None)
    else:
        os.environ["DLT_PROJECT_DIR"] = project
    from dlt.common.configuration.container import Container
    from dlt.common.configuration.specs.pluggable_run_context import PluggableRunContext

    # dlt's reload keeps the current project directory unless given one.
    Container()[PluggableRunContext].reload(project or run_dir or os.getcwd())


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

        secrets = configured_secrets()

        exc: BaseException = config_error(raised) or raised  # config errors: exit 2, one line
        code = getattr(exc, "exit_code", EXIT_FAILED)
        summary = getattr(exc, "summary", None)
        if getattr(args, "json", False) and summary is not None:
            error = redact(one_line(exc), secrets, limit=None)
            print(json.dumps({**summary.as_dict(), "ok": False, "error": error}))
        print(f"polytomic-etl: {redact(one_line(exc), secrets, limit=None)}", file=sys.stderr)
        if getattr(args, "verbose", False):  # the chain, each line redacted like the summary
            trace = traceback.format_exception(exc.__class__, exc, exc.__traceback__)
            lines = "".join(trace).splitlines()
            text = "\n".join(redact(line, secrets, limit=None) for line in lines)
            logging.getLogger("polytomic_etl").error("details:\n%s", text)
        return int(code)


if __name__ == "__main__":
    sys.exit(main())
