"""`polytomic-etl demo`: sandbox -> DuckDB -> report, with no configuration at all.

The sandbox serves a realistic organisation whose history ends now, with one of each problem
the reports are built to find. The real pipeline loads it; nothing is mocked past HTTP.
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pipelines.output import UsageError
from pipelines.reporting import refresh_views, render
from pipelines.runlog import logged_run
from pipelines.sandbox import Sandbox, SyncPlan
from pipelines.target import Target, duckdb_lock_holder

HOURLY_DAYS, DAILY_DAYS = 45, 120
DEMO = "demo"  # the mode of the demo's runs in etl_runs: what marks a file as the demo's
PERMISSION = "destination: permission denied for schema analytics"


def _every_schema(
    names: tuple[str, ...],
    total: int,
    special: dict[int, dict[str, Any]] | None = None,
    pattern: Any = None,
) -> Any:
    """All of a sync's schemas take part in every run, as in a plain bulk sync; a run that
    syncs a subset would read as a volume drop. `special` keys may count from the end (-1)."""
    by_index = {k % total: v for k, v in (special or {}).items()}

    def override(index: int) -> dict[str, Any]:
        extra = dict(pattern(index) or {}) if pattern else {}
        return {"schemas": list(names), **extra, **by_index.get(index, {})}

    return override


def demo_plans(now: datetime) -> list[SyncPlan]:
    """Healthy syncs plus a broken, a flapping, a late, a stuck and an inactive one, a
    chronically failing schema and a volume drop; nothing else is flagged (the reports'
    precision tests, tests/reports/test_precision.py, hold it to that)."""
    hourly, daily = HOURLY_DAYS * 24, DAILY_DAYS

    def flapping(index: int) -> dict[str, Any] | None:
        if index < hourly - 20:
            return None
        failed = {"status": "failed", "status_message": "source: timeout"}
        return failed if index % 2 else {"status": "completed"}

    def plan(
        name: str,
        frequency: str,
        total: int,
        schemas: tuple[str, ...],
        special: dict[int, dict[str, Any]] | None = None,
        pattern: Any = None,
        **kw: Any,
    ) -> SyncPlan:
        kw.setdefault("failure_rate", 0.02)
        overrides = _every_schema(schemas, total, special, pattern)
        return SyncPlan(name, frequency, total, schemas, overrides=overrides, **kw)

    chronic = {
        -k: {"status": "completed", "schema_status": {"Opportunity": "failed"}} for k in (1, 2, 4)
    }
    broken = {-k: {"status": "failed", "status_message": PERMISSION} for k in range(1, 7)}
    return [
        plan(
            "Salesforce → Snowflake",
            "hourly",
            hourly,
            ("Account", "Contact", "Lead"),
            source="salesforce",
        ),
        plan(
            "HubSpot → BigQuery",
            "hourly",
            hourly,
            ("contacts", "deals", "tickets"),
            special=broken,
            source="hubspot",
        ),
        plan(
            "Postgres → Redshift",
            "hourly",
            hourly,
            ("public.events", "public.invoices"),
            pattern=flapping,
            source="postgres",
        ),
        plan(
            "NetSuite → Snowflake",
            "hourly",
            hourly,
            ("Customer", "Invoice", "Payment"),
            ends_before_now=7 * 3600,
        ),
        plan(
            "Salesforce CPQ → Snowflake",
            "daily",
            daily,
            ("Opportunity", "Quote", "Product2"),
            special=chronic,
            failure_rate=0.0,
            source="salesforce",
        ),
        plan(
            "Zendesk → Postgres",
            "daily",
            daily,
            ("Ticket", "User"),
            failure_rate=0.0,
            special={-1: {"status": "completed", "record_scale": 0.02}},
        ),
        plan(
            "Marketo → Snowflake",
            "daily",
            daily,
            ("Lead", "Activity"),
            inflight=("running",),
            special={  # started by hand 5 hours ago, and still running: stuck
                -1: {
                    "created_at": now - timedelta(hours=5, seconds=20),
                    "started_at": now - timedelta(hours=5),
                }
            },
        ),
        plan("Legacy MySQL → Snowflake", "daily", 60, ("orders",), active=False),
    ]


def demo(args: argparse.Namespace) -> int:
    db = Path(args.duckdb).resolve()
    target = Target(duckdb_path=str(db))  # a path it cannot use is exit 2 before anything
    replace_demo_file(db)  # the demo starts from scratch every time
    work = Path(tempfile.mkdtemp(prefix="polytomic-etl-demo-"))
    target.pipelines_dir = str(work)
    now = datetime.now(UTC)
    try:
        with Sandbox(seed=2026, plans=demo_plans(now), now=None) as sandbox:
            print(f"sandbox: serving a simulated Polytomic API at {sandbox.base_url}")
            source_args = {"base_url": sandbox.base_url, "api_key": sandbox.api_key}
            summary = logged_run(target, source_args, DEMO, after_load=refresh_views)
            print(summary.line())
        render(target, html=args.html, since=None, sync=None, out=print)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    sql = f"{_this_command()} sql --duckdb {shlex.quote(str(db))}"
    print(
        f"\nwrote {args.html}. Query the warehouse with SQL (the dataset is the default schema):\n"
        f'  {sql} "SELECT name, health, health_reason FROM sync_health"\n'
        f'  {sql} "SELECT * FROM incidents"\n'
        f"  {sql}          # an interactive prompt"
    )
    return 0


def replace_demo_file(db: Path) -> None:
    """Delete `db` (and its write-ahead log) when an earlier demo made it and no process has
    it open; any other file there is a usage error (exit 2), and stays as it is."""
    wal = db.with_name(db.name + ".wal")
    if not db.exists() and not wal.exists():
        return
    if not db.exists():
        problem: str | None = f"is gone, but its write-ahead log {wal.name} is there"
    else:
        problem = "is not a file" if not db.is_file() else _not_the_demos(db)
    if problem is None:
        problem = _held(db)  # read-only by a DuckDB shell or a BI tool: no deletion either
    if problem is not None:
        raise UsageError(
            f"--duckdb {db} {problem}; the demo replaces only a DuckDB file an earlier demo "
            "made: pass another --duckdb path"
        )
    db.unlink()
    wal.unlink(missing_ok=True)


def _not_the_demos(db: Path) -> str | None:
    """Why `db` is not a file an earlier demo made (None: it is, or it has no tables): every
    row of its run logs (`etl_runs`) has mode 'demo'."""
    import duckdb

    try:
        con = duckdb.connect(str(db), read_only=True)
    except duckdb.Error as exc:
        holder = duckdb_lock_holder(str(exc))
        return f"is open in another process (pid {holder})" if holder else "is no DuckDB file"
    try:
        tables = con.execute(
            "select table_schema, table_name from information_schema.tables"
            " where table_catalog = current_database()"
        ).fetchall()
        logs = ['"{}".etl_runs'.format(s.replace('"', '""')) for s, t in tables if t == "etl_runs"]
        if tables and not logs:
            return "is a DuckDB file with tables and no run log of a demo"
        for log in logs:
            (runs, demos), *_ = con.execute(
                f"select count(*), count(*) filter (where mode = '{DEMO}') from {log}"
            ).fetchall()
            if runs != demos or not runs:
                return "holds runs other than the demo's (in etl_runs)"
        return None
    finally:
        con.close()


def _held(db: Path) -> str | None:
    """Another process has `db` open (a write connection would wait for it), or None."""
    import duckdb

    try:
        duckdb.connect(str(db)).close()
    except duckdb.Error as exc:
        holder = duckdb_lock_holder(str(exc))
        return f"is open in another process (pid {holder})" if holder else "cannot be opened"
    return None


def _this_command() -> str:
    """`polytomic-etl` when that is on PATH, else the path it was started by (`make demo`)."""
    started = Path(sys.argv[0]) if sys.argv and sys.argv[0] else None
    on_path = shutil.which("polytomic-etl")
    if started is None or started.name != "polytomic-etl":
        return "polytomic-etl"
    if on_path and Path(on_path).resolve() == started.resolve():
        return "polytomic-etl"
    return shlex.quote(str(started))
