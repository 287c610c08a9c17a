"""Rows to Arrow tables, each carrying the hints of the table it belongs to.

Arrow tables skip dlt's per-row normalizer, which was most of a first load's CPU. They also
skip dlt's nested tables and their root keys, so the schema rows are a table of their own,
merged with `execution_id` as merge key: loading an execution deletes all of its old schema
rows first. An execution that now has no schemas sends one tombstone row (`_tombstone`, a
dlt `hard_delete` column) so that its old schema rows are deleted too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import dlt
import pyarrow as pa
import pyarrow.compute as pc
from dlt.common.normalizers.naming.snake_case import NamingConvention
from dlt.common.schema.typing import TColumnSchema

from . import settings
from .columns import (
    EXECUTION_COLUMNS,
    REJECTED_COLUMNS,
    SCHEMA_COLUMNS,
)
from .records import UPDATED, parse_ts

EXECUTIONS = "bulk_sync_executions"
SCHEMAS = "bulk_sync_executions__schemas"
REJECTED = "rejected_records"


_UTC_US = pa.timestamp("us", tz="UTC")
_KNOWN = set(EXECUTION_COLUMNS) | set(SCHEMA_COLUMNS) | set(REJECTED_COLUMNS)


def to_arrow(rows: list[dict[str, Any]]) -> pa.Table:
    """Known columns keep their declared types; every other field is kept as text.

    An unknown field's JSON type may differ between pages, loads or runs (an int here, a
    string there): as text (strings as they are, anything else as JSON) it always merges.
    Its name is normalised here, and one that would collide with another column after dlt's
    normalisation (`recordCount` beside `record_count`, `Status` beside `status`) gets a
    numbered suffix instead of stopping the load. Columns are the union of every row's keys:
    Go omits empty fields, so the first row alone does not name them all.
    """
    keys = list(dict.fromkeys(k for row in rows for k in row))
    names = _column_names(keys)
    table = pa.table(
        {
            names[k]: [row.get(k) for row in rows]
            if k in _KNOWN
            else [_text(row.get(k)) for row in rows]
            for k in keys
        }
    )
    for name in settings.EXECUTION_TIMESTAMPS:
        if name in table.column_names:
            index = table.column_names.index(name)
            table = table.set_column(index, name, _timestamps(table.column(name)))
    return _without_nul(table)


def _without_nul(table: pa.Table) -> pa.Table:
    """NUL becomes U+FFFD in every text column, on every destination alike.

    Postgres cannot store NUL in text and dlt strips it there, so `Opp\x00ty` would merge
    into `Oppty` on Postgres only; (`execution_id`, `schema`) must stay unique everywhere.
    """
    for index, field in enumerate(table.schema):
        if pa.types.is_string(field.type) or pa.types.is_large_string(field.type):
            fixed = pc.replace_substring(table.column(index), "\x00", "\ufffd")
            table = table.set_column(index, field.name, fixed)
    return table


_NAMING = NamingConvention()
_RESERVED = frozenset(_KNOWN | {"_dlt_load_id", "_dlt_id", "schemas"})


def _column_names(keys: list[str]) -> dict[str, str]:
    out = {k: k for k in keys if k in _KNOWN}
    taken = set(_RESERVED)
    for key in sorted(k for k in keys if k not in _KNOWN):
        base = _NAMING.normalize_identifier(key)
        name, n = base, 2
        while name in taken:
            name, n = f"{base}_{n}", n + 1
        taken.add(name)
        out[key] = name
    return out


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, default=str, sort_keys=True)


def _timestamps(column: Any) -> Any:
    """Parse a whole column of RFC 3339 text in C; row by row only if some value is odd."""
    if pa.types.is_timestamp(column.type):
        return column
    if pa.types.is_null(column.type):
        return column.cast(_UTC_US)
    try:
        return column.cast(pa.timestamp("ns", tz="UTC")).cast(_UTC_US, safe=False)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return pa.array([parse_ts(v) for v in column.to_pylist()], type=_UTC_US)


def _hinted(table: pa.Table, name: str, columns: dict[str, TColumnSchema], **hints: Any) -> Any:
    """`table` with its table's hints, its Arrow schema agreeing with them.

    dlt writes into the column hints it is given (names, key flags): it gets copies, so the
    declarations above stay as written. Key columns and columns declared not null are not
    null in dlt's schema; the Arrow fields say so too, or dlt warns on every load that "several
    column hints were different".
    """
    columns = {column: {**hint} for column, hint in columns.items()}  # type: ignore[typeddict-item]
    keys = [hints.get("primary_key") or (), hints.get("merge_key") or ()]
    keyed = {k for key in keys for k in ([key] if isinstance(key, str) else key)}
    required = {
        column
        for column in {*keyed, *columns}
        if columns.get(column, {}).get("nullable", column not in keyed) is False
    }
    return dlt.mark.with_hints(
        _not_null(table, required),
        dlt.mark.make_hints(table_name=name, columns=columns, **hints),
        create_table_variant=True,
    )


def _not_null(table: pa.Table, names: set[str]) -> pa.Table:
    """Marks the fields in `names` not null, as long as they hold no null (Arrow checks)."""
    fields = [
        field.with_nullable(False)
        if field.name in names and field.nullable and table.column(field.name).null_count == 0
        else field
        for field in table.schema
    ]
    schema = pa.schema(fields, metadata=table.schema.metadata)
    return table if schema.equals(table.schema) else table.cast(schema)


@dataclass
class PageTables:
    """Executions and their schema rows as Arrow: compact while a load is being gathered."""

    executions: pa.Table
    children: pa.Table


def page_tables(rows: list[dict[str, Any]]) -> PageTables:
    """Split typed execution rows into the two tables (runs in the walking thread)."""
    executions, children = [], []
    for row in rows:
        schemas = row.pop("schemas")
        row.pop(UPDATED, None)
        executions.append(row)
        if schemas is None:
            continue  # its detail failed: its schema rows stay as they are for now
        if schemas:
            children.extend(schemas)
        else:
            children.append(  # deletes the old rows, then is dropped itself
                {
                    "execution_id": row["id"],
                    "bulk_sync_id": row["bulk_sync_id"],
                    "schema": "",
                    "_tombstone": True,
                }
            )
    return PageTables(to_arrow(executions), to_arrow(children))


def concat(parts: list[PageTables]) -> PageTables:
    """Several syncs' tables as one pair (their executions never overlap)."""
    options = {"promote_options": "permissive"}
    children = [p.children for p in parts if p.children.num_columns]
    return PageTables(
        pa.concat_tables([p.executions for p in parts], **options),
        pa.concat_tables(children, **options) if children else pa.table({}),
    )


def newest_versions(pages: list[PageTables]) -> PageTables:
    """One sync's pages of one load, each execution once, in its newest version.

    Its schema rows come from the same page as the version kept, so a load never mixes the
    schema rows of two versions. Repeats are rare (a row that moved mid-walk), so the
    common case is a plain concatenation.
    """
    options = {"promote_options": "permissive"}
    executions = pa.concat_tables([p.executions for p in pages], **options)
    children = pa.concat_tables([p.children for p in pages], **options)
    if pc.count_distinct(executions.column("id")).as_py() == executions.num_rows:
        return PageTables(executions, children)
    winner: dict[str, tuple[Any, int]] = {}
    for index, page in enumerate(pages):
        ids = page.executions.column("id").to_pylist()
        for exec_id, updated in zip(
            ids, page.executions.column("updated_at").to_pylist(), strict=True
        ):
            if exec_id not in winner or updated >= winner[exec_id][0]:
                winner[exec_id] = (updated, index)
    kept_exec, kept_children = [], []
    for index, page in enumerate(pages):
        ids = page.executions.column("id").to_pylist()
        keep = [winner[i][1] == index and ids.index(i) == n for n, i in enumerate(ids)]
        kept_exec.append(page.executions.filter(pa.array(keep)))
        if "execution_id" not in page.children.column_names:
            continue
        parents = page.children.column("execution_id").to_pylist()
        kept_children.append(
            page.children.filter(pa.array([winner[i][1] == index for i in parents]))
        )
    children = pa.concat_tables(kept_children, **options) if kept_children else pa.table({})
    return PageTables(pa.concat_tables(kept_exec, **options), children)


def execution_tables(tables: PageTables) -> list[Any]:
    """The two tables of a load, each with the hints of the table it belongs to."""
    hinted = [
        _hinted(
            tables.executions,
            EXECUTIONS,
            write_disposition="merge",
            primary_key="id",
            columns=EXECUTION_COLUMNS,
        ),
        _hinted(
            tables.children,
            SCHEMAS,
            write_disposition="merge",
            merge_key="execution_id",
            # The key also dedups the staging table should a killed load's copy be retried.
            primary_key=("execution_id", "schema"),
            columns=SCHEMA_COLUMNS,
        ),
    ]
    return hinted if tables.children.num_rows else hinted[:1]


def rejected_table(rows: list[dict[str, Any]]) -> Any:
    """Merged on (sync, hash of the raw record): one bad record is one row, however often."""
    unique = list({(r["bulk_sync_id"], r["record_hash"]): r for r in rows}.values())
    return _hinted(
        to_arrow(unique),
        REJECTED,
        write_disposition="merge",
        primary_key=("bulk_sync_id", "record_hash"),
        columns=REJECTED_COLUMNS,
    )
