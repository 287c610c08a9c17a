"""`--bench-full` selects the issue's sizes for `make bench`; without it the bench run is tiny."""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--bench-full",
        action="store_true",
        default=False,
        help="run the benchmark suite at the issue's full sizes (minutes)",
    )
