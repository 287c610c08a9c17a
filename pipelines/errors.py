"""Why a command failed, as one line that leads with the cause: dlt's configuration errors.

dlt reports missing settings, unreadable TOML files and unknown destinations in multi-line
messages; these are usage errors (exit 2) with the setting and its environment variable,
the file, line and column, or the closest known name. dlt is imported only when an error
is being explained.
"""

from __future__ import annotations

import difflib
import os
import re
import sys
from pathlib import Path
from typing import Any

from pipelines.output import UsageError


def config_error(exc: BaseException) -> UsageError | None:
    """dlt's missing or invalid destination configuration, as one line naming the setting."""
    if type(exc).__name__ == "ConfigError" and str(exc).startswith("no credentials"):
        return UsageError(f"{exc}; {_searched()}")
    if isinstance(exc, UsageError) or "dlt" not in sys.modules:
        return None
    from dlt.common.configuration.exceptions import ConfigFieldMissingException

    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if type(cause).__name__ == "TomlProviderReadException":
            return UsageError(_toml_message(cause))
        if isinstance(cause, ConfigFieldMissingException):
            return UsageError(_missing_message(cause))
        if type(cause).__name__ in UNKNOWN_DESTINATION:
            return UsageError(_unknown_destination(cause))
        if type(cause).__name__ == "MissingDependencyException":
            return UsageError(_missing_dependency(cause))
        if _is_config(cause):
            first = str(cause).strip().splitlines()
            return UsageError(f"invalid configuration: {first[0] if first else type(cause)}")
        cause = getattr(cause, "exception", None) or cause.__cause__ or cause.__context__
    return None


UNKNOWN_DESTINATION = (
    "UnknownDestinationModule",
    "InvalidDestinationReference",
    "DestinationTypeResolutionException",
)


def _is_config(exc: BaseException) -> bool:
    from dlt.common.configuration.exceptions import ConfigurationException

    return isinstance(exc, ConfigurationException)


def _toml_message(exc: Any) -> str:
    """`./.dlt/secrets.toml line 2, col 14: <what tomlkit says>`."""
    cause = exc.__cause__ or exc.__context__
    detail = str(cause or exc).strip().splitlines()[0] if str(cause or exc).strip() else ""
    detail = re.sub(r" at line \d+ col \d+$", "", detail)
    line, col = getattr(cause, "line", None), getattr(cause, "col", None)
    where = _broken_toml(list(getattr(exc, "full_paths", []) or [])) or str(
        getattr(exc, "file_name", "a .dlt TOML file")
    )
    at = f" line {line}, col {col}" if line else ""
    return f"{where}{at}: {detail}"


def _broken_toml(paths: list[str]) -> str | None:
    import tomllib

    for path in paths:
        try:
            tomllib.loads(Path(path).read_text())
        except FileNotFoundError:
            continue
        except Exception:
            return path
    return None


def _unknown_destination(exc: BaseException) -> str:
    import dlt.destinations

    text = str(exc)
    match = re.search(r"Destination '([^']+)'", text) or re.search(r"'([^']+)'", text)
    name = match.group(1) if match else "?"
    known = [
        n
        for n in dir(dlt.destinations)
        if not n.startswith("_")
        and n != "destination"  # dlt's factory for custom destinations, not a name
        and callable(getattr(dlt.destinations, n, None))
    ]
    close = difflib.get_close_matches(name, known, n=1)
    hint = f" (did you mean {close[0]}?)" if close else f" (known: {', '.join(sorted(known))})"
    return f"unknown destination {name!r}{hint}"


def _missing_dependency(exc: BaseException) -> str:
    """dlt's "install additional dependencies" message, as the pip command."""
    text = str(exc)
    packages = re.findall(r'pip install "?([^"\s]+)"?', text)
    what = f"pip install {' '.join(packages)}" if packages else text.splitlines()[0]
    return f"a package is missing: {what}"


def _missing_message(exc: Any) -> str:
    """`destination.bigquery.credentials` and `DESTINATION__BIGQUERY__CREDENTIALS`."""
    keys = [_setting(str(field), traces) for field, traces in exc.traces.items()] or [
        str(f) for f in exc.fields
    ]
    settings = ", ".join(keys)
    env = ", ".join(k.upper().replace(".", "__") for k in keys)
    return (
        f"missing configuration {settings}: set it in .dlt/secrets.toml or the environment ({env})"
    )


def _setting(field: str, traces: Any) -> str:
    """The most specific key dlt looked up (it tries those first); nested specs count whole."""
    from dlt.common.configuration.exceptions import LookupTrace, LookupTraces

    for trace in traces:
        if isinstance(trace, LookupTraces):  # e.g. credentials: report the field itself
            subs = [t for ts in trace.traces.values() for t in ts if isinstance(t, LookupTrace)]
            if subs and subs[0].sections:
                return ".".join(_from_destination(list(subs[0].sections)))
        elif isinstance(trace, LookupTrace) and trace.sections:
            return ".".join(_from_destination([*trace.sections, field]))
    return field


def _from_destination(path: list[str]) -> list[str]:
    """Drop a pipeline-name section in front of `destination.<name>`."""
    return path[path.index("destination") :] if "destination" in path else path


def _searched() -> str:
    """Where dlt looked for secrets, and the fix for cron, which starts in $HOME."""
    try:
        from dlt.common.configuration.container import Container
        from dlt.common.configuration.specs.pluggable_run_context import PluggableRunContext

        providers = Container()[PluggableRunContext].providers.providers
        paths = [str(Path(p).resolve()) for v in providers for p in getattr(v, "locations", [])]
    except Exception:
        paths = []
    where = f"searched the environment and {', '.join(paths)}" if paths else "searched"
    return f"{where}; from cron or another directory pass --config-dir PROJECT_DIR"


SECRET_ENV = ("KEY", "PASSWORD", "SECRET", "TOKEN", "CREDENTIALS", "NOTIFY_URL")


def configured_secrets() -> list[str]:
    """Secrets the user configured, to blank wherever an error quotes them (even in a form
    the patterns miss, such as a URL password with a space): secret-looking environment
    values, the passwords of URL values, and the source's keys from dlt's providers. A
    password's pieces count too: a parser that split it at `@` or `:` quotes a piece."""
    values: list[str] = []
    urls = list(os.environ.values())
    for name, value in os.environ.items():
        if any(part in name.upper() for part in SECRET_ENV) and value.strip():
            values.append(value.strip())
    if "dlt" in sys.modules:
        import dlt

        for key in ("api_key", "deployment_key", "base_url"):
            for section in ("sources.polytomic", "sources.polytomic.polytomic_source"):
                try:
                    value = dlt.secrets.get(f"{section}.{key}")
                except Exception:
                    continue
                if isinstance(value, str) and value.strip():
                    (urls if key == "base_url" else values).append(value.strip())
    for value in urls:
        match = re.match(r"(?i)\s*[a-z][a-z0-9+.-]*://[^/\s:@]*:(.+)@", value)
        if match:
            password = match.group(1)
            values += [password, *re.split(r"[@:/\s]+", password)]
    return sorted({v for v in values if len(v) >= 4}, key=len, reverse=True)
