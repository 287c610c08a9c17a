"""Refreshing the views: one transaction, never a gap for readers, serialised, versioned.

Every test runs on DuckDB and on PostgreSQL (see conftest.py).
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest

from pipelines.reports.db import Db
from pipelines.reports.refresh import VERSION_TABLE, create_views, installed_version
from pipelines.reports.views import VIEWS, views_version
from tests.reports.history import NOW, History, build

REFRESH_SECONDS = 4  # per backend: a reader against two refreshing threads


def test_readers_never_see_an_error_or_a_missing_view_while_views_refresh(backend, load):
    wh = load(build())
    stop = threading.Event()
    errors: list[str] = []
    counts = {"reads": 0, "refreshes": 0}

    def guarded(body):
        def run():
            try:
                body()
            except Exception as exc:  # any failure is the test's failure
                errors.append(f"{threading.current_thread().name}: {exc!r}")
                stop.set()

        return run

    def reader():
        db = Db(backend.connect(), backend.dialect)
        while not stop.is_set():
            for name in VIEWS:
                db.rows(f"select count(*) from {wh.dataset}.{name}")
                counts["reads"] += 1

    def refresher(offset: int):
        def body():
            connection = backend.connect()
            i = 0
            while not stop.is_set():
                # each pinned clock is another definition: every refresh really replaces
                i += 1
                when = NOW + timedelta(seconds=2 * i + offset)
                create_views(connection, backend.dialect, wh.dataset, now=when)
                counts["refreshes"] += 1

        return body

    threads = [threading.Thread(target=guarded(reader), name="reader")] + [
        threading.Thread(target=guarded(refresher(k)), name=f"refresh-{k}") for k in (0, 1)
    ]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + REFRESH_SECONDS
    while time.monotonic() < deadline and not stop.is_set():
        time.sleep(0.05)
    stop.set()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    assert counts["reads"] > len(VIEWS) and counts["refreshes"] >= 4, counts


def test_a_refresh_is_one_transaction(backend, load, monkeypatch):
    """A refresh that fails half-way leaves the views as they were, not half replaced."""
    wh = load(build())
    before = wh.query("select now_ts from {ds}.report_clock")
    import pipelines.reports.refresh as refresh

    real = refresh.view_statements

    def broken(*args, **kwargs):
        statements = real(*args, **kwargs)
        return [*statements[:-1], "select no_such_column from no_such_table"]

    monkeypatch.setattr(refresh, "view_statements", broken)
    with pytest.raises(Exception, match="no_such"):
        create_views(backend.connection, backend.dialect, wh.dataset, now=NOW + timedelta(days=1))
    assert wh.query("select now_ts from {ds}.report_clock") == before
    for name in VIEWS:
        wh.query(f"select count(*) from {{ds}}.{name}")


def test_views_whose_columns_changed_are_replaced(backend, load):
    """An older view set with other columns, and a view built on it, gives way in one go."""
    wh = load(build())
    for name in reversed(VIEWS):
        backend.execute(f"drop view {wh.dataset}.{name}")
    backend.execute(f"create view {wh.dataset}.report_clock as select 1 as other_column")
    backend.execute(
        f"create view {wh.dataset}.execution_outcomes as select * from {wh.dataset}.report_clock"
    )
    create_views(backend.connection, backend.dialect, wh.dataset, now=NOW)
    assert wh.query("select now_ts from {ds}.report_clock") == [{"now_ts": NOW}]
    assert len(wh.view("sync_health")) == len(build().syncs)


@pytest.mark.postgres
def test_postgres_refreshes_of_one_dataset_take_turns(postgres):
    """A transaction-level advisory lock on the dataset: a second refresh waits its turn."""
    dataset = postgres.load(History())
    holder = postgres.connect()
    holder.autocommit = False
    with holder.cursor() as cur:
        cur.execute("select pg_advisory_xact_lock(hashtext('polytomic_etl:' || %s))", (dataset,))
    done = threading.Event()
    worker = threading.Thread(
        target=lambda: (create_views(postgres.connect(), "postgres", dataset), done.set())
    )
    worker.start()
    try:
        assert not done.wait(1.0), "the refresh ran while another held the dataset's lock"
    finally:
        holder.commit()
    assert done.wait(20)
    worker.join()
    postgres.drop_dataset(dataset)


def test_the_view_set_version_is_recorded_with_the_views(backend, load):
    wh = load(History())
    db = Db(backend.connection, backend.dialect)
    assert installed_version(db, wh.dataset) == views_version(backend.dialect)
    (row,) = wh.query(f"select version, created_at from {{ds}}.{VERSION_TABLE}")
    assert row["version"] == views_version(backend.dialect)
    # views pinned to a clock (as load() pins them) are the same version as unpinned ones
    backend.execute(f"drop table {wh.dataset}.{VERSION_TABLE}")
    assert installed_version(db, wh.dataset) is None


def test_a_sync_without_executions_is_never_run_before_any_execution_is_loaded(backend):
    """dlt creates no execution tables until it has seen an execution: the views stand in."""
    dataset = backend.new_dataset(
        {"bulk_syncs": "id text, name text, active boolean, created_at timestamptz"}
    )
    try:
        backend.insert(
            f"{dataset}.bulk_syncs",
            [{"id": "s1", "name": "new", "active": True, "created_at": NOW - timedelta(days=1)}],
        )
        create_views(backend.connection, backend.dialect, dataset, now=NOW)
        (health,) = backend.query(f"select * from {dataset}.sync_health")
        assert (health["name"], health["health"], health["executions"]) == ("new", "never_run", 0)
        for name in VIEWS:
            backend.query(f"select * from {dataset}.{name}")
        # the first executions arrive: the next refresh reads the real table
        backend.execute(
            f"create table {dataset}.bulk_sync_executions (id text, bulk_sync_id text, "
            "status text, started_at timestamptz, completed_at timestamptz)"
        )
        backend.insert(
            f"{dataset}.bulk_sync_executions",
            [
                {
                    "id": "e1",
                    "bulk_sync_id": "s1",
                    "status": "completed",
                    "started_at": NOW - timedelta(hours=2),
                    "completed_at": NOW - timedelta(hours=1),
                }
            ],
        )
        create_views(backend.connection, backend.dialect, dataset, now=NOW)
        (health,) = backend.query(f"select * from {dataset}.sync_health")
        assert (health["health"], health["executions"]) == ("healthy", 1)
    finally:
        backend.drop_dataset(dataset)
