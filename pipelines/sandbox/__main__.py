"""``python -m pipelines.sandbox``: serve a simulated Polytomic bulk-sync API."""

from .cli import main

raise SystemExit(main())
