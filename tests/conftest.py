"""Shared fixtures: a sandbox API on loopback, an isolated pipeline dir, warehouse readers.

Ground truth comes from the sandbox only; nothing here imports the source's parsing code.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest

from pipelines.sandbox import Sandbox

PINNED_NOW = datetime(2026, 11, 1, 12, 0, 0, tzinfo=UTC)
POSTGRES_DSN = "postgresql://postgres@127.0.0.1:5432/test"


def ts(value: Any) -> datetime | None:
    """The test's own timestamp parser (independent of the source's)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    text = value.replace("Z", "+00:00")
    head, _, rest = text.partition(".")
    if rest:
        digits = "".join(c for c in rest if c.isdigit())
        tz = rest[len(digits) :]
        text = f"{head}.{digits[:6].ljust(6, '0')}{tz}"
    return datetime.fromisoformat(text).astimezone(UTC)


@dataclass
class Etl:
    """Runs the real CLI in-process against one sandbox and one DuckDB file."""

    sandbox: Sandbox
    tmp: Path
    db_path: Path
    extra_env: dict[str, str] = field(default_factory=dict)

    def env(self) -> dict[str, str]:
        return {
            "SOURCES__POLYTOMIC__API_KEY": self.sandbox.api_key,
            "SOURCES__POLYTOMIC__BASE_URL": self.sandbox.base_url,
            "SOURCES__POLYTOMIC__BACKOFF_FACTOR": "0.01",
            "SOURCES__POLYTOMIC__MAX_ATTEMPTS": "4",
            "SOURCES__POLYTOMIC__TIMEOUT_SECONDS": "5",
            # Request-count tests measure the walk alone; verification tests turn it on.
            "SOURCES__POLYTOMIC__VERIFY_PAGES_PER_RUN": "0",
            **self.extra_env,
        }

    def args(self, command: str, *extra: str) -> list[str]:
        base = [command, "--pipelines-dir", str(self.tmp / "pl")]
        if "--destination" not in extra:
            base += ["--duckdb", str(self.db_path)]
        return [*base, *extra]

    def cli(self, command: str, *extra: str) -> tuple[int, str, str]:
        from pipelines.cli import main

        out, err = io.StringIO(), io.StringIO()
        with environ(self.env()), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(self.args(command, *extra))
        return code, out.getvalue(), err.getvalue()

    def run(self, *extra: str) -> dict[str, Any]:
        code, out, err = self.cli("run", "--json", *extra)
        assert code == 0, f"exit {code}: {err}"
        return json.loads(out.strip().splitlines()[-1])

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        with duckdb.connect(str(self.db_path), read_only=True) as con:
            return con.execute(sql).fetchall()

    def executions(self) -> dict[str, dict[str, Any]]:
        with duckdb.connect(str(self.db_path), read_only=True) as con:
            cur = con.execute("SELECT * FROM polytomic.bulk_sync_executions")
            names = [d[0] for d in cur.description]
            return {r[names.index("id")]: dict(zip(names, r, strict=True)) for r in cur.fetchall()}

    def schema_rows(self) -> list[tuple[Any, ...]]:
        return self.query(
            'SELECT execution_id, bulk_sync_id, "schema", status, record_count, error_count '
            "FROM polytomic.bulk_sync_executions__schemas"
        )


def cli_as_typed(etl: Etl, *argv: str, **env: str) -> tuple[int, str, str]:
    """The CLI in-process as a user types it: no `--duckdb` added, only an isolated
    `--pipelines-dir`; `env` on top of the sandbox's, and no destination config but its own."""
    from pipelines.cli import main

    out, err = io.StringIO(), io.StringIO()
    dropped = [k for k in os.environ if k.startswith("DESTINATION__") and k not in env]
    argv = (argv[0], "--pipelines-dir", str(etl.tmp / "pl"), *argv[1:])
    with environ({**etl.env(), **env}, dropped), contextlib.redirect_stdout(out):
        with contextlib.redirect_stderr(err):
            code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


@contextlib.contextmanager
def environ(given: dict[str, str], dropped: Iterable[str] = ()) -> Iterator[None]:
    """`given` set and `dropped` removed for the block; only those keys are restored after,
    so defaults a module sets on import stay."""
    dropped = list(dropped)
    saved = {k: os.environ.get(k) for k in [*given, *dropped]}
    os.environ.update(given)
    for key in dropped:
        os.environ.pop(key, None)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def first_walk_page(sandbox: Sandbox, sync_id: str) -> dict[str, Any]:
    """The real first page of the catch-up walk, for tests that inject a mutated copy."""
    import requests

    return requests.get(
        f"{sandbox.base_url}/api/bulk/syncs/{sync_id}/executions",
        params={"only_terminal": "true", "ascending": "true", "limit": 100},
        headers={"Authorization": f"Bearer {sandbox.api_key}"},
        timeout=5,
    ).json()


def assert_matches_truth(
    etl: Etl, sync_ids: set[str] | None = None, exclude: set[str] | None = None
) -> None:
    """The warehouse equals the sandbox, row by row: ids, statuses, counts, times, children.

    `exclude` leaves out executions a test deliberately corrupted or deleted upstream.
    """
    skip = exclude or set()
    truth = {
        e["id"]: e
        for e in etl.sandbox.truth_executions()
        if (sync_ids is None or e["bulk_sync_id"] in sync_ids) and e["id"] not in skip
    }
    loaded = {k: v for k, v in etl.executions().items() if k not in skip}
    if sync_ids is not None:
        loaded = {k: v for k, v in loaded.items() if v["bulk_sync_id"] in sync_ids}
    missing, extra = sorted(set(truth) - set(loaded)), sorted(set(loaded) - set(truth))
    assert not missing and not extra, f"missing {missing[:5]}, extra {extra[:5]}"
    for exec_id, want in truth.items():
        got = loaded[exec_id]
        for name in ("bulk_sync_id", "status", "record_count", "error_count", "warning_count"):
            assert got[name] == want[name], (exec_id, name, got[name], want[name])
        for name in ("updated_at", "completed_at", "started_at", "created_at"):
            assert ts(got[name]) == ts(want.get(name)), (exec_id, name)
    want_children = sorted(
        (
            s["execution_id"],
            s["bulk_sync_id"],
            s["schema"],
            s["status"],
            s["record_count"],
            s["error_count"],
        )
        for s in etl.sandbox.truth_schemas()
        if s["execution_id"] in truth
    )
    got_children = sorted(r for r in etl.schema_rows() if r[0] in truth)
    assert got_children == want_children
    dupes = etl.query(
        'SELECT execution_id, "schema", count(*) FROM polytomic.bulk_sync_executions__schemas '
        "GROUP BY 1, 2 HAVING count(*) > 1"
    )
    assert dupes == []
    assert etl.query(
        "SELECT count(*) - count(DISTINCT id) FROM polytomic.bulk_sync_executions"
    ) == [(0,)]


@pytest.fixture
def make_sandbox() -> Iterator[Any]:
    started: list[Sandbox] = []

    def make(**kwargs: Any) -> Sandbox:
        kwargs.setdefault("now", PINNED_NOW)
        sb = Sandbox(**kwargs)
        sb.start()
        started.append(sb)
        return sb

    yield make
    for sb in started:
        sb.stop()


@pytest.fixture
def make_etl(tmp_path: Path) -> Any:
    def make(sandbox: Sandbox, name: str = "wh", **env: str) -> Etl:
        extra = {k if "__" in k else f"SOURCES__POLYTOMIC__{k}": v for k, v in env.items()}
        return Etl(
            sandbox=sandbox, tmp=tmp_path, db_path=tmp_path / f"{name}.duckdb", extra_env=extra
        )

    return make


@pytest.fixture
def postgres_dataset() -> Iterator[str]:
    """A fresh dataset name in the local Postgres; dropped afterwards.

    Skips when no Postgres answers at 127.0.0.1:5432, except in CI (CI=true), where a
    missing server is a failure.
    """
    try:
        import psycopg2

        psycopg2.connect(POSTGRES_DSN, connect_timeout=3).close()
    except Exception as exc:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true but no Postgres at {POSTGRES_DSN}: {exc}")
        pytest.skip(f"no Postgres answering at {POSTGRES_DSN} (trust auth, db test): {exc}")
    dataset = f"rel_{uuid.uuid4().hex[:10]}"
    yield dataset
    with psycopg2.connect(POSTGRES_DSN) as con, con.cursor() as cur:
        for schema in (dataset, f"{dataset}_staging"):
            cur.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
