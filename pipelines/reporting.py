"""Glue between a target's warehouse and the reports.

Writing: ``refresh_views`` after every load of ``run`` and ``backfill``, and the ``views``
command for a warehouse loaded elsewhere.  Reading: ``report`` only reads (DuckDB is opened
read-only, a Postgres session is read-only), so it never blocks a load and a role that can
only SELECT can run it.  Views missing or of another version make it exit 2, naming the fix.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import dlt

from pipelines.reports.db import Db
from pipelines.reports.model import Report, report_json
from pipelines.reports.runs import last_failure, read_runlog
from pipelines.reports.terminal import printable, terminal_width
from pipelines.target import Target
from sources.polytomic.records import parse_ts

log = logging.getLogger("polytomic_etl")


def dialect_of(pipeline: dlt.Pipeline) -> str | None:
    name = pipeline.destination.destination_name if pipeline.destination else None
    return {"duckdb": "duckdb", "motherduck": "duckdb", "postgres": "postgres"}.get(name or "")


def parse_when(value: str | None) -> datetime | None:
    """A UTC date (midnight) or datetime, as ``backfill --since/--until`` and ``report
    --since`` take it: ``2026-01-01``, ``2026-01-01 00:00``, ``2026-01-01T00:00:00+02:00``.
    None for no value and for text that is neither."""
    text = (value or "").strip()
    if text and "T" not in text and " " not in text:
        text = f"{text}T00:00:00+00:00"
    return parse_ts(text)


def refresh_views(pipeline: dlt.Pipeline) -> bool:
    """Create or refresh the reporting views after a load, where the dialect is supported.

    Returns whether they changed (False also when nothing is loaded yet)."""
    from pipelines.reports.refresh import create_views

    dialect = dialect_of(pipeline)
    if dialect is None:
        log.info("reporting views are written for DuckDB and Postgres; skipped here")
        return False
    with pipeline.sql_client() as sql:
        return create_views(sql.native_connection, dialect, pipeline.dataset_name)


def load_report(target: Target, since: str | None, sync: str | None) -> Report:
    """The report of a target's warehouse, for the period from ``since`` and one ``sync``.

    Only reads: the views must be there, of this version (``run`` or ``views`` made them)."""
    from pipelines.reports.model import SyncChoice
    from pipelines.reports.report import build_report

    when = parse_when(since)
    if since and when is None:
        raise ReportError(f"--since {since!r} is not a UTC date or datetime, e.g. 2025-01-01")
    with _reading(target) as db:
        _views_ready(db, target)
        log = read_runlog(db.dicts, target.dataset)
        try:
            return build_report(db.dicts, target.dataset, since=when, sync=sync, runlog=log)
        except SyncChoice as exc:  # none or several match: the syncs to choose from
            names = [f"  {r['bulk_sync_id']}  {r['name']}" for r in exc.candidates]
            raise ReportError(str(exc), names or ["  (the dataset has no syncs)"]) from exc
        except ValueError as exc:  # a --since in the future
            raise ReportError(str(exc)) from exc


def render(
    target: Target,
    html: str | None,
    since: str | None,
    sync: str | None,
    out: Callable[[str], None] = print,
    *,
    as_json: bool = False,
    width: int | None = None,
) -> Report:
    """Print the report of a target's warehouse, for the terminal (``width`` columns, by
    default the terminal's) or as JSON, and write the HTML page to ``html`` if given."""
    from pipelines.reports.report import render_html, render_terminal

    report = load_report(target, since, sync)
    if html:
        Path(html).write_text(render_html(report), encoding="utf-8")
    if as_json:
        out(report_json(report, html))
    else:
        out(render_terminal(report, width=width or terminal_width()))
    return report


def views(args: argparse.Namespace, target: Target) -> int:
    """``polytomic-etl views``: create or refresh the views of a warehouse loaded elsewhere."""
    from pipelines.reports.refresh import create_views
    from pipelines.reports.views import views_version

    _warehouse_exists(target)
    pipeline = target.pipeline()
    dialect = dialect_of(pipeline)
    if dialect is None:
        raise ReportError(
            f"reporting views are written for DuckDB and Postgres, not {target.destination}"
        )
    with pipeline.sql_client() as sql:
        _loaded(Db(sql.native_connection, dialect), target)
        changed = create_views(sql.native_connection, dialect, target.dataset)
    version = views_version(dialect)
    if args.json:
        print(json.dumps({"ok": True, "changed": changed, "version": version}))
    elif not args.quiet:
        state = "created or refreshed" if changed else "already current"
        print(printable(f"polytomic-etl views: {state} in {target.describe()} (version {version})"))
    return 0


@contextmanager
def _reading(target: Target) -> Iterator[Db]:
    """A read-only connection to the target's warehouse."""
    _warehouse_exists(target)
    if target.destination == "duckdb":
        import duckdb

        try:
            connection = duckdb.connect(target.duckdb_path, read_only=True)
        except duckdb.IOException as exc:  # a load holds the file; DuckDB names its pid
            _load_in_progress(target)
            raise WarehouseBusy(
                f"cannot read {target.duckdb_path} now, try again when the load has finished: "
                + str(exc).splitlines()[0]
            ) from exc
        try:
            db = Db(connection, "duckdb")
            _loaded(db, target)
            yield db
        finally:
            connection.close()
        return
    pipeline = target.pipeline()
    dialect = dialect_of(pipeline)
    if dialect is None:
        raise ReportError(f"reports support DuckDB and Postgres, not {target.destination}")
    with pipeline.sql_client() as sql:
        db = Db(sql.native_connection, dialect)
        if dialect == "postgres":
            db.execute("set session characteristics as transaction read only")
        _loaded(db, target)
        yield db


def _load_in_progress(target: Target) -> None:
    """A first load still running: say so, rather than "run it first"."""
    holder = target.load_in_progress()
    if holder is not None:
        raise WarehouseBusy(
            f"a load into {target.describe()} is in progress ({holder}) and has not committed "
            "data yet: try again when it has finished"
        )


def _warehouse_exists(target: Target) -> None:
    """A mistyped --duckdb path is an error, not a new empty file."""
    if target.destination == "duckdb" and not Path(str(target.duckdb_path)).is_file():
        _load_in_progress(target)
        raise ReportError(
            f"no DuckDB warehouse at {target.duckdb_path}: check --duckdb, or load it with "
            "`polytomic-etl run` first"
        )


def _loaded(db: Db, target: Target) -> None:
    from pipelines.reports.refresh import TABLES

    rows = db.rows(
        "select table_name from information_schema.tables where table_schema = %s",
        target.dataset,
    )
    if {str(r[0]) for r in rows} & set(TABLES):
        return
    log = read_runlog(db.dicts, target.dataset)
    ok = log.any_ok()
    if ok is not None:  # the account had nothing to load
        raise ReportError(
            f"no loaded data in {target.describe()}: the last successful run, at "
            f"{ok:%Y-%m-%d %H:%M} UTC, found no bulk syncs to load"
        )
    _load_in_progress(target)
    failure = last_failure(log)
    why = f"; the last run {failure}" if failure else ""
    raise ReportError(f"no loaded data in {target.describe()}: run `polytomic-etl run` first{why}")


FIX = "run `polytomic-etl run`, or `polytomic-etl views` for a warehouse loaded elsewhere"


def _views_ready(db: Db, target: Target) -> None:
    from pipelines.reports.refresh import installed_version, missing_views
    from pipelines.reports.views import views_version

    missing = missing_views(db, target.dataset)
    if missing:
        failure = last_failure(read_runlog(db.dicts, target.dataset))
        why = f" (the last run {failure})" if failure else ""
        raise ReportError(f"the reporting views are missing in {target.describe()}{why}: {FIX}")
    if installed_version(db, target.dataset) != views_version(db.dialect):
        raise ReportError(
            f"the reporting views in {target.describe()} are from another version of "
            f"polytomic-etl: {FIX}"
        )


class ReportError(Exception):
    """Exit 2, one line; ``details`` are more lines for stderr (``report`` prints them)."""

    exit_code = 2

    def __init__(self, message: str, details: list[str] | None = None) -> None:
        super().__init__(printable(message))
        self.details = [printable(line) for line in details or []]


class WarehouseBusy(ReportError):
    """Another process holds the DuckDB file for writing (a load): try again later."""

    exit_code = 1


def report(args: argparse.Namespace, target: Target) -> int:
    """``polytomic-etl report``: the terminal report, ``--json``, ``--html``; ``--quiet``
    prints nothing.  An unknown or ambiguous ``--sync`` lists the syncs to choose from, on
    stderr, and exits 2."""
    try:
        report = load_report(target, since=args.since, sync=args.sync)
    except ReportError as exc:
        if not exc.details:
            raise
        print(f"polytomic-etl: {exc}", file=sys.stderr)
        for line in exc.details:
            print(line, file=sys.stderr)
        return exc.exit_code
    if args.html:
        from pipelines.reports.report import render_html

        Path(args.html).write_text(render_html(report), encoding="utf-8")
    if args.quiet:
        return 0
    if args.json:
        print(report_json(report, args.html))
        return 0
    from pipelines.reports.report import render_terminal

    print(render_terminal(report, width=terminal_width()))
    if args.html:
        print(printable(f"wrote {args.html}"))
    return 0
