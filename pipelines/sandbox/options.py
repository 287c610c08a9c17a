"""Runtime switches for the behaviours the API documentation leaves open (all UNVERIFIED
items of the API facts get a switch, so tests can try every plausible answer)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from .plans import DOCUMENTED_TERMINAL_STATUSES, TERMINAL_STATUSES

LAST_PAGE_SHAPES = ("no_pagination_key", "null_token", "empty_string", "extra_empty_page")
ENDLESS_EMPTY = ("off", "fresh", "same")
_CHOICES: dict[str, tuple[Any, ...]] = {
    "token_style": ("keyset", "offset"),
    "list_includes_schemas": (True, False, "null"),
    "last_page": LAST_PAGE_SHAPES,
    "empty_data": ("list", "null"),
    "unauthorized_body": ("api_error", "legacy"),
    "tie_order": ("id_asc", "id_desc"),
    "sync_id_case": ("lower", "upper"),
    "endless_empty": ENDLESS_EMPTY,
}
_TERMINAL_ALIASES: dict[str, frozenset[str]] = {
    "default": TERMINAL_STATUSES,
    "all": TERMINAL_STATUSES,
    "documented": DOCUMENTED_TERMINAL_STATUSES,
}


@dataclass(frozen=True)
class Options:
    """Runtime options, switchable on a running server with ``Sandbox.configure``.

    Attributes:
        token_style: ``keyset`` (token = last sort key and id + ordering) or ``offset``
            (token = a position; updates during a walk shift rows across page boundaries).
        list_includes_schemas: ``True``; ``False`` drops the ``schemas`` key from list items;
            ``"null"`` sends ``"schemas": null``.
        paginate_syncs: ``GET /api/bulk/syncs`` pages ``syncs_page_size`` per page.
        last_page: ``no_pagination_key`` | ``null_token`` | ``empty_string`` |
            ``extra_empty_page`` (the last page with rows still carries a token that leads
            to one more page with no rows).
        empty_data: ``list`` (``"data": []``) or ``null`` (``"data": null``) on empty pages.
        mid_empty_pages: in execution listings, each page with rows still to come hands out
            a token that first leads to this many empty pages (each with a fresh token);
            the real next page follows, starting exactly where it would have.
        endless_empty: ``off`` | ``fresh`` | ``same``: the last page of an execution listing
            carries a token to an endless series of empty pages, each with a new distinct
            token (``fresh``) or with the very token that fetched it (``same``).
        terminal_statuses: what ``only_terminal=true`` keeps; accepts a set or the aliases
            ``default`` (completed, failed, canceled, errors, interrupted) and
            ``documented`` (completed, failed, canceled).
        unauthorized_body: ``api_error`` ({status, message, key, metadata}) or ``legacy``
            ({status: "Unauthorized", error, code: 401, context}).
        retry_after_on_429: send ``Retry-After`` with injected 429s.
        tie_order: ``id_asc`` | ``id_desc``: order of ids among equal sort timestamps, in the
            order served (independent of ``ascending``).
        sync_id_case: ``lower`` | ``upper``: how the sync list prints sync ids. Paths route
            case-insensitively either way (sync ids are UUIDs).
        latency_ms: added to every API request.
        default_limit: executions per page when ``limit`` is absent or < 1 (50).
        max_limit: the cap on ``limit`` (100).
        syncs_page_size: default and maximum page size of the sync list (50).
        default_version: ``X-Polytomic-Version`` echoed when the client sends none.
        date_header: every response carries an RFC 7231 ``Date`` from the sandbox clock.
        date_offset_seconds: shifts only the ``Date`` header (a server whose wall clock
            disagrees with its data).
    """

    token_style: str = "keyset"
    list_includes_schemas: bool | str = True
    paginate_syncs: bool = False
    last_page: str = "null_token"
    empty_data: str = "list"
    mid_empty_pages: int = 0
    endless_empty: str = "off"
    terminal_statuses: frozenset[str] = field(default_factory=lambda: TERMINAL_STATUSES)
    unauthorized_body: str = "api_error"
    retry_after_on_429: bool = True
    tie_order: str = "id_asc"
    sync_id_case: str = "lower"
    latency_ms: float = 0.0
    default_limit: int = 50
    max_limit: int = 100
    syncs_page_size: int = 50
    default_version: str = "2025-09-18"
    date_header: bool = True
    date_offset_seconds: float = 0.0

    def updated(self, **changes: Any) -> Options:
        """A validated copy with ``changes`` applied."""
        names = {f.name for f in dataclasses.fields(self)}
        unknown = set(changes) - names
        if unknown:
            raise ValueError(f"unknown sandbox options: {sorted(unknown)}")
        if "terminal_statuses" in changes:
            changes["terminal_statuses"] = _terminal_set(changes["terminal_statuses"])
        for key, allowed in _CHOICES.items():
            if key in changes and changes[key] not in allowed:
                raise ValueError(f"{key} must be one of {allowed}, not {changes[key]!r}")
        for key in ("default_limit", "max_limit", "syncs_page_size"):
            if key in changes and int(changes[key]) < 1:
                raise ValueError(f"{key} must be >= 1")
        if "mid_empty_pages" in changes:
            changes["mid_empty_pages"] = int(changes["mid_empty_pages"])
            if changes["mid_empty_pages"] < 0:
                raise ValueError("mid_empty_pages must be >= 0")
        for key in ("paginate_syncs", "retry_after_on_429", "date_header"):
            if key in changes:
                changes[key] = bool(changes[key])
        if "latency_ms" in changes:
            changes["latency_ms"] = max(0.0, float(changes["latency_ms"]))
        if "date_offset_seconds" in changes:
            changes["date_offset_seconds"] = float(changes["date_offset_seconds"])
            if not abs(changes["date_offset_seconds"]) < 1e9:  # also rejects nan and inf
                raise ValueError("date_offset_seconds must be finite and under 1e9")
        return dataclasses.replace(self, **changes)

    def as_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["terminal_statuses"] = sorted(self.terminal_statuses)
        return out


def _terminal_set(value: Any) -> frozenset[str]:
    if isinstance(value, str):
        if value not in _TERMINAL_ALIASES:
            raise ValueError(f"terminal_statuses alias must be one of {sorted(_TERMINAL_ALIASES)}")
        return _TERMINAL_ALIASES[value]
    statuses = frozenset(str(v) for v in value)
    if not statuses:
        raise ValueError("terminal_statuses must not be empty")
    return statuses
