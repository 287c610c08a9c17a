"""`make bench`: the whole suite. `--bench-full` runs the issue's sizes (about 20 minutes)
and writes bench-results.json at the repository root; `--bench-1m` (`make bench FULL=1`) adds
the 1M case. Without `--bench-full` the tiny sizes run and write to a temporary directory,
leaving any real results alone.

Marked `bench`, so `make test` never runs it. It asserts only that figures were written.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.benchmarks import suite


@pytest.mark.bench
def test_benchmark_suite(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    full = bool(request.config.getoption("--bench-full", default=False))
    million = bool(request.config.getoption("--bench-1m", default=False))
    if full:
        results = suite.run_suite(suite.full_sizes(with_1m=million))
    else:
        results = suite.run_suite(suite.TINY, out=tmp_path / "bench-results.json")
    assert {*suite.BENCHES, "rows", "goals"} <= set(results)
