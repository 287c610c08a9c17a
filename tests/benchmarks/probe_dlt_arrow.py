"""Probe, not a contestant: what dlt costs when a source yields Arrow tables.

    python tests/benchmarks/probe_dlt_arrow.py --duckdb PATH --pipelines-dir DIR

Same walk as `raw_floor.py` (plain `requests`, 4 threads), but the rows go through a dlt
pipeline as Arrow tables, one pair per sync: `bulk_sync_executions` merged on `id`, and
`bulk_sync_executions__schemas` as its own table merged with `execution_id` as merge key, so
re-loading an execution replaces all of its schema rows (Arrow skips dlt's nested tables and
their root keys). Timestamps are parsed by Arrow, not per row in Python. Parquet into DuckDB.

It estimates what `polytomic-etl` could reach on B1 if its hot path produced Arrow tables;
it has none of the product's state, checkpoints, retries or quarantine. Not run by the suite:
`python -m tests.benchmarks.suite` never calls it; run it by hand beside a sandbox.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Any

import dlt
import pyarrow as pa
import pyarrow.compute as pc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from raw_floor import (
    API_VERSION,
    EXECUTION_COLUMNS,
    SCHEMA_COLUMNS,
    TIMESTAMPS,
    session,
    walk,
)

TS = pa.timestamp("us", tz="UTC")


def table(rows: list[dict[str, Any]], names: tuple[str, ...]) -> pa.Table:
    columns = {}
    for name in names:
        values = pa.array([r.get(name) for r in rows])
        if name in TIMESTAMPS:
            # RFC 3339 with Z; Arrow's ISO-8601 cast takes any fraction up to nanoseconds
            values = pc.cast(values.cast(pa.string()), pa.timestamp("ns", tz="UTC")).cast(
                TS, safe=False
            )
        columns[name] = values
    return pa.table(columns)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duckdb", required=True)
    parser.add_argument("--pipelines-dir", required=True)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args(argv)
    base_url = os.environ["SOURCES__POLYTOMIC__BASE_URL"].rstrip("/")
    headers = {
        "Authorization": f"Bearer {os.environ['SOURCES__POLYTOMIC__API_KEY']}",
        "X-Polytomic-Version": API_VERSION,
        "Accept": "application/json",
    }

    @dlt.resource(name="bulk_syncs", primary_key="id", write_disposition="merge")
    def bulk_syncs() -> Iterator[Any]:
        syncs = session(headers).get(f"{base_url}/api/bulk/syncs", timeout=60).json()["data"]
        yield pa.table({"id": [s["id"] for s in syncs], "raw": [json.dumps(s) for s in syncs]})

    @dlt.resource(name="bulk_sync_executions", primary_key="id", write_disposition="merge")
    def executions() -> Iterator[Any]:
        syncs = session(headers).get(f"{base_url}/api/bulk/syncs", timeout=60).json()["data"]
        with ThreadPoolExecutor(args.concurrency) as pool:
            futures = [pool.submit(walk, base_url, headers, s["id"]) for s in syncs]
            for future in as_completed(futures):
                rows = future.result()
                schemas = [
                    {**sc, "execution_id": r["id"], "bulk_sync_id": r["bulk_sync_id"]}
                    for r in rows
                    for sc in r.get("schemas") or []
                ]
                yield table(rows, EXECUTION_COLUMNS)
                yield dlt.mark.with_hints(
                    table(schemas, SCHEMA_COLUMNS),
                    dlt.mark.make_hints(
                        table_name="bulk_sync_executions__schemas",
                        write_disposition="merge",
                        primary_key=("execution_id", "schema"),
                        merge_key="execution_id",
                    ),
                    create_table_variant=True,
                )

    pipeline = dlt.pipeline(
        pipeline_name="bench_dlt_arrow",
        destination=dlt.destinations.duckdb(args.duckdb),
        dataset_name="polytomic",
        pipelines_dir=args.pipelines_dir,
    )
    started = time.monotonic()
    pipeline.run([bulk_syncs(), executions()], loader_file_format="parquet")
    counts = pipeline.last_trace.last_normalize_info.row_counts
    print(json.dumps({"ok": True, "seconds": time.monotonic() - started, "row_counts": counts}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
