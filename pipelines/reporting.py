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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import dlt

from pipelines.reports.db import Db
from pipelines.reports.runs import last_failure, read_runlog
from pipelines.reports.terminal import printable
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


def render(
    target: Target,
    html: str | None,
    since: str | None,
    sync: str | None,
    out: Callable[[str], None] = print,
) -> None:
    """Print the terminal report for a target's warehouse and optionally write the HTML page.

    Only reads: the views must be there, of this version (``run`` or ``views`` made them)."""
    from pipelines.reports.report import build_report, render_html, render_terminal

    when = parse_when(since)
    if since and when is None:
        raise ReportError(f"--since {since!r} is not a UTC date or datetime, e.g. 2025-01-01")
    with _reading(target) as db:
        _views_ready(db, target)
        log = read_runlog(db.dicts, target.dataset)
        try:
            report = build_report(db.dicts, target.dataset, since=when, sync=sync, runlog=log)
        except ValueError as exc:  # an unknown --sync, a --since in the future
            raise ReportError(str(exc)) from exc
    out(render_terminal(report, width=100))
    if html:
        Path(html).write_text(render_html(report), encoding="utf-8")


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
    exit_code = 2

    def __init__(self, message: str) -> None:
        super().__init__(printable(message))


class WarehouseBusy(ReportError):
    """Another process holds the DuckDB file for writing (a load): try again later."""

    exit_code = 1


def report(args: argparse.Namespace, target: Target) -> int:
    render(target, html=args.html, since=args.since, sync=args.sync)
    if args.html and not args.quiet:
        print(printable(f"wrote {args.html}"))
    return 0
