"""Deterministic fault injection.

A ``Fault`` fires on API requests (never on ``/_sandbox`` admin requests) that match its
filters. Which requests it fires on:

* ``at_requests={3, 5}``: exactly those global request numbers (``times`` is ignored);
* ``rate=0.2``: each matching request with that probability, drawn from ``Random(seed)``,
  so the pattern repeats run to run; at most ``times`` firings (``None`` = unbounded);
* otherwise: the next ``times`` matching requests (``None`` = every one).

Filters (``kind_filter``, ``sync_id``, ``with_token``) are checked first; a request they
reject neither fires the fault nor uses up a ``rate`` draw.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

FAULT_KINDS: tuple[str, ...] = (
    "429",
    "500",
    "502",
    "503",
    "502_html",
    "reset",
    "hang",
    "body",
    "latency",
    "trickle",
)
REQUEST_KINDS: tuple[str, ...] = (
    "list_syncs",
    "get_sync",
    "list_executions",
    "get_execution",
    "other",
)


@dataclass
class Fault:
    """One injected failure.

    Attributes:
        kind: ``429`` (with ``Retry-After`` unless switched off), ``500``, ``502``, ``503``
            (JSON ApiError bodies), ``502_html`` (an HTML body), ``reset`` (the connection is
            closed with a TCP RST, no response), ``hang`` (no answer until the server stops,
            or for ``delay`` seconds if given, then the connection is closed), ``body`` (send
            ``body`` verbatim with ``status``), ``latency`` (sleep ``delay`` s, then answer),
            ``trickle`` (the real answer, its head at once and then its body one byte every
            ``delay`` s, default 0.5 s, until done, the client leaves or the server stops).
        times: how many times it fires (``None`` = unbounded).
        kind_filter: only requests of this kind (``list_executions`` ...).
        sync_id: only requests about this sync.
        with_token: ``True``: only requests whose query has a non-empty ``page_token``;
            ``False``: only requests without one; ``None``: both.
        at_requests: fire on these global request numbers (1-based).
        rate: fire with this probability per matching request.
        seed: seed of the ``rate`` draws.
        retry_after: seconds in the 429's ``Retry-After`` header.
        body: raw body for ``body`` faults: ``bytes``/``str`` verbatim, anything else as JSON.
        status: HTTP status for ``body`` faults.
        delay: seconds for ``latency`` (default 1 s), between bytes for ``trickle`` (default
            0.5 s), and the optional cap for ``hang``.
        headers: extra response headers for ``body`` faults.
    """

    kind: str
    times: int | None = 1
    kind_filter: str | None = None
    sync_id: str | None = None
    with_token: bool | None = None
    at_requests: set[int] | frozenset[int] | None = None
    rate: float | None = None
    seed: int = 0
    retry_after: float = 1
    body: Any = None
    status: int = 200
    delay: float | None = None
    headers: dict[str, str] = field(default_factory=dict)
    fired: int = field(default=0, compare=False)
    _rng: random.Random = field(default_factory=random.Random, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"fault kind must be one of {FAULT_KINDS}, not {self.kind!r}")
        if self.kind_filter is not None and self.kind_filter not in REQUEST_KINDS:
            raise ValueError(f"kind_filter must be one of {REQUEST_KINDS}")
        if self.rate is not None and not 0.0 <= self.rate <= 1.0:
            raise ValueError("rate must be within [0, 1]")
        self._rng = random.Random(self.seed)
        if self.at_requests is not None:
            self.at_requests = frozenset(self.at_requests)

    @classmethod
    def api_error(
        cls,
        status: int,
        message: str | None = None,
        key: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        **filters: Any,
    ) -> Fault:
        """A ``body`` fault answering ``status`` with an ApiError body
        ``{status, message, key, metadata}``; ``filters`` are any other ``Fault`` fields."""
        try:
            phrase = HTTPStatus(status).phrase.lower()
        except ValueError:
            phrase = "error"
        body = {
            "status": status,
            "message": phrase if message is None else message,
            "key": phrase.replace(" ", "_") if key is None else key,
            "metadata": dict(metadata or {}),
        }
        return cls("body", status=status, body=body, **filters)

    def exhausted(self) -> bool:
        if self.at_requests is not None:
            return False
        return self.times is not None and self.fired >= self.times

    def matches(
        self,
        n: int,
        kind: str,
        sync_id: str | None,
        params: Mapping[str, str] | None = None,
    ) -> bool:
        """Decide (and record) whether this fault fires on request ``n``."""
        if self.kind_filter is not None and kind != self.kind_filter:
            return False
        if self.sync_id is not None and sync_id != self.sync_id:
            return False
        if self.with_token is not None:
            has_token = bool((params or {}).get("page_token"))
            if has_token != self.with_token:
                return False
        if self.at_requests is not None:
            hit = n in self.at_requests
        else:
            if self.exhausted():
                return False
            hit = self.rate is None or self._rng.random() < self.rate
        if hit:
            self.fired += 1
        return hit


class FaultBook:
    """The injected faults, checked in injection order; the first that fires wins."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def add(self, fault: Fault) -> Fault:
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def pick(
        self,
        n: int,
        kind: str,
        sync_id: str | None,
        params: Mapping[str, str] | None = None,
    ) -> Fault | None:
        """The first fault that fires on this request (``params``: its query)."""
        with self._lock:
            for fault in self._faults:
                if fault.matches(n, kind, sync_id, params):
                    return fault
            return None

    @property
    def faults(self) -> list[Fault]:
        with self._lock:
            return list(self._faults)
