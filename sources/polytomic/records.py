"""Turn raw API records into rows: typed timestamps and counts, ids pushed into child rows.

This is the only place that looks inside a record. A record without an `id` or a parsable
`updated_at` cannot be merged or placed on the cursor, so it is quarantined, never loaded.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime
from typing import Any

from . import settings

_FRACTION = re.compile(r"(\.\d{6})\d+")  # Go prints up to nanoseconds; Python keeps microseconds


def parse_ts(value: Any) -> datetime | None:
    """Parse any RFC 3339 timestamp (`…:41Z`, `…:41.5Z`, `…:41.123456789Z`) to aware UTC."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(_FRACTION.sub(r"\1", value.strip()))
    except ValueError:
        return None
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def iso(value: datetime) -> str:
    """The one string form used in state: fixed width, so it also sorts correctly."""
    return value.astimezone(UTC).isoformat(timespec="microseconds")


_INT64 = range(-(2**63), 2**63)


def _int_or_none(value: Any) -> int | None:
    """An int that fits the warehouse's bigint, or None."""
    number: int | None = None
    if isinstance(value, bool | int):
        number = int(value)
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, str):
        try:
            number = int(value.strip())
        except ValueError:
            return None
    return number if number is not None and number in _INT64 else None


def _bool_or_none(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return None


def _typed(record: dict[str, Any]) -> dict[str, Any]:
    """Coerce the known fields so a wrong type never forks a column into a variant.

    Timestamps stay text here; `tables.to_arrow` parses whole columns at once.
    """
    row = dict(record)
    for name in settings.EXECUTION_TIMESTAMPS:
        if name in row and not isinstance(row[name], str):
            row[name] = None
    for name in settings.EXECUTION_COUNTS:
        if name in row:
            row[name] = _int_or_none(row[name])
    for name in settings.EXECUTION_BOOLEANS:
        if name in row:
            row[name] = _bool_or_none(row[name])
    for name in ("status", "status_message", "type", "version", "output_name"):
        if name in row and row[name] is not None and not isinstance(row[name], str):
            row[name] = json.dumps(row[name])
    return row


def schemas_present(record: dict[str, Any]) -> bool:
    """A list, even an empty one, is an answer; a missing key, null or another type is not."""
    return isinstance(record.get("schemas"), list)


UPDATED = "__updated_at"  # the parsed cursor value, kept beside the row until it is loaded


def execution_row(record: dict[str, Any], sync_id: str) -> dict[str, Any]:
    """A typed execution row with `bulk_sync_id`, whose schema rows carry both ids."""
    row = _typed(record)
    row[UPDATED] = parse_ts(record.get("updated_at"))
    row["bulk_sync_id"] = sync_id
    children = []
    for item in record.get("schemas") or []:
        if not isinstance(item, dict) or not isinstance(item.get("schema"), str):
            continue  # a schema row without a name has no key: it cannot be kept unique
        child = _typed(item)
        child["execution_id"] = row["id"]
        child["bulk_sync_id"] = sync_id
        children.append(child)
    row["schemas"] = children
    return row


def rejection(record: Any) -> str | None:
    """Why a record cannot be merged, or None when it can."""
    if not isinstance(record, dict):
        return f"record is {type(record).__name__}, not an object"
    if not isinstance(record.get("id"), str) or not record["id"]:
        return "missing or non-string id"
    if parse_ts(record.get("updated_at")) is None:
        return "missing or unparsable updated_at"
    return None


def rejected_row(record: Any, sync_id: str, reason: str) -> dict[str, Any]:
    """One row per (sync, record): the same bad record seen again only moves `last_seen_at`."""
    raw = json.dumps(record, default=str, sort_keys=True)
    now = datetime.now(UTC)
    return {
        "bulk_sync_id": sync_id,
        "record_hash": hashlib.sha256(raw.encode()).hexdigest()[:32],
        "reason": reason,
        "raw": raw[:10_000],
        "rejected_at": now,
        "last_seen_at": now,
    }


def without_nul(value: Any) -> Any:
    """NUL becomes U+FFFD in every string, nested ones too (see `tables._without_nul`)."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd") if "\x00" in value else value
    if isinstance(value, dict):
        return {without_nul(k): without_nul(v) for k, v in value.items()}
    if isinstance(value, list):
        return [without_nul(v) for v in value]
    return value


def sync_row(record: dict[str, Any], seen_at: datetime) -> dict[str, Any]:
    row = without_nul(dict(record))
    for name in ("created_at", "updated_at", "data_cutoff_timestamp"):
        if name in row:
            row[name] = parse_ts(row[name])
    row["last_seen_at"] = seen_at
    return row
