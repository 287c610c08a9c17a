"""The benchmark suite of issues 6 and 13: B1-B5, medians, ratios, goals, one table.

    python -m tests.benchmarks.suite                 # default sizes (what `make bench` runs)
    python -m tests.benchmarks.suite --with-1m       # plus the 1M case (`make bench FULL=1`)
    python -m tests.benchmarks.suite --tiny          # a minute or two; the smoke test's
    python -m tests.benchmarks.suite --only B1,B3 --reps 1 --out /tmp/b.json
    python -m tests.benchmarks.suite --render bench-results.json   # the table again

`measure.py` runs one contestant and measures it, `cases.py` defines the benchmarks and
their sizes, `goals.py` reads the goals and renders the table. Writes `bench-results.json`
at the repository root (or `--out`) and prints one Markdown table (also `--markdown FILE`).
Nothing here asserts a speed: goals are evaluated and printed, never enforced.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import goals as goals_mod
from .cases import BENCHES, FULL, MILLION, TINY, Lab, Sizes, full_sizes
from .measure import CONTESTANTS, METRICS, PRODUCT, ROOT, SCRUB, log

__all__ = [
    "BENCHES",
    "CONTESTANTS",
    "FULL",
    "METRICS",
    "MILLION",
    "PRODUCT",
    "TINY",
    "full_sizes",
    "main",
    "run_suite",
    "tables",
]


def tables(results: dict[str, Any]) -> str:
    """The Markdown `make bench` prints (one table), from a results dict."""
    return goals_mod.table(results)


def code_fingerprint() -> str:
    """A hash of the code the contestants run. The package is installed in editable mode, so
    an edit to `sources/` or `pipelines/` during the suite changes what later runs measure."""
    digest = hashlib.sha256()
    for folder in ("sources", "pipelines"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            digest.update(str(path.relative_to(ROOT)).encode())
            with contextlib.suppress(OSError):
                digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def _meta(sizes: Sizes, env: dict[str, str]) -> dict[str, Any]:
    from importlib.metadata import version

    def _git() -> str | None:
        with contextlib.suppress(Exception):
            out = subprocess.run(
                ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
            )
            dirty = subprocess.run(
                ["git", "status", "--porcelain", "--untracked-files=no"],
                cwd=ROOT,
                capture_output=True,
                text=True,
            )
            return out.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
        return None

    mem_kb = 0
    with contextlib.suppress(OSError, ValueError, IndexError):
        mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "sizes": asdict(sizes),
        "env": env,
        "cpus": os.cpu_count(),
        "memory_gb": round(mem_kb / 1024 / 1024, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "dlt": version("dlt"),
        "duckdb": version("duckdb"),
        "pyarrow": version("pyarrow"),
        "root": str(ROOT),
        "git": _git(),
        "loadavg_at_start": Path("/proc/loadavg").read_text().split()[:3],
        "command": "python -m tests.benchmarks.suite " + " ".join(sys.argv[1:]),
    }


def run_suite(
    sizes: Sizes,
    only: list[str] | None = None,
    reps: int | None = None,
    out: Path | None = None,
    quiet: bool = False,
    concurrency: int | None = None,
    env: dict[str, str] | None = None,
    markdown: Path | None = None,
) -> dict[str, Any]:
    """Run the benchmarks (all, or `only`), write the results file, print the table.

    `env` is passed to every polytomic-etl run (the suite passes nothing else through: the
    caller's `SOURCES__*` and similar variables are scrubbed). `concurrency` sets
    `SOURCES__POLYTOMIC__CONCURRENCY` for B3 only."""
    log.quiet = quiet
    env = dict(env or {})
    started = time.perf_counter()
    results: dict[str, Any] = {"meta": _meta(sizes, env)}
    fingerprint = results["meta"]["code_fingerprint"] = code_fingerprint()
    changed: list[str] = []
    with tempfile.TemporaryDirectory(prefix="polytomic-bench-") as tmp:
        lab = Lab(Path(tmp), reps, env, concurrency)
        for name in only or list(BENCHES):
            bench_started = time.perf_counter()
            results[name] = BENCHES[name](sizes, lab)
            results[name]["seconds"] = time.perf_counter() - bench_started
            now = code_fingerprint()
            if now != fingerprint:
                changed.append(name)
                fingerprint = now
                log(f"  WARNING: sources/ or pipelines/ changed while {name} ran")
    results["meta"]["code_changed_during"] = changed
    results["meta"]["code_fingerprint_at_end"] = fingerprint
    results["meta"]["suite_seconds"] = time.perf_counter() - started
    results["meta"]["loadavg_at_end"] = Path("/proc/loadavg").read_text().split()[:3]
    rows = goals_mod.rows(results)
    results["rows"] = [asdict(r) for r in rows]
    results["goals"] = goals_mod.goals(rows)
    path = out or ROOT / "bench-results.json"
    path.write_text(json.dumps(results, indent=2, default=str) + "\n")
    text = goals_mod.table(results, rows)
    if markdown:
        markdown.write_text(text)
    log("")
    log(text)
    log(f"results in {path}")
    return results


def _env_pair(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key, value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks.suite", description=__doc__)
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--full", action="store_true", help="the issue's sizes (default)")
    size.add_argument("--tiny", action="store_true", help="the smoke sizes (a minute or two)")
    parser.add_argument(
        "--with-1m",
        action="store_true",
        help=f"B4: add 1M executions over {MILLION.syncs:,} syncs (make bench FULL=1)",
    )
    parser.add_argument("--only", help=f"comma-separated subset of {','.join(BENCHES)}")
    parser.add_argument("--reps", type=int, help="override repetitions for every benchmark")
    parser.add_argument(
        "--concurrency", type=int, help="B3: set SOURCES__POLYTOMIC__CONCURRENCY (default: unset)"
    )
    parser.add_argument(
        "--env",
        type=_env_pair,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=f"environment for every {PRODUCT} run, repeatable, e.g. "
        "SOURCES__POLYTOMIC__MAX_ROWS_PER_LOAD=50000 (inherited "
        f"{', '.join(p + '*' for p in SCRUB)} are scrubbed)",
    )
    parser.add_argument("--out", type=Path, help="results file (default ./bench-results.json)")
    parser.add_argument("--markdown", type=Path, help="also write the table to this file")
    parser.add_argument("--render", type=Path, help="print the table of a results file; no run")
    args = parser.parse_args(argv)
    if args.render:
        sys.stdout.write(tables(json.loads(args.render.read_text())))
        return 0
    only = [b.strip().upper() for b in args.only.split(",")] if args.only else None
    for name in only or []:
        if name not in BENCHES:
            parser.error(f"unknown benchmark {name!r}; choose from {', '.join(BENCHES)}")
    sizes = TINY if args.tiny else full_sizes(args.with_1m)
    run_suite(
        sizes,
        only,
        args.reps,
        args.out,
        concurrency=args.concurrency,
        env=dict(args.env),
        markdown=args.markdown,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
