"""Contestant: what a dlt user would write instead, dlt's declarative `rest_api_source`.

    python tests/benchmarks/rest_api_contestant.py --duckdb PATH --pipelines-dir DIR

Reads `SOURCES__POLYTOMIC__BASE_URL` and `SOURCES__POLYTOMIC__API_KEY`, like the product.
Configured as well as the dlt docs allow (rest_api `basic.md`, `advanced.md`, and
`reference/performance.md`):

* parent `bulk_syncs`, child `bulk_sync_executions` on
  `bulk/syncs/{resources.bulk_syncs.id}/executions` with `only_terminal`, `ascending` and the
  maximum page size (`limit=100`), cursor paginator on `pagination.next_page_token`;
* the child is `parallelized` (dlt's extract thread pool walks several syncs at once);
* pages are yielded whole (rest_api does this by itself);
* `merge` on `id` with `dedup_sort` on `updated_at`; the nested `schemas` list becomes the
  `bulk_sync_executions__schemas` child table (`max_table_nesting=1`, as in the product);
* `loader_file_format="parquet"`, the same file format the product uses on DuckDB.

Extra dlt tuning (`[extract] workers`, normalize workers with file rotation) can be passed
as environment variables by the caller; see `suite.py` for what the benchmark sets.
Prints one JSON line: rows loaded per table and the seconds spent in `pipeline.run`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

import dlt
from dlt.sources.rest_api import rest_api_source

API_VERSION = "2025-09-18"


def config(base_url: str, api_key: str) -> dict[str, Any]:
    return {
        "client": {
            "base_url": base_url.rstrip("/") + "/api/",
            "auth": {"type": "bearer", "token": api_key},
            "headers": {"X-Polytomic-Version": API_VERSION},
            "paginator": {
                "type": "cursor",
                "cursor_path": "pagination.next_page_token",
                "cursor_param": "page_token",
            },
        },
        "resource_defaults": {
            "primary_key": "id",
            "write_disposition": "merge",
            "endpoint": {"data_selector": "data"},
        },
        "resources": [
            {
                "name": "bulk_syncs",
                "endpoint": {"path": "bulk/syncs"},
                # nested configuration stays JSON, as in the product's bulk_syncs table
                "max_table_nesting": 0,
            },
            {
                "name": "bulk_sync_executions",
                "endpoint": {
                    "path": "bulk/syncs/{resources.bulk_syncs.id}/executions",
                    "params": {"only_terminal": "true", "ascending": "true", "limit": 100},
                },
                "include_from_parent": ["id"],
                "parallelized": True,
                "columns": {
                    "updated_at": {
                        "data_type": "timestamp",
                        "timezone": True,
                        "dedup_sort": "desc",
                    }
                },
            },
        ],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duckdb", required=True)
    parser.add_argument("--pipelines-dir", required=True)
    parser.add_argument("--dataset", default="polytomic")
    args = parser.parse_args(argv)

    base_url = os.environ["SOURCES__POLYTOMIC__BASE_URL"]
    api_key = os.environ["SOURCES__POLYTOMIC__API_KEY"]
    source = rest_api_source(config(base_url, api_key), name="polytomic", max_table_nesting=1)
    pipeline = dlt.pipeline(
        pipeline_name="bench_rest_api",
        destination=dlt.destinations.duckdb(args.duckdb),
        dataset_name=args.dataset,
        pipelines_dir=args.pipelines_dir,
    )
    started = time.monotonic()
    pipeline.run(source, loader_file_format="parquet")
    seconds = time.monotonic() - started
    counts = pipeline.last_trace.last_normalize_info.row_counts
    print(json.dumps({"ok": True, "seconds": seconds, "row_counts": dict(counts)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
