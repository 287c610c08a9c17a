"""Unknown keys in the tool's config sections: a typo such as `baseurl` is otherwise silently
ignored, and the run goes on with a default the user meant to change.

Each unknown key gives one warning naming the closest known key; with `--strict` it is a
usage error (exit 2). Keys are read from the TOML files dlt reads and from the environment.
"""

from __future__ import annotations

import difflib
import inspect
import logging
import os
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pipelines.output import UsageError

log = logging.getLogger("polytomic_etl")

# Run control the CLI passes itself; never read from config.
RUN_CONTROL = ("backfill_since", "backfill_until", "full_reload", "context")
TOOL_KEYS = ("keep_load_packages", "lock_wait_seconds")


def known_keys() -> dict[tuple[str, ...], set[str]]:
    """Per section path, the keys the tool reads there."""
    from pipelines.reports.settings import SECTION, SETTINGS
    from sources.polytomic import polytomic_source

    source = set(inspect.signature(polytomic_source).parameters) - set(RUN_CONTROL)
    return {
        ("sources", "polytomic"): source,
        ("sources", "polytomic", "polytomic_source"): source,
        ("polytomic_etl",): set(TOOL_KEYS),
        (SECTION,): {setting.name for setting in SETTINGS},
    }


def unknown_keys() -> list[str]:
    """One message per unknown key: where it was found and the closest known key."""
    known = known_keys()
    found = []
    for where, path, key in _configured_keys(known):
        close = difflib.get_close_matches(key, sorted(known[path]), n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]}?" if close else ""
        found.append(f"unknown setting {'.'.join((*path, key))} in {where}{hint}")
    return found


def check(strict: bool) -> None:
    """Warn about each unknown key; with `strict`, refuse to run (exit 2)."""
    problems = unknown_keys()
    if strict and problems:
        raise UsageError(f"{problems[0]} (--strict)")
    for problem in problems:
        log.warning("%s", problem)


def _configured_keys(
    known: dict[tuple[str, ...], set[str]],
) -> Iterator[tuple[str, tuple[str, ...], str]]:
    for path in known:
        prefix = "__".join(p.upper() for p in path) + "__"
        for name in os.environ:
            rest = name[len(prefix) :] if name.startswith(prefix) else ""
            if rest and "__" not in rest and rest.lower() not in known[path]:
                yield f"the environment ({name})", path, rest.lower()
    for file in _toml_files():
        try:
            doc = tomllib.loads(file.read_text())
        except (OSError, ValueError):
            continue  # dlt reports a broken file itself, with its line and column
        for path in known:
            section: Any = doc
            for part in path:
                section = section.get(part) if isinstance(section, dict) else None
            if not isinstance(section, dict):
                continue
            for key, value in section.items():
                nested = isinstance(value, dict) and (*path, key) in known
                if not nested and key not in known[path]:
                    yield str(file), path, key


def _toml_files() -> list[Path]:
    try:
        from dlt.common.configuration.container import Container
        from dlt.common.configuration.specs.pluggable_run_context import PluggableRunContext

        providers = Container()[PluggableRunContext].providers.providers
    except Exception:
        return []
    files = [Path(p) for v in providers for p in getattr(v, "present_locations", []) or []]
    return [f for f in files if f.suffix == ".toml" and f.is_file()]
