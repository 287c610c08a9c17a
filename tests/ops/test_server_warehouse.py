"""Trust part 3, server warehouses: shards at the same time, odd dataset names, NUL bytes."""

from __future__ import annotations

import subprocess
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from pipelines.sandbox import Sandbox, SyncPlan
from tests.conftest import PINNED_NOW, Etl, assert_matches_truth
from tests.reliability.conftest import PG_DSN, PgEtl
from tests.reliability.helpers import cli_env, finish

pytestmark = pytest.mark.postgres
# dlt requires a password field; the local server's trust auth ignores it.
DSN = PG_DSN.replace("postgres@", "postgres:postgres@")


def _pg_etl(sb: Sandbox, tmp: Any, dataset: str) -> PgEtl:
    return PgEtl(
        sandbox=sb, tmp=tmp, db_path=tmp / "unused.duckdb", dataset=dataset, credentials=DSN
    )


def _drop(dataset: str) -> None:
    import psycopg2

    with psycopg2.connect(PG_DSN) as con, con.cursor() as cur:
        cur.execute(
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE %s", (f"{dataset.lower()}%",)
        )
        for (schema,) in cur.fetchall():
            cur.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture
def datasets(postgres_dataset: str) -> Iterator[list[str]]:
    made: list[str] = []
    yield made
    for dataset in made:
        _drop(dataset)


def _shard_race(tmp_path: Any, seed: int, datasets: list[str]) -> None:
    dataset = f"race_{uuid.uuid4().hex[:8]}"
    datasets.append(dataset)
    with Sandbox(seed=seed, syncs=6, executions=40, now=PINNED_NOW) as sb:
        etl = _pg_etl(sb, tmp_path / dataset, dataset)
        etl.tmp.mkdir(parents=True)
        procs = {
            shard: subprocess.Popen(
                [*_cli(etl), "run", "--shard", shard, *etl.args("run")[1:]],
                env=cli_env(etl),
                cwd=etl.tmp,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for shard in ("0/2", "1/2")
        }
        outcomes = {shard: finish(proc) for shard, proc in procs.items()}
        for shard, outcome in outcomes.items():
            assert outcome.code in (0, 1, 3), outcome.err
            assert "Traceback" not in outcome.err
            if outcome.code != 0:  # the next run completes the data
                again = subprocess.run(
                    [*_cli(etl), "run", "--shard", shard, *etl.args("run")[1:]],
                    env=cli_env(etl),
                    cwd=etl.tmp,
                    capture_output=True,
                    text=True,
                    timeout=180,
                )
                assert again.returncode == 0, again.stderr
        assert_matches_truth(etl)


def _cli(etl: Etl) -> list[str]:
    from tests.reliability.helpers import CLI

    return [str(CLI)]


def test_two_shards_started_together_into_one_postgres_dataset_lose_nothing(tmp_path, datasets):
    for seed in range(3):
        _shard_race(tmp_path, 500 + seed, datasets)


@pytest.mark.soak
def test_two_shards_started_together_ten_times(tmp_path, datasets):
    for seed in range(10):
        _shard_race(tmp_path, 600 + seed, datasets)


def test_a_second_run_of_one_target_from_another_pipelines_dir_exits_3(
    make_sandbox, tmp_path, datasets
):
    sb = make_sandbox(seed=510, syncs=2, executions=300)
    dataset = f"lock_{uuid.uuid4().hex[:8]}"
    datasets.append(dataset)
    first, second = _pg_etl(sb, tmp_path / "a", dataset), _pg_etl(sb, tmp_path / "b", dataset)
    for etl in (first, second):
        etl.tmp.mkdir()
    walking, released = threading.Event(), threading.Event()

    def hold_the_first_run(s: Sandbox, record: Any) -> None:
        if record.kind == "list_executions" and not released.is_set():
            walking.set()
            released.wait(60)  # the first run stays mid-walk until the second has tried

    sb.add_hook(hold_the_first_run)
    slow = subprocess.Popen(
        [*_cli(first), *first.args("run")],
        env=cli_env(first),
        cwd=first.tmp,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert walking.wait(60), "the first run never reached the API"
        code, _, err = second.cli("run")
    finally:
        released.set()
    assert code == 3 and "warehouse" in err
    assert finish(slow).code == 0
    assert_matches_truth(first)


@pytest.mark.parametrize("destination", ["duckdb", "postgres"])
def test_a_dataset_name_that_dlt_normalises_is_used_everywhere(
    make_sandbox, make_etl, tmp_path, datasets, destination
):
    sb = make_sandbox(seed=511, syncs=2, executions=40)
    typed = f"Rev2Case-{uuid.uuid4().hex[:4]}"
    stored = typed.lower().replace("-", "_").replace("rev2case", "rev2_case")
    datasets.append(stored)
    if destination == "postgres":
        etl: Etl = _pg_etl(sb, tmp_path, typed)
    else:
        etl = make_etl(sb)
    extra = () if destination == "postgres" else ("--dataset", typed)
    code, _, err = etl.cli("run", *extra)
    assert code == 0, err
    assert f"stored as '{stored}'" in err
    code, _, err = etl.cli("report", *extra)
    assert code == 0, err
    count = f"SELECT count(*) FROM {stored}.bulk_sync_executions"
    rows = etl.query(count) if destination == "duckdb" else _pg(count)
    assert rows == [(len(sb.truth_executions()),)]


def _pg(sql: str) -> list[tuple[Any, ...]]:
    import psycopg2

    with psycopg2.connect(PG_DSN) as con, con.cursor() as cur:
        cur.execute(sql)
        return cur.fetchall()


def test_nul_bytes_give_the_same_rows_on_duckdb_and_postgres(
    make_sandbox, make_etl, tmp_path, postgres_dataset
):
    names = ("Oppty", "Opp\x00ty", "Lead\x00", "Contact")
    sb = make_sandbox(seed=512, plans=[SyncPlan(executions=30, schemas=names, inflight=())])
    duck = make_etl(sb)
    duck.run()
    pg = _pg_etl(sb, tmp_path, postgres_dataset)
    pg.run()
    sql = 'SELECT execution_id, "schema", record_count FROM polytomic.bulk_sync_executions__schemas'
    on_duckdb = sorted(duck.query(sql))
    on_postgres = sorted(pg.query(sql))
    assert on_duckdb == on_postgres
    assert len(on_duckdb) == len(sb.truth_schemas())
    assert {r[1] for r in on_duckdb} == {"Oppty", "Opp\ufffdty", "Lead\ufffd", "Contact"}
