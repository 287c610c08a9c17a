"""The same run loads into PostgreSQL (127.0.0.1:5432, trust auth) with dlt's credentials."""

from __future__ import annotations

import pytest

from tests.conftest import POSTGRES_DSN, ts

DSN = POSTGRES_DSN  # no password: trust auth, as on a developer laptop


@pytest.fixture
def pg_dataset(postgres_dataset: str) -> str:
    return postgres_dataset


def _query(sql: str) -> list[tuple]:
    import psycopg2

    with psycopg2.connect(DSN) as con, con.cursor() as cur:
        cur.execute(sql)
        return cur.fetchall()


@pytest.mark.postgres
def test_postgres_round_trip_merges_and_replaces_child_rows(make_sandbox, make_etl, pg_dataset):
    sb = make_sandbox(seed=61, syncs=2, executions=120, schemas=(2, 4))
    etl = make_etl(sb, DESTINATION__POSTGRES__CREDENTIALS=DSN)
    args = ("--destination", "postgres", "--dataset", pg_dataset)

    def run() -> dict:
        code, out, err = etl.cli("run", "--json", *args)
        assert code == 0, err
        return __import__("json").loads(out)

    first = run()
    assert first["executions"] == len(sb.truth_executions())
    types = dict(
        _query(
            "SELECT table_name || '.' || column_name, data_type FROM information_schema.columns "
            f"WHERE table_schema = '{pg_dataset}'"
        )
    )
    assert types["bulk_sync_executions.updated_at"] == "timestamp with time zone"
    assert types["bulk_sync_executions__schemas.completed_at"] == "timestamp with time zone"
    assert types["bulk_syncs.default_schedule"] == "jsonb"

    sync_id = sb.sync_ids()[0]
    sb.advance(120)
    shrunk = sb.reupdate(sync_id, keep_schemas=1)
    new = sb.add_executions(sync_id, n=3)
    second = run()
    assert second["executions"] >= 4

    truth = {e["id"]: e for e in sb.truth_executions()}
    rows = _query(
        f"SELECT id, status, record_count, updated_at FROM {pg_dataset}.bulk_sync_executions"
    )
    assert {r[0] for r in rows} == set(truth)
    for exec_id, status, count, updated in rows:
        assert (status, count, ts(updated)) == (
            truth[exec_id]["status"],
            truth[exec_id]["record_count"],
            ts(truth[exec_id]["updated_at"]),
        )
    children = sorted(
        _query(
            f'SELECT execution_id, "schema", status, record_count FROM {pg_dataset}.'
            "bulk_sync_executions__schemas"
        )
    )
    want = sorted(
        (s["execution_id"], s["schema"], s["status"], s["record_count"]) for s in sb.truth_schemas()
    )
    assert children == want
    assert len([c for c in children if c[0] == shrunk]) == 1
    assert all(n in truth for n in new)
    assert run()["executions"] == 0  # idle incremental run
