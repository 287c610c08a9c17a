"""`--bench-full` selects the issue's sizes for `make bench`; without it the bench run is tiny.
`--bench-1m` (or `FULL=1` in the environment, as `make bench FULL=1` sets it) adds the 1M case."""

from __future__ import annotations

import os

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--bench-full",
        action="store_true",
        default=False,
        help="run the benchmark suite at the issue's full sizes (minutes)",
    )
    parser.addoption(
        "--bench-1m",
        action="store_true",
        # make exports command-line variables to recipes: `make bench FULL=1` lands here
        default=os.environ.get("FULL", "").strip().lower() in ("1", "true", "yes"),
        help="with --bench-full: add 1M executions over 2,000 syncs to B4 (also FULL=1)",
    )
