"""A seeded, warmed sandbox in its own process, so its CPU and memory are charged to no one.

    python tests/benchmarks/sandbox_proc.py --seed 1 --syncs 20 --executions 5000 [--latency-ms 100]

Generates the organisation with a pinned clock (identical for every contestant and every
repetition), renders every execution's JSON (`Sandbox.warm`), builds the orderings the
contestants ask for, clears the request log, then prints one JSON line on stdout:
`{"base_url", "api_key", "truth": {...}}`. It serves until SIGTERM or stdin closes.
Latency is switched on only after warming, so warming stays fast.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import urllib.request
from datetime import UTC, datetime
from typing import Any

from pipelines.sandbox import Sandbox

PINNED_NOW = datetime(2026, 11, 1, 12, 0, 0, tzinfo=UTC)
TERMINAL = frozenset({"completed", "failed", "canceled", "errors", "interrupted"})
# Orderings the contestants request: the terminal ascending walk, and the default listing
# (the product's in-flight snapshot). Building them up front keeps sorting out of the timings.
WARM_QUERIES = ("only_terminal=true&ascending=true&limit=100", "limit=100")


def truth(sb: Sandbox) -> dict[str, Any]:
    """Row counts a perfect first load holds. Counted on the store directly: the public
    `truth_executions()` deep-copies every row (12 s at 100k), which is only slower."""
    store = getattr(sb, "_store", None)
    if store is not None and hasattr(store, "executions"):
        rows = [
            (e.status, len(e.schemas))
            for by_id in store.executions.values()
            for e in by_id.values()
        ]
    else:
        rows = [(e["status"], len(e["schemas"])) for e in sb.truth_executions()]
    terminal = [n for status, n in rows if status in TERMINAL]
    return {
        "syncs": len(sb.sync_ids()),
        "executions": len(rows),
        "schema_rows": sum(n for _, n in rows),
        "terminal_executions": len(terminal),
        "terminal_schema_rows": sum(terminal),
    }


def warm(sb: Sandbox) -> None:
    sb.warm()
    headers = {"Authorization": f"Bearer {sb.api_key}"}
    for sync_id in sb.sync_ids():
        for query in WARM_QUERIES:
            url = f"{sb.base_url}/api/bulk/syncs/{sync_id}/executions?{query}"
            with urllib.request.urlopen(urllib.request.Request(url, headers=headers)) as resp:
                resp.read()
    sb.reset_log()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--syncs", type=int, default=3)
    parser.add_argument("--executions", type=int, default=200, help="per sync")
    parser.add_argument("--latency-ms", type=float, default=0.0)
    args = parser.parse_args(argv)

    sb = Sandbox(
        seed=args.seed,
        syncs=args.syncs,
        executions=args.executions,
        schemas=(1, 5),
        now=PINNED_NOW,
    )
    sb.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        warm(sb)
        facts = truth(sb)
        if args.latency_ms:
            sb.configure(latency_ms=args.latency_ms)
        print(
            json.dumps({"base_url": sb.base_url, "api_key": sb.api_key, "truth": facts}),
            flush=True,
        )

        def watch_stdin() -> None:
            sys.stdin.read()  # the parent holds the pipe; EOF means it went away
            stop.set()

        threading.Thread(target=watch_stdin, daemon=True).start()
        stop.wait()
    finally:
        sb.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
