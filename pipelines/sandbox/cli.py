"""Command line: serve a sandbox until Ctrl-C.

``polytomic-etl sandbox`` delegates to ``add_arguments`` and ``run``; ``python -m
pipelines.sandbox`` uses them directly.
"""

from __future__ import annotations

import argparse
import signal
import threading
from types import FrameType

from .generate import DEFAULT_FAILURE_RATE
from .options import LAST_PAGE_SHAPES
from .sandbox import Sandbox


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--syncs", type=int, default=3)
    parser.add_argument("--executions", type=int, default=200, help="per sync")
    parser.add_argument("--failure-rate", type=float, default=DEFAULT_FAILURE_RATE)
    parser.add_argument("--token-style", choices=("keyset", "offset"), default="keyset")
    parser.add_argument("--paginate-syncs", action="store_true", help="50 syncs per page")
    parser.add_argument(
        "--no-list-schemas", action="store_true", help="list items carry no 'schemas' key"
    )
    parser.add_argument("--last-page", choices=LAST_PAGE_SHAPES, default="null_token")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="added per request")


def build(args: argparse.Namespace) -> Sandbox:
    return Sandbox(
        seed=args.seed,
        syncs=args.syncs,
        executions=args.executions,
        failure_rate=args.failure_rate,
        token_style=args.token_style,
        port=args.port,
        host=args.host,
        paginate_syncs=args.paginate_syncs,
        list_includes_schemas=not args.no_list_schemas,
        last_page=args.last_page,
        latency_ms=args.latency_ms,
    )


def run(args: argparse.Namespace) -> int:
    sandbox = build(args)
    stop = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = signal.signal(signal.SIGTERM, _stop)
    sandbox.start()
    try:
        first = sandbox.sync_ids()[0] if sandbox.sync_ids() else "SYNC_ID"
        print(f"Polytomic sandbox serving at {sandbox.base_url}", flush=True)
        print(f"API key: {sandbox.api_key}", flush=True)
        print(
            f"Basic auth: {sandbox.organization_id}:{sandbox.deployment_key}",
            flush=True,
        )
        print(
            f'Try: curl -H "Authorization: Bearer {sandbox.api_key}" '
            f'-H "X-Polytomic-Version: 2025-09-18" '
            f'"{sandbox.base_url}/api/bulk/syncs/{first}/executions?limit=2"',
            flush=True,
        )
        print("Ctrl-C stops it.", flush=True)
        while not stop.wait(0.2):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        sandbox.stop()
        signal.signal(signal.SIGTERM, previous)
    print("sandbox stopped", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pipelines.sandbox",
        description="Serve a simulated Polytomic bulk-sync API.",
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))
