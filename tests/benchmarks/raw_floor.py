"""Contestant: the raw floor. Plain `requests` paging and a bulk insert into DuckDB, no dlt.

    python tests/benchmarks/raw_floor.py --duckdb PATH [--concurrency 4]

Reads `SOURCES__POLYTOMIC__BASE_URL` and `SOURCES__POLYTOMIC__API_KEY`. Walks the same
endpoints as the other contestants (`only_terminal=true&ascending=true&limit=100`, following
`pagination.next_page_token`), several syncs at once with one `requests.Session` per thread
(the same concurrency as the product's default), and writes three tables in dataset
`polytomic` through Arrow: `bulk_syncs`, `bulk_sync_executions` (typed timestamps) and the
flattened `bulk_sync_executions__schemas` (with `execution_id` and `bulk_sync_id`).

No retries, no state, no incremental logic, no schema evolution: this is what the work costs
when nothing else is done. Prints one JSON line with the rows written.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Any

import duckdb
import pyarrow as pa
import requests

API_VERSION = "2025-09-18"
PARAMS = {"only_terminal": "true", "ascending": "true", "limit": "100"}
TIMESTAMPS = ("created_at", "started_at", "completed_at", "updated_at")
EXECUTION_COLUMNS = (
    "id",
    "bulk_sync_id",
    "status",
    "status_message",
    "type",
    "fetch_mode",
    "output_disposition",
    "is_partial",
    "is_resync",
    "is_test",
    "version",
    "record_count",
    "error_count",
    "warning_count",
    *TIMESTAMPS,
)
SCHEMA_COLUMNS = (
    "execution_id",
    "bulk_sync_id",
    "schema",
    "output_name",
    "status",
    "status_message",
    "version",
    "record_count",
    "error_count",
    "warning_count",
    *TIMESTAMPS,
)

_local = threading.local()


def session(headers: dict[str, str]) -> requests.Session:
    s = getattr(_local, "session", None)
    if s is None:
        s = _local.session = requests.Session()
        s.headers.update(headers)
    return s


def walk(base_url: str, headers: dict[str, str], sync_id: str) -> list[dict[str, Any]]:
    url = f"{base_url}/api/bulk/syncs/{sync_id}/executions"
    rows: list[dict[str, Any]] = []
    token = None
    while True:
        params = dict(PARAMS, page_token=token) if token else PARAMS
        response = session(headers).get(url, params=params, timeout=60)
        response.raise_for_status()
        body = response.json()
        for record in body.get("data") or []:
            record["bulk_sync_id"] = sync_id
            rows.append(record)
        token = (body.get("pagination") or {}).get("next_page_token")
        if not token:
            return rows


def columns(rows: list[dict[str, Any]], names: tuple[str, ...]) -> pa.Table:
    return pa.table({name: [r.get(name) for r in rows] for name in names})


def select(names: tuple[str, ...]) -> str:
    return ", ".join(
        f'CAST("{n}" AS TIMESTAMPTZ) AS "{n}"' if n in TIMESTAMPS else f'"{n}"' for n in names
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duckdb", required=True)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args(argv)

    started = time.monotonic()
    base_url = os.environ["SOURCES__POLYTOMIC__BASE_URL"].rstrip("/")
    headers = {
        "Authorization": f"Bearer {os.environ['SOURCES__POLYTOMIC__API_KEY']}",
        "X-Polytomic-Version": API_VERSION,
        "Accept": "application/json",
    }
    syncs = session(headers).get(f"{base_url}/api/bulk/syncs", timeout=60).json()["data"]
    counts = {"bulk_syncs": len(syncs), "bulk_sync_executions": 0}
    counts["bulk_sync_executions__schemas"] = 0
    with duckdb.connect(args.duckdb) as con, ThreadPoolExecutor(args.concurrency) as pool:
        con.execute("CREATE SCHEMA IF NOT EXISTS polytomic")
        sync_table = pa.table(  # noqa: F841 - DuckDB reads Python variables by name
            {
                "id": [s["id"] for s in syncs],
                "name": [s.get("name") for s in syncs],
                "raw": [json.dumps(s) for s in syncs],
            }
        )
        con.execute("CREATE OR REPLACE TABLE polytomic.bulk_syncs AS SELECT * FROM sync_table")
        futures = [pool.submit(walk, base_url, headers, s["id"]) for s in syncs]
        first = True
        # Insert each sync as its walk finishes, so memory holds a few syncs, not all of them.
        for future in as_completed(futures):
            executions = future.result()
            schemas = [
                {**schema, "execution_id": row["id"], "bulk_sync_id": row["bulk_sync_id"]}
                for row in executions
                for schema in row.get("schemas") or []
            ]
            exec_table = columns(executions, EXECUTION_COLUMNS)  # noqa: F841
            schema_table = columns(schemas, SCHEMA_COLUMNS)  # noqa: F841
            for table, source, names in (
                ("bulk_sync_executions", "exec_table", EXECUTION_COLUMNS),
                ("bulk_sync_executions__schemas", "schema_table", SCHEMA_COLUMNS),
            ):
                head = (
                    f"CREATE OR REPLACE TABLE polytomic.{table} AS"
                    if first
                    else f"INSERT INTO polytomic.{table}"
                )
                con.execute(f"{head} SELECT {select(names)} FROM {source}")
            first = False
            counts["bulk_sync_executions"] += len(executions)
            counts["bulk_sync_executions__schemas"] += len(schemas)
    print(
        json.dumps(
            {
                "ok": True,
                "seconds": time.monotonic() - started,
                "row_counts": counts,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
