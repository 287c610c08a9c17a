"""view_statements / create_views: order, placeholders, the clock and missing columns."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from importlib import resources

import pytest

from pipelines.reports.refresh import create_views
from pipelines.reports.views import OPTIONAL_COLUMNS, VIEWS, column_statements, view_statements

# Only the columns dlt is sure to create: everything in OPTIONAL_COLUMNS is missing.
MINIMAL_TABLES = {
    "bulk_syncs": "id text, name text, active boolean, default_schedule {json}, _dlt_id text",
    "bulk_sync_executions": "id text, bulk_sync_id text, status text, created_at timestamptz",
    "bulk_sync_executions__schemas": 'execution_id text, bulk_sync_id text, "schema" text, '
    "status text",
}


@pytest.mark.parametrize("dialect", ["duckdb", "postgres"])
def test_statements_are_ordered_and_filled_in(dialect):
    creates = view_statements(dialect, "my_data")
    alters = column_statements(dialect, "my_data")
    assert len(alters) == sum(len(cols) for cols in OPTIONAL_COLUMNS.values())
    assert all(s.startswith("alter table my_data.") for s in alters)
    created = [s.split("create or replace view my_data.", 1)[1].split()[0] for s in creates]
    assert created == list(VIEWS)
    for statement in creates:
        assert statement.startswith("--")  # each view states its definitions first
        assert "{" not in statement and "}" not in statement
        assert "drop " not in statement.lower()
    json_type = "JSON" if dialect == "duckdb" else "jsonb"
    add = "alter table my_data.{} add column if not exists {}"
    assert add.format("bulk_syncs", "deleted_at timestamp with time zone") in alters
    assert add.format("bulk_syncs", f"default_schedule {json_type}") in alters
    assert add.format("bulk_sync_executions", "deleted_at timestamp with time zone") in alters
    assert add.format("bulk_sync_executions__schemas", "_tombstone boolean") in alters


def test_dependencies_come_first():
    """A view only reads views created before it."""
    for i, name in enumerate(VIEWS):
        text = view_statements("duckdb", "d")[-len(VIEWS) + i]
        later = [other for other in VIEWS[i + 1 :] if f"d.{other}" in text]
        assert later == [], f"{name} reads {later}, created after it"


def test_sql_files_are_package_data_with_definitions():
    root = resources.files("pipelines.reports") / "sql"
    for name in VIEWS:
        text = (root / "common" / f"{name}.sql").read_text()
        assert text.startswith(f"-- {name}:"), name
        assert "{dataset}" in text


def test_bad_arguments():
    with pytest.raises(ValueError, match="dialect"):
        view_statements("sqlite", "polytomic")
    with pytest.raises(ValueError, match="identifier"):
        view_statements("duckdb", "polytomic; drop table x")
    with pytest.raises(ValueError, match="timezone"):
        view_statements("duckdb", "polytomic", now=datetime(2025, 1, 1))


def test_missing_optional_columns_are_added(backend):
    dataset = backend.new_dataset(MINIMAL_TABLES)
    try:
        backend.insert(
            f"{dataset}.bulk_syncs",
            [
                {
                    "id": "s1",
                    "name": "one",
                    "active": True,
                    "default_schedule": '{"frequency": "daily"}',
                    "_dlt_id": "x",
                }
            ],
        )
        backend.insert(
            f"{dataset}.bulk_sync_executions",
            [
                {
                    "id": "e1",
                    "bulk_sync_id": "s1",
                    "status": "running",
                    "created_at": datetime.now(UTC) - timedelta(hours=1),
                }
            ],
        )
        create_views(backend.connection, backend.dialect, dataset)
        create_views(backend.connection, backend.dialect, dataset)  # refreshing works too
        for name in VIEWS:
            backend.query(f"select * from {dataset}.{name}")
        (health,) = backend.query(f"select * from {dataset}.sync_health")
        assert (health["health"], health["in_flight_runs"]) == ("never_run", 1)
        assert health["deleted_at"] is None
        # the added column is the one the views read: a deleted execution is left out
        backend.execute(f"update {dataset}.bulk_sync_executions set deleted_at = created_at")
        (health,) = backend.query(f"select * from {dataset}.sync_health")
        assert (health["executions"], health["health_reason"]) == (0, "no executions loaded")
    finally:
        backend.drop_dataset(dataset)


def test_unpinned_clock_follows_the_database(backend):
    dataset = backend.new_dataset()
    try:
        create_views(backend.connection, backend.dialect, dataset)
        (row,) = backend.query(f"select now_ts from {dataset}.report_clock")
        assert abs(row["now_ts"] - datetime.now(UTC)) < timedelta(minutes=1)
        assert backend.query(f"select * from {dataset}.sync_health") == []
    finally:
        backend.drop_dataset(dataset)
