"""Rows to Arrow tables, each carrying the hints of the table it belongs to.

Arrow tables skip dlt's per-row normalizer, which was most of a first load's CPU. They also
skip dlt's nested tables and their root keys, so the schema rows are a table of their own,
merged with `execution_id` as merge key: loading an execution deletes all of its old schema
rows first. An execution that now has no schemas sends one tombstone row (`_tombstone`, a
dlt `hard_delete` column) so that its old schema rows are deleted too.
"""

from __future__ import annotations

import json
from typing import Any

import dlt
import pyarrow as pa
from dlt.common.schema.typing import TColumnSchema

from . import settings

EXECUTIONS = "bulk_sync_executions"
SCHEMAS = "bulk_sync_executions__schemas"
REJECTED = "rejected_records"

_TS: TColumnSchema = {"data_type": "timestamp", "timezone": True}
# Declared so that every column the reporting views read exists from the first load, even
# when all its values are null so far (dlt only creates a column once it has a type).
EXECUTION_COLUMNS: dict[str, TColumnSchema] = {
    "id": {"data_type": "text", "nullable": False},
    "bulk_sync_id": {"data_type": "text"},
    "status": {"data_type": "text"},
    "type": {"data_type": "text"},
    "status_message": {"data_type": "text"},
    "version": {"data_type": "text"},
    **{name: {"data_type": "bigint"} for name in settings.EXECUTION_COUNTS},
    **{name: {"data_type": "bool"} for name in settings.EXECUTION_BOOLEANS},
    "created_at": _TS,
    "started_at": _TS,
    "completed_at": _TS,
    # The newest version wins should one load ever hold an execution twice.
    "updated_at": {**_TS, "dedup_sort": "desc"},
}
SCHEMA_COLUMNS: dict[str, TColumnSchema] = {
    "execution_id": {"data_type": "text", "nullable": False},
    "bulk_sync_id": {"data_type": "text"},
    "schema": {"data_type": "text"},
    "status": {"data_type": "text"},
    "status_message": {"data_type": "text"},
    "output_name": {"data_type": "text"},
    "version": {"data_type": "text"},
    **{name: _TS for name in settings.EXECUTION_TIMESTAMPS},
    **{name: {"data_type": "bigint"} for name in settings.EXECUTION_COUNTS},
    "_tombstone": {"data_type": "bool", "hard_delete": True},
}
REJECTED_COLUMNS: dict[str, TColumnSchema] = {
    "bulk_sync_id": {"data_type": "text"},
    "reason": {"data_type": "text"},
    "raw": {"data_type": "text"},
    "rejected_at": _TS,
}
_KNOWN = set(EXECUTION_COLUMNS) | set(SCHEMA_COLUMNS) | set(REJECTED_COLUMNS)


def to_arrow(rows: list[dict[str, Any]]) -> pa.Table:
    """Arrow infers the types; an unknown field whose type varies is kept as JSON text."""
    try:
        return pa.Table.from_pylist(rows)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        fixed = [
            {
                k: (v if k in _KNOWN or v is None else json.dumps(v, default=str))
                for k, v in r.items()
            }
            for r in rows
        ]
        return pa.Table.from_pylist(fixed)


def _hinted(table: pa.Table, name: str, **hints: Any) -> Any:
    return dlt.mark.with_hints(
        table, dlt.mark.make_hints(table_name=name, **hints), create_table_variant=True
    )


def execution_tables(rows: list[dict[str, Any]]) -> list[Any]:
    """The executions table and the schema-rows table of one batch, with their hints."""
    executions, children = [], []
    for row in rows:
        schemas = row.pop("schemas")
        executions.append(row)
        if schemas:
            children.extend(schemas)
        else:
            children.append(
                {"execution_id": row["id"], "bulk_sync_id": row["bulk_sync_id"], "_tombstone": True}
            )
    return [
        _hinted(
            to_arrow(executions),
            EXECUTIONS,
            write_disposition="merge",
            primary_key="id",
            columns=EXECUTION_COLUMNS,
        ),
        _hinted(
            to_arrow(children),
            SCHEMAS,
            write_disposition="merge",
            merge_key="execution_id",
            columns=SCHEMA_COLUMNS,
        ),
    ]


def rejected_table(rows: list[dict[str, Any]]) -> Any:
    return _hinted(to_arrow(rows), REJECTED, write_disposition="append", columns=REJECTED_COLUMNS)
