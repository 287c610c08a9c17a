"""Sandbox time: a clock that is either pinned or follows wall time, plus Go-style timestamps.

All instants inside the sandbox are integers of microseconds since the Unix epoch (UTC).
On the wire they are printed the way Go's ``time.RFC3339Nano`` prints them: UTC with a
``Z`` suffix and trailing fractional zeros trimmed, so ``...:41Z``, ``...:41.5Z`` and
``...:41.123456Z`` all occur.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

US_PER_S = 1_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_us(value: datetime) -> int:
    """Convert an aware datetime to integer microseconds since the epoch."""
    if value.tzinfo is None:
        raise ValueError("sandbox datetimes must be timezone-aware")
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * US_PER_S + delta.microseconds


def from_us(us: int) -> datetime:
    """Convert integer microseconds since the epoch to an aware UTC datetime."""
    return _EPOCH + timedelta(microseconds=us)


_DAY_PREFIX: dict[int, str] = {}
_TIME_OF_DAY: dict[int, str] = {}


def format_us(us: int) -> str:
    """Print an instant like Go's RFC3339Nano: UTC, ``Z``, trailing fractional zeros trimmed."""
    sec, frac = divmod(us, US_PER_S)
    day, rem = divmod(sec, 86_400)
    prefix = _DAY_PREFIX.get(day)
    if prefix is None:
        t = time.gmtime(day * 86_400)
        prefix = _DAY_PREFIX[day] = f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}T"
    clock = _TIME_OF_DAY.get(rem)
    if clock is None:
        hour, minute = divmod(rem // 60, 60)
        clock = _TIME_OF_DAY[rem] = f"{hour:02d}:{minute:02d}:{rem % 60:02d}"
    if frac:  # a non-zero fraction keeps at least one digit after rstrip
        return prefix + clock + "." + f"{frac:06d}".rstrip("0") + "Z"
    return prefix + clock + "Z"


def parse_instant(value: datetime | str | int | float) -> int:
    """Accept an aware datetime, an RFC 3339 string or epoch microseconds; return microseconds."""
    if isinstance(value, datetime):
        return to_us(value)
    if isinstance(value, str):
        return to_us(datetime.fromisoformat(value))
    if isinstance(value, bool):
        raise TypeError("a bool is not an instant")
    return int(value)


def fraction_width(stamp: str) -> int:
    """Number of fractional-second digits in a printed timestamp (0 when there is none)."""
    body = stamp.rstrip("Z")
    return len(body.rsplit(".", 1)[1]) if "." in body else 0


class Clock:
    """The sandbox's notion of "now".

    ``Clock(None)`` follows wall time; ``Clock(aware_datetime)`` is pinned there. ``advance``
    moves either kind forward. ``tick`` hands out strictly increasing instants that are never
    earlier than ``now`` (used for ``updated_at`` of scenario mutations).
    """

    def __init__(self, pinned: datetime | None = None) -> None:
        self._lock = threading.Lock()
        self._pinned_us = None if pinned is None else to_us(pinned)
        self._offset_us = 0
        self._last_tick_us = 0

    @property
    def follows_wall_time(self) -> bool:
        return self._pinned_us is None

    def now_us(self) -> int:
        with self._lock:
            base = self._pinned_us if self._pinned_us is not None else time.time_ns() // 1000
            return base + self._offset_us

    def now(self) -> datetime:
        return from_us(self.now_us())

    def advance(self, seconds: float) -> datetime:
        if seconds < 0:
            raise ValueError("the sandbox clock only moves forward")
        with self._lock:
            self._offset_us += round(seconds * US_PER_S)
        return self.now()

    def observe(self, us: int) -> None:
        """Tell ``tick`` that an instant has been handed out already."""
        with self._lock:
            self._last_tick_us = max(self._last_tick_us, us)

    def tick(self) -> int:
        """A strictly increasing instant, at least ``now``."""
        now = self.now_us()
        with self._lock:
            stamp = max(now, self._last_tick_us + 1)
            self._last_tick_us = stamp
            return stamp
