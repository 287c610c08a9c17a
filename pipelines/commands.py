"""What each subcommand does; `cli.py` only parses and maps errors to exit codes."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

import dlt

from pipelines import settings_check
from pipelines.output import EXIT_OK, UsageError, emit
from pipelines.reporting import parse_when
from pipelines.reports.settings import load_settings
from pipelines.reports.terminal import printable
from pipelines.runlog import logged_run
from pipelines.runner import RunContext
from pipelines.target import Target
from pipelines.warehouse import probe
from pipelines.warehouse_lock import load_lock
from sources.polytomic import parse_shard, polytomic_source, select_syncs

STATE_PATH = ("sources", "polytomic", "resources", "bulk_sync_executions")
TABLES = ("bulk_sync_executions__schemas", "bulk_sync_executions")


def dispatch(args: argparse.Namespace) -> int:
    handler = {
        "run": cmd_run,
        "backfill": cmd_backfill,
        "check": cmd_check,
        "report": cmd_report,
        "views": cmd_views,
        "sql": cmd_sql,
        "demo": cmd_demo,
        "sandbox": cmd_sandbox,
        "cleanup": cmd_cleanup,
    }[args.command]
    if args.command in ("run", "backfill", "check", "views", "demo"):  # what reads [reports]
        settings_check.check(strict=getattr(args, "strict", False))
    if args.command in ("run", "backfill", "check", "views", "demo"):
        load_settings()  # a bad [reports] threshold is exit 2 before anything is loaded
    return handler(args)


def target_of(args: argparse.Namespace) -> Target:
    if args.duckdb and args.destination not in ("duckdb", None):
        raise UsageError("--duckdb and --destination other than duckdb cannot be combined")
    shard = getattr(args, "shard", None)
    parse_shard(shard)
    return Target(
        destination=args.destination,
        duckdb_path=args.duckdb,
        dataset=args.dataset,
        pipelines_dir=args.pipelines_dir,
        pipeline_name=args.pipeline_name,
        shard=shard,
        progress=getattr(args, "progress", None),
    )


def _selection(args: argparse.Namespace) -> dict[str, Any]:
    return {"bulk_sync_ids": args.bulk_sync_ids, "shard": args.shard}


def _progress_line(args: argparse.Namespace) -> bool:
    """On a terminal, unless the output is for a script or dlt's own collector is asked for."""
    quiet = args.quiet or args.json or getattr(args, "progress", None)
    return not quiet and sys.stdout.isatty() and sys.stderr.isatty()


def cmd_run(args: argparse.Namespace) -> int:
    hooks = {"after_load": refresh_views, "show_progress": _progress_line(args)}
    summary = logged_run(target_of(args), _selection(args), "run", **hooks)
    emit(args, summary)
    return EXIT_OK


def cmd_backfill(args: argparse.Namespace) -> int:
    target = target_of(args)
    if args.full:
        if args.since or args.until:
            raise UsageError("--full reloads everything selected; drop --since/--until")
        return _full_reload(args, target)
    if not args.since:
        raise UsageError("backfill needs --since DATE (or --full)")
    since, until = parse_when(args.since), parse_when(args.until)
    if since is None or (args.until and until is None):
        raise UsageError("--since/--until must be UTC dates or datetimes, e.g. 2025-01-01")
    if until is not None and until <= since:
        raise UsageError("--until must be after --since")
    window = {"backfill_since": since.isoformat(), "backfill_until": until and until.isoformat()}
    selection = {**_selection(args), **window}
    hooks = {"after_load": refresh_views, "show_progress": _progress_line(args)}
    summary = logged_run(target, selection, "backfill", **hooks)
    emit(args, summary)
    return EXIT_OK


def _full_reload(args: argparse.Namespace, target: Target) -> int:
    ids = sorted(args.bulk_sync_ids or [])
    scope = f"the rows of {len(ids)} sync(s) ({', '.join(ids)})" if ids else "all rows"
    if args.shard:
        scope = f"{scope} of shard {args.shard}".replace("all rows", "the rows")
    what = (
        f"backfill --full drops {scope} from {target.dataset}.bulk_sync_executions and "
        f"its schema rows, and their incremental state, then reloads them"
    )
    if not args.yes:
        if not sys.stdin.isatty():
            raise UsageError(f"{what}; re-run with --yes to confirm")
        answer = input(f"{what}. Type 'yes' to continue: ")
        if answer.strip().lower() != "yes":
            raise UsageError("not confirmed; nothing was dropped")
    key = "full|" + ",".join(ids)

    def drop(pipeline: dlt.Pipeline, context: RunContext) -> None:
        marker = _state(pipeline).get("full_reload")
        if marker == key:
            return  # a killed --full resumes from its checkpoint; it does not drop again
        # Only the selected syncs, by id and by shard, that the API still lists: another
        # shard keeps its cursors, and a deleted sync's history would never come back.
        polytomic_source(context=context, **_selection(args))
        assert context.client is not None
        synced = context.client.list_syncs(context.active)
        listed = [s.get("id") for s in synced if isinstance(s, dict)]
        ids_now = [i.lower() for i in listed if isinstance(i, str)]
        chosen = select_syncs(ids_now, [i.lower() for i in ids], args.shard)
        _delete_rows(pipeline, chosen)

    selection = {**_selection(args), "full_reload": key}
    hooks = {"before_load": drop, "after_load": refresh_views}
    hooks["show_progress"] = _progress_line(args)
    summary = logged_run(target, selection, "backfill", **hooks)
    emit(args, summary)
    return EXIT_OK


def _state(pipeline: dlt.Pipeline) -> dict[str, Any]:
    node: Any = pipeline.state
    for key in STATE_PATH:
        node = node.get(key, {}) if isinstance(node, dict) else {}
    return node if isinstance(node, dict) else {}


def _delete_rows(pipeline: dlt.Pipeline, ids: list[str]) -> None:
    try:
        client = pipeline.sql_client()
    except Exception:
        return  # nothing loaded yet
    if not ids:
        return
    with load_lock(pipeline), client as sql:  # never beside another shard's load
        for table in TABLES:
            name = sql.make_qualified_table_name(table)
            if not _table_exists(sql, table):
                continue
            marks = ", ".join(["%s"] * len(ids))
            sql.execute_sql(f"DELETE FROM {name} WHERE bulk_sync_id IN ({marks})", *ids)


def _table_exists(sql: Any, table: str) -> bool:
    rows = sql.execute_sql(
        "SELECT 1 FROM information_schema.tables WHERE table_schema = %s AND table_name = %s",
        sql.dataset_name,
        table,
    )
    return bool(rows)


def refresh_views(pipeline: dlt.Pipeline) -> None:
    """Create or refresh the reporting views after each load."""
    from pipelines.reporting import refresh_views as refresh

    refresh(pipeline)


def cmd_check(args: argparse.Namespace) -> int:
    """Connectivity, authentication and API version; lists the syncs; the warehouse accepts
    a write (a table is created and dropped). Loads nothing."""
    context = RunContext()
    # A probe: a refused connection or an unknown host fails after one retry, not five.
    polytomic_source(context=context, max_attempts=2, backoff_factor=0.5)  # no request yet
    client = context.client
    assert client is not None
    syncs = client.list_syncs()
    target = target_of(args)
    path = target.duckdb_path
    fresh = path if path and not Path(path).exists() else None
    if (holder := target.load_in_progress()) is not None:  # never in a load's way
        warehouse = f"{target.describe()}: a load is in progress ({holder}); write test skipped"
    else:
        warehouse = f"{target.describe()}: {probe(target.pipeline(), created_file=fresh)}"
    if args.quiet:  # --quiet wins, as for every command: the exit code says it all
        return EXIT_OK
    if args.json:
        print(
            json.dumps(
                {
                    "ok": True,
                    "base_url": client.base_url,
                    "api_version": client.served_version,
                    "warehouse": warehouse,
                    "syncs": [
                        {"id": s.get("id"), "name": s.get("name"), "active": s.get("active")}
                        for s in syncs
                    ],
                }
            )
        )
        return EXIT_OK
    if not args.quiet:
        print(
            printable(
                f"ok: {client.base_url} answered with API version {client.served_version}; "
                f"{len(syncs)} bulk sync(s) visible"
            )
        )
        accepts = "" if "write test skipped" in warehouse else ", and accepts writes"
        print(f"ok: warehouse {warehouse}{accepts}")
        for sync in syncs:  # names come from the API: escape codes are shown, not obeyed
            state = "active" if sync.get("active") else "paused"
            print(printable(f"  {sync.get('id')}  {state:<6}  {sync.get('name')}"))
    return EXIT_OK


def html_path(value: str | None) -> None:
    """A usable `--html FILE`, checked before the report is built (exit 2, naming it)."""
    if value is None:
        return
    path = Path(value)
    if not value.strip():
        raise UsageError("--html is empty: give the HTML file to write")
    if path.is_dir():
        raise UsageError(f"--html {value}: is a directory; give the HTML file to write in it")
    parent = path.parent
    if not parent.is_dir():
        raise UsageError(f"--html {value}: directory {parent} does not exist")
    if not os.access(path if path.exists() else parent, os.W_OK):
        raise UsageError(f"--html {value}: permission denied (cannot write it)")


def cmd_report(args: argparse.Namespace) -> int:
    from pipelines.reporting import report

    html_path(args.html)
    return report(args, target_of(args))


def cmd_views(args: argparse.Namespace) -> int:
    from pipelines.reporting import views

    return views(args, target_of(args))


def cmd_sql(args: argparse.Namespace) -> int:
    from pipelines.sql import sql

    return sql(args, target_of(args))


def cmd_demo(args: argparse.Namespace) -> int:
    from pipelines.demo import demo

    html_path(args.html)
    return demo(args)


def cmd_sandbox(args: argparse.Namespace) -> int:
    from pipelines.sandbox import cli as sandbox_cli

    return sandbox_cli.run(args)


def cmd_cleanup(args: argparse.Namespace) -> int:
    """Working directories of DuckDB warehouses that are gone: listed, deleted with --yes."""
    from dlt.common.pipeline import get_dlt_pipelines_dir

    from pipelines.cleanup import cleanup, report

    if args.pipelines_dir is not None and not args.pipelines_dir.strip():
        raise UsageError("--pipelines-dir is empty: give the directory to look in")
    root = Path(args.pipelines_dir or get_dlt_pipelines_dir()).expanduser().absolute()
    if args.pipelines_dir and not root.is_dir():
        raise UsageError(f"--pipelines-dir {args.pipelines_dir}: not a directory")
    verdicts = cleanup(root, yes=args.yes)
    style = "quiet" if args.quiet else "json" if args.json else "text"
    report(root, verdicts, args.yes, style)
    return EXIT_OK
