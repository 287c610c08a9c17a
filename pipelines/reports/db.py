"""One DB-API connection to DuckDB or Postgres, with ``%s`` bind parameters on both.

Values never become SQL text: every statement the reports send takes them as parameters.
Identifiers (the dataset name) are checked by ``views.check`` before they reach any text.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class Db:
    """``connection`` is a ``duckdb.DuckDBPyConnection`` or a psycopg2 connection."""

    def __init__(self, connection: Any, dialect: str) -> None:
        self.connection = connection
        self.dialect = dialect

    def rows(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        return self._run(sql, args)[1]

    def dicts(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        names, rows = self._run(sql, args)
        return [dict(zip(names, row, strict=True)) for row in rows]

    def execute(self, sql: str, *args: Any) -> None:
        self._run(sql, args)

    def _run(self, sql: str, args: tuple[Any, ...]) -> tuple[list[str], list[tuple[Any, ...]]]:
        if self.dialect == "duckdb":
            # the connection itself, not a cursor: a DuckDB cursor is another connection
            # (and another transaction)
            con = self.connection
            if args:
                con.execute(sql.replace("%s", "?"), list(args))
            else:
                con.execute(sql)
            return _fetch(con)
        with self.connection.cursor() as cur:
            cur.execute(sql, args or None)  # no parameters: a literal `%` stays as it is
            return _fetch(cur)

    @contextmanager
    def transaction(self) -> Iterator[Db]:
        """One transaction: committed when the block ends, rolled back when it raises."""
        con = self.connection
        if self.dialect == "duckdb":
            con.begin()
        else:
            autocommit = con.autocommit
            if autocommit:
                con.autocommit = False
        try:
            yield self
            con.commit()
        except BaseException:
            con.rollback()
            raise
        finally:
            if self.dialect != "duckdb" and autocommit:
                con.autocommit = True


def _fetch(cur: Any) -> tuple[list[str], list[tuple[Any, ...]]]:
    if cur.description is None:
        return [], []
    return [d[0] for d in cur.description], [tuple(r) for r in cur.fetchall()]
