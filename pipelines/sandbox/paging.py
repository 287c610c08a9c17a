"""Page tokens and page slicing.

Tokens are opaque url-safe base64 (with ``=`` padding, like the real API's examples) of a
short MAC plus a compact JSON payload. The payload pins the scope (sync id or sync-list
filter) and the ordering, so the token's ordering wins over the query parameters of later
requests.

* ``keyset`` tokens carry the last served row's sort timestamp and id; the next page starts
  right after that position (found with ``bisect``), so rows that move do not shift others.
* ``offset`` tokens carry a position. A row that moves behind the position during a walk
  shifts every later row by one: a row at the page boundary is skipped (or repeated).

Empty pages that still carry a token (execution listings only) are encoded in the payload
too: ``e`` counts the empty pages left before the real next page (``mid_empty_pages``), and
``end`` marks an endless tail of empty pages (``endless_empty``; ``fresh`` counts ``n`` up
so every token differs, ``same`` hands back the very token that was sent).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from bisect import bisect_right
from dataclasses import dataclass
from typing import Any

from .data import View

TOKEN_STYLES: tuple[str, ...] = ("keyset", "offset")
_MAC_BYTES = 8


class BadToken(ValueError):
    """A page token that is malformed, tampered with, or issued for another scope."""


@dataclass(frozen=True)
class Ordering:
    scope: str
    only_terminal: bool = False
    ascending: bool = False


class TokenCodec:
    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def _mac(self, payload: bytes) -> bytes:
        return hashlib.blake2b(payload, key=self._secret, digest_size=_MAC_BYTES).digest()

    def encode(self, payload: dict[str, Any]) -> str:
        raw = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
        return base64.urlsafe_b64encode(self._mac(raw) + raw).decode()

    def decode(self, token: str) -> dict[str, Any]:
        try:
            blob = base64.urlsafe_b64decode(token.encode("ascii") + b"=" * (-len(token) % 4))
        except (binascii.Error, ValueError, UnicodeEncodeError) as exc:
            raise BadToken("page_token is not valid base64") from exc
        mac, raw = blob[:_MAC_BYTES], blob[_MAC_BYTES:]
        if len(blob) <= _MAC_BYTES or mac != self._mac(raw):
            raise BadToken("page_token was not issued by this server")
        try:
            payload = json.loads(raw)
        except ValueError as exc:
            raise BadToken("page_token payload is corrupt") from exc
        if not isinstance(payload, dict) or payload.get("v") != 1:
            raise BadToken("page_token has an unknown version")
        return payload

    def ordering_of(self, payload: dict[str, Any]) -> Ordering:
        return Ordering(str(payload["sc"]), bool(payload["ot"]), bool(payload["asc"]))


def start_position(view: View, payload: dict[str, Any] | None, tie_desc: bool) -> int:
    """Where the page described by ``payload`` starts inside ``view``."""
    if payload is None:
        return 0
    try:
        if payload["st"] == "offset":
            return max(0, int(payload["pos"]))
        direction = 1 if payload["asc"] else -1
        tie = -1 if tie_desc else 1
        key = (direction * int(payload["ts"]), tie * int(payload["id"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise BadToken("page_token payload is incomplete") from exc
    return bisect_right(view.keys, key)


def next_payload(
    style: str,
    ordering: Ordering,
    view: View,
    end: int,
    sort_ts: int | None,
    last_id_int: int | None,
) -> dict[str, Any]:
    """Token payload for the page that starts at ``end`` (the position after the last row)."""
    payload: dict[str, Any] = {
        "v": 1,
        "sc": ordering.scope,
        "ot": int(ordering.only_terminal),
        "asc": int(ordering.ascending),
        "st": style,
    }
    if style == "offset" or sort_ts is None or last_id_int is None:
        payload["st"] = "offset"
        payload["pos"] = end
    else:
        payload["ts"] = sort_ts
        payload["id"] = last_id_int
    return payload


def empty_detour(payload: dict[str, Any] | None) -> dict[str, Any] | None:
    """The next token's payload when ``payload`` leads to an empty page, else ``None``."""
    if payload is None:
        return None
    try:
        if "end" in payload:
            if payload["end"] == "same":
                return payload
            return {**payload, "n": int(payload.get("n", 0)) + 1}
        left = int(payload.get("e", 0))
    except (TypeError, ValueError) as exc:
        raise BadToken("page_token payload is incomplete") from exc
    if left <= 0:
        return None
    follow = {key: value for key, value in payload.items() if key != "e"}
    if left > 1:
        follow["e"] = left - 1
    return follow


def clamp_limit(raw: str | None, default: int, maximum: int) -> int:
    """``limit`` as the API treats it: capped at ``maximum``; missing or < 1 means default."""
    if raw is None or raw == "":
        return default
    value = int(raw)  # ValueError -> 400 in the caller
    if value < 1:
        return default
    return min(value, maximum)
