"""Glue between a pipeline's warehouse and the reports: refresh views, query, render."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dlt

from pipelines.runner import Target
from sources.polytomic.records import parse_ts

log = logging.getLogger("polytomic_etl")


def dialect_of(pipeline: dlt.Pipeline) -> str | None:
    name = pipeline.destination.destination_name if pipeline.destination else None
    return {"duckdb": "duckdb", "motherduck": "duckdb", "postgres": "postgres"}.get(name or "")


def refresh_views(pipeline: dlt.Pipeline) -> None:
    """Create or refresh the reporting views after a load, where the dialect is supported."""
    from pipelines.reports.views import create_views

    dialect = dialect_of(pipeline)
    if dialect is None:
        log.info("reporting views are written for DuckDB and Postgres; skipped here")
        return
    with pipeline.sql_client() as sql:
        if not _has_table(sql):
            return  # nothing loaded yet (every sync failed on a first run)
        create_views(lambda statement: sql.execute_sql(statement), dialect, pipeline.dataset_name)


def _query_fn(sql: Any) -> Callable[[str], list[dict[str, Any]]]:
    def query(statement: str) -> list[dict[str, Any]]:
        with sql.execute_query(statement) as cursor:
            names = [d[0] for d in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    return query


def render(
    target: Target,
    html: str | None,
    since: str | None,
    sync: str | None,
    out: Callable[[str], None] = print,
) -> None:
    """Print the terminal report for a target's warehouse and optionally write the HTML page."""
    from pipelines.reports.report import build_report, render_html, render_terminal

    pipeline = target.pipeline()
    dialect = dialect_of(pipeline)
    if dialect is None:
        raise ReportError(f"reports support DuckDB and Postgres, not {target.destination}")
    when = parse_ts(since if not since or "T" in since else f"{since}T00:00:00+00:00")
    if since and when is None:
        raise ReportError(f"--since {since!r} is not a date or datetime")
    with pipeline.sql_client() as sql:
        if not _has_table(sql):
            raise ReportError(
                f"no loaded data in {target.describe()}: run `polytomic-etl run` first"
            )
        refresh_views(pipeline)
        report = build_report(_query_fn(sql), pipeline.dataset_name, since=when, sync=sync)
    out(render_terminal(report, width=100))
    if html:
        Path(html).write_text(render_html(report), encoding="utf-8")


def _has_table(sql: Any) -> bool:
    """Both tables the views read exist (a first load whose detail requests all failed has
    executions but no schema rows yet)."""
    rows = sql.execute_sql(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = %s "
        "AND table_name IN ('bulk_sync_executions', 'bulk_sync_executions__schemas')",
        sql.dataset_name,
    )
    return bool(rows) and rows[0][0] == 2


class ReportError(Exception):
    exit_code = 2


def report(args: argparse.Namespace, target: Target) -> int:
    render(target, html=args.html, since=args.since, sync=args.sync)
    if args.html and not args.quiet:
        print(f"wrote {args.html}")
    return 0
