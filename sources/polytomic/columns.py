"""Column hints of the tables the source writes: plain dicts for dlt, no Arrow needed.

Kept apart from `tables.py` so that defining the source imports no pyarrow: commands that
only read (`check`, `sql`, `report`) start faster.
"""

from __future__ import annotations

from typing import Any

from dlt.common.schema.typing import TColumnSchema

from . import settings


def timestamp_hints(**hints: Any) -> TColumnSchema:
    """A timestamp column's hints: a new dict each time (dlt writes a column's name into its
    hints, so columns sharing one dict would all end up named like the last of them)."""
    return {"data_type": "timestamp", "timezone": True, **hints}  # type: ignore[typeddict-item]


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
    "created_at": timestamp_hints(),
    "started_at": timestamp_hints(),
    "completed_at": timestamp_hints(),
    # The newest version wins should one load ever hold an execution twice.
    "updated_at": timestamp_hints(dedup_sort="desc"),
    # Set when the API confirms the execution is gone (see recheck.py); a re-load clears it.
    "deleted_at": timestamp_hints(),
}
SCHEMA_COLUMNS: dict[str, TColumnSchema] = {
    "execution_id": {"data_type": "text", "nullable": False},
    "bulk_sync_id": {"data_type": "text"},
    "schema": {"data_type": "text"},
    "status": {"data_type": "text"},
    "status_message": {"data_type": "text"},
    "output_name": {"data_type": "text"},
    "version": {"data_type": "text"},
    **{name: timestamp_hints() for name in settings.EXECUTION_TIMESTAMPS},
    **{name: {"data_type": "bigint"} for name in settings.EXECUTION_COUNTS},
    "_tombstone": {"data_type": "bool", "hard_delete": True},
}
REJECTED_COLUMNS: dict[str, TColumnSchema] = {
    "bulk_sync_id": {"data_type": "text"},
    "record_hash": {"data_type": "text"},
    "reason": {"data_type": "text"},
    "raw": {"data_type": "text"},
    "rejected_at": timestamp_hints(),
    "last_seen_at": timestamp_hints(),
}
