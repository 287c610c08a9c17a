"""Fixtures of the reliability suite: a reachable local Postgres, or a clear skip."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tests.conftest import Etl

PG_DSN = "postgresql://postgres@127.0.0.1:5432/test"


@dataclass
class PgEtl(Etl):
    """The same CLI helper, loading into a Postgres dataset of its own."""

    dataset: str = "polytomic"
    credentials: str = PG_DSN

    def env(self) -> dict[str, str]:
        return {**super().env(), "DESTINATION__POSTGRES__CREDENTIALS": self.credentials}

    def args(self, command: str, *extra: str) -> list[str]:
        where = ["--destination", "postgres", "--dataset", self.dataset]
        return [command, *where, "--pipelines-dir", str(self.tmp / "pl"), *extra]

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        import psycopg2

        with psycopg2.connect(PG_DSN) as con, con.cursor() as cur:
            cur.execute(sql.replace("polytomic.", f"{self.dataset}."))
            return cur.fetchall()

    def executions(self) -> dict[str, dict[str, Any]]:
        import psycopg2

        with psycopg2.connect(PG_DSN) as con, con.cursor() as cur:
            cur.execute(f"SELECT * FROM {self.dataset}.bulk_sync_executions")
            names = [d[0] for d in cur.description]
            return {r[names.index("id")]: dict(zip(names, r, strict=True)) for r in cur.fetchall()}
