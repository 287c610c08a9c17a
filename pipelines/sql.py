"""`polytomic-etl sql`: run SQL against the warehouse, read-only.

    polytomic-etl sql "SELECT * FROM sync_health"        an aligned table
    polytomic-etl sql --csv "SELECT ..." > out.csv        CSV with a header row
    polytomic-etl sql --json "SELECT ..."                 a JSON array of objects per statement
    polytomic-etl sql < checks.sql                        statements from stdin, in order
    polytomic-etl sql                                     on a terminal: a `polytomic>` prompt

It takes the target options of `report` (`--duckdb`, `--destination`, `--dataset`); the
dataset is the default schema, so tables and views need no prefix.  Statements run in order,
each result printed; the first that fails stops the rest.  Bad SQL, or a statement that would
write, is one line on stderr and exit 2; a DuckDB file a load holds is exit 1 (try again).
At the prompt a statement ends with `;` and may span lines, an error is one line and the
prompt goes on, and `.quit`, `\\q` or Ctrl-D leave.  Table cells show control characters as
escapes (names come from the API) and NULL as `NULL`.

Never blocks a load.  A DuckDB file held open by any process, even read-only, makes a writer
in another process fail, so every statement opens the file, reads its whole result, and
closes it before printing; the prompt holds nothing while it waits.  So a SET or a TEMP table
lasts one statement.  On Postgres every statement is a transaction of its own, ended before
the result is printed, so no lock outlives it.

Read-only, everywhere:

* DuckDB is opened with ``read_only=True``, which refuses INSERT, UPDATE, CREATE, DROP and
  the like.  That does not stop COPY ... TO, EXPORT DATABASE, ATTACH of another file,
  INSTALL/LOAD of extensions or ``read_csv('/etc/passwd')``, so the connection is opened with
  ``enable_external_access=false`` too (no file or network access beyond the warehouse), and
  then ``lock_configuration=true`` is set, so no SET can undo that.  The cost: no reading of
  other files, no extensions that are not built in; `sql` is for the warehouse, not files.
* Postgres: ``search_path`` is the dataset, the session is read-only, and each statement runs
  after ``SET TRANSACTION READ ONLY`` in a transaction that is then rolled back.
* Elsewhere (dlt's SQL client) no engine setting is portable, so only statements starting
  with SELECT, WITH, SHOW, DESCRIBE, EXPLAIN, VALUES or TABLE are sent.

This guards against mistakes; it is not a security boundary.  A user who must not write
should have a warehouse role that can only read.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import math
import re
import sys
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.output import EXIT_OK, UsageError, one_line
from pipelines.reports.db import Db
from pipelines.reports.terminal import display_width, printable

if TYPE_CHECKING:
    from pipelines.target import Target

# (column names, rows), or None for a statement that returns no result set
Result = tuple[list[str], list[tuple[Any, ...]]] | None
PROMPT, MORE = "polytomic> ", "       ...> "
QUIT = (".quit", ".exit", "\\q", "quit", "exit")
# what DuckDB may touch besides its own file: nothing (from the start, not after a SET)
DUCKDB_CONFIG = {"enable_external_access": False}
# then: no progress bar on stdout (it would corrupt CSV and JSON); no SET can change any of it
DUCKDB_SETTINGS = "SET enable_progress_bar = false; SET lock_configuration = true"
READ_STATEMENTS = ("select", "with", "show", "describe", "desc", "explain", "values", "table")
# a quoted string or name, a comment, a dollar-quoted body; an unterminated one; `;`
_TOKEN = re.compile(
    r"""(?P<done>'(?:[^']|'')*'|"(?:[^"]|"")*"|--[^\n]*|/\*.*?\*/|(?P<tag>\$\w*\$).*?(?P=tag))"""
    r"""|(?P<open>['"]|/\*|\$\w*\$)|(?P<end>;)|[^'"$;/-]+|.""",
    re.S,
)


def sql(args: argparse.Namespace, target: Target) -> int:
    """``polytomic-etl sql``: returns the exit code."""
    if args.csv and args.json:
        raise UsageError("sql: --csv and --json cannot be combined")
    session = DuckDbSession(target) if target.destination == "duckdb" else ServerSession(target)
    out = Output("json" if args.json else "csv" if args.csv else "table", args.quiet)
    if args.statement is None and sys.stdin is not None and sys.stdin.isatty():
        return prompt(session, out, target.describe(), args.quiet)
    text = args.statement if args.statement is not None else (sys.stdin and sys.stdin.read())
    statements = session.split(text or "")
    if not statements:
        raise UsageError("sql: no SQL given")
    for statement in statements:
        out(session.run(statement))
    return EXIT_OK


def prompt(session: Session, out: Output, where: str, quiet: bool) -> int:
    """Read statements ending with `;` until `.quit` or EOF; reconnect for every one."""
    with contextlib.suppress(ImportError):
        import readline  # noqa: F401  (line editing and in-session history)
    if not quiet:
        print(printable(f"polytomic-etl sql: {where}, read-only. End with ';'; .quit leaves."))
    buffer = ""
    while True:
        try:
            line = input(MORE if buffer else PROMPT)
        except EOFError:
            print()
            return EXIT_OK
        except KeyboardInterrupt:  # drop the statement being typed, like psql
            print()
            buffer = ""
            continue
        if not buffer and line.strip().rstrip(";") in QUIT:
            return EXIT_OK
        buffer += line + "\n"
        if not _code(buffer):  # an empty line or a comment is no statement to continue
            buffer = ""
            continue
        done, rest = split_sql(buffer)
        if not done or _code(rest):
            continue
        text, buffer = buffer, ""
        try:
            for statement in session.split(text):
                out(session.run(statement))
        except KeyboardInterrupt:
            print("polytomic-etl: interrupted", file=sys.stderr)
        except Exception as exc:  # one line, and the prompt goes on
            print(f"polytomic-etl: {printable(one_line(exc))}", file=sys.stderr)


class Session:
    def split(self, text: str) -> list[str]:
        done, rest = split_sql(text)
        return [s for s in [*done, rest] if _code(s)]

    def run(self, statement: str) -> Result:
        raise NotImplementedError


class DuckDbSession(Session):
    """One read-only, hardened connection per statement, closed before anything is printed."""

    def __init__(self, target: Target) -> None:
        self.path, self.dataset = str(target.duckdb_path), target.dataset

    def split(self, text: str) -> list[str]:
        import duckdb

        with duckdb.connect(":memory:", config=DUCKDB_CONFIG) as parser:
            try:
                return [s.query for s in parser.extract_statements(text)]
            except duckdb.Error as exc:
                raise UsageError(f"sql: {one_line(exc)}") from exc

    def run(self, statement: str) -> Result:
        import duckdb

        if not Path(self.path).is_file():  # connecting must not create it
            raise UsageError(
                f"sql: no warehouse at {self.path}: check --duckdb, or run `polytomic-etl run` "
                "first"
            )
        try:
            con = duckdb.connect(self.path, read_only=True, config=DUCKDB_CONFIG)
        except duckdb.IOException as exc:
            from pipelines.target import DuckDBLocked, duckdb_lock_holder

            holder = duckdb_lock_holder(str(exc))
            if holder is None:
                raise UsageError(f"sql: {one_line(exc)}") from exc
            raise DuckDBLocked(
                f"sql: warehouse file {self.path} is locked by another process (pid {holder}), "
                "a load or a DuckDB shell: try again when it has finished"
            ) from exc
        try:
            con.execute(DUCKDB_SETTINGS)
            _dataset_exists(Db(con, "duckdb"), self.dataset, self.path)
            con.execute(f"SET schema = '{self.dataset.replace(chr(39), chr(39) * 2)}'")
            return _fetch(con.execute(statement))
        except duckdb.Error as exc:
            raise UsageError(f"sql: {one_line(exc)}") from exc
        finally:
            con.close()


class ServerSession(Session):
    """Postgres in a read-only transaction; other dlt destinations read statements only."""

    def __init__(self, target: Target) -> None:
        from pipelines.reporting import dialect_of

        self.target, self.pipeline = target, target.pipeline()
        self.dialect = dialect_of(self.pipeline)

    def run(self, statement: str) -> Result:
        from dlt.destinations.exceptions import DatabaseException, DatabaseTransientException

        if self.dialect != "postgres":
            _read_statement(statement, self.target.destination)
        try:
            with self.pipeline.sql_client() as client:
                if self.dialect == "postgres":
                    return self._postgres(client.native_connection, statement)
                with client.execute_query(statement) as cur:
                    return _fetch(cur)
        except DatabaseTransientException:
            raise  # the server, not the statement: exit 1
        except DatabaseException as exc:  # DatabaseTerminalException, an undefined relation
            raise UsageError(f"sql: {one_line(exc)}") from exc

    def _postgres(self, con: Any, statement: str) -> Result:
        import psycopg2

        dataset = self.target.dataset
        try:
            con.autocommit = True
            db = Db(con, "postgres")
            quoted = '"' + dataset.replace('"', '""') + '"'
            db.execute("SELECT set_config('search_path', %s, false)", f"{quoted}, public")
            db.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
            _dataset_exists(db, dataset, self.target.destination)
            con.autocommit = False
            with con.cursor() as cur:
                cur.execute("SET TRANSACTION READ ONLY")
                cur.execute(statement)  # no parameters: a `%` in the SQL stays as it is
                return _fetch(cur)
        except psycopg2.Error as exc:
            lost = isinstance(exc, psycopg2.OperationalError | psycopg2.InterfaceError)
            if lost and not isinstance(exc, psycopg2.errors.QueryCanceled):
                raise  # the server went away: exit 1
            raise UsageError(f"sql: {one_line(exc)}") from exc
        finally:
            with contextlib.suppress(Exception):
                con.rollback()


def _dataset_exists(db: Db, dataset: str, where: str) -> None:
    if not db.rows(
        "SELECT 1 FROM information_schema.schemata WHERE schema_name = %s "
        "AND catalog_name = current_database()",
        dataset,
    ):
        raise UsageError(
            f"sql: no dataset {dataset!r} in {where}: check --dataset, or run "
            "`polytomic-etl run` first"
        )


def _read_statement(statement: str, destination: str) -> None:
    words = re.findall(r"[a-z]+", _code(statement).lower())
    if not words or words[0] not in READ_STATEMENTS:
        raise UsageError(
            f"sql: only SELECT, WITH, SHOW, DESCRIBE, EXPLAIN, VALUES or TABLE statements run "
            f"on {destination}, where read-only cannot be enforced"
        )


def split_sql(text: str) -> tuple[list[str], str]:
    """Statements ended by `;` outside quotes, comments and dollar quotes; the rest after."""
    done, start = [], 0
    for match in _TOKEN.finditer(text):
        if match.lastgroup == "open":
            break
        if match.lastgroup == "end":
            done.append(text[start : match.end()])
            start = match.end()
    return [s for s in done if _code(s)], text[start:]


def _code(text: str) -> str:
    """``text`` without comments and `;`; an unterminated quote or comment counts as code."""
    parts = []
    for match in _TOKEN.finditer(text):
        if match.lastgroup == "open":
            parts.append(text[match.start() :])
            break
        comment = match.lastgroup == "done" and match.group().startswith(("--", "/*"))
        if match.lastgroup != "end" and not comment:
            parts.append(match.group())
    return "".join(parts).strip()


def _fetch(cur: Any) -> Result:
    if cur.description is None:
        return None
    return [str(d[0]) for d in cur.description], [tuple(r) for r in cur.fetchall()]


class Output:
    """Prints each result as a table, CSV or JSON (`[]` for no result set); nothing if quiet."""

    def __init__(self, style: str, quiet: bool) -> None:
        self.style, self.quiet, self.printed = style, quiet, 0

    def __call__(self, result: Result) -> None:
        if self.quiet or (result is None and self.style != "json"):
            return
        names, rows = result or ([], [])
        if self.style == "json":
            keys = _unique(names)  # `SELECT 1 x, 2 x` keeps both, as x and x_2
            objects = [{k: _json_safe(v) for k, v in zip(keys, row, strict=True)} for row in rows]
            print(json.dumps(objects, default=_json_value, allow_nan=False))
        elif self.style == "csv":
            writer = csv.writer(sys.stdout, lineterminator="\n")
            writer.writerow(names)
            writer.writerows([["" if v is None else _text(v) for v in row] for row in rows])
        else:
            print(("\n" if self.printed else "") + table(names, rows))
        self.printed += 1


def table(names: list[str], rows: list[tuple[Any, ...]]) -> str:
    """An aligned table: numbers to the right, a dashed line under the header, a row count."""
    heads = [printable(n) for n in names]
    cells = [["NULL" if v is None else printable(_text(v)) for v in row] for row in rows]
    columns = list(zip(heads, *cells, strict=True))
    widths = [max(display_width(c) for c in column) for column in columns]
    right = [
        any(_number(r[i]) for r in rows) and all(_number(r[i]) or r[i] is None for r in rows)
        for i in range(len(names))
    ]

    def line(values: list[str]) -> str:
        padded = []
        for value, width, is_right in zip(values, widths, right, strict=True):
            fill = " " * (width - display_width(value))
            padded.append(fill + value if is_right else value + fill)
        return "  ".join(padded).rstrip()

    footer = f"({len(rows)} row{'' if len(rows) == 1 else 's'})"
    return "\n".join([line(heads), "  ".join("-" * w for w in widths), *map(line, cells), footer])


def _number(value: Any) -> bool:
    return isinstance(value, int | float | Decimal) and not isinstance(value, bool)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, bytes | bytearray | memoryview):
        return "\\x" + bytes(value).hex()
    return str(value)


def _unique(names: list[str]) -> list[str]:
    seen: set[str] = set()
    out = []
    for name in names:
        key, n = name, 1
        while key in seen:
            n += 1
            key = f"{name}_{n}"
        seen.add(key)
        out.append(key)
    return out


def _json_safe(value: Any) -> Any:
    """JSON has no NaN or Infinity: they become null, as in most JSON encoders for SQL."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    return value


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, Decimal) and value.is_finite():
        if value == value.to_integral_value():
            return int(value)
        # A float that would round the value (more than 15 significant digits) stays text.
        return float(value) if Decimal(repr(float(value))) == value else str(value)
    if isinstance(value, Decimal):
        return None  # NaN, Infinity
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    return str(value)  # UUID, an infinite Decimal and the like
