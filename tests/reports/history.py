"""A small, known execution history with hand-computable report numbers.

Every timestamp is relative to ``NOW`` (a Wednesday, 12:00 UTC).  The views are created with
their clock pinned to ``NOW`` (``create_views(..., now=NOW)``), so the expectations in the
tests do not depend on when the tests run.  ``History`` also builds the small hand-made
histories of single tests, around another ``now`` where a test needs one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

NOW = datetime(2025, 3, 12, 12, 0, tzinfo=UTC)
H = timedelta(hours=1)
M = timedelta(minutes=1)
S = timedelta(seconds=1)


def at(days: int, hour: int, minute: int = 0) -> datetime:
    """``hour:minute`` UTC on the day ``days`` away from NOW's day."""
    return NOW.replace(hour=hour, minute=minute) + timedelta(days=days)


@dataclass
class History:
    syncs: list[dict[str, Any]] = field(default_factory=list)
    executions: list[dict[str, Any]] = field(default_factory=list)
    schemas: list[dict[str, Any]] = field(default_factory=list)
    now: datetime = NOW  # the views' pinned clock

    def sync(
        self,
        sid: str,
        frequency: str,
        *,
        active: bool = True,
        created_days: int = -60,
        deleted_at: datetime | None = None,
    ) -> None:
        self.syncs.append(
            {
                "id": sid,
                "name": sid.replace("_", "-"),
                "active": active,
                "mode": "replicate",
                "organization_id": "org-1",
                "default_schedule": json.dumps({"frequency": frequency, "minute": "0"}),
                "created_at": self.day(created_days),
                "updated_at": self.day(created_days),
                "last_seen_at": self.now if deleted_at is None else deleted_at,
                "deleted_at": deleted_at,
            }
        )

    def run(
        self,
        sid: str,
        start: datetime | None,
        status: str,
        duration: float | None = 60,
        *,
        records: int = 10,
        errors: int = 0,
        message: str | None = None,
        schemas: dict[str, tuple[str, int] | str] | None = None,
        is_test: bool = False,
        is_resync: bool = False,
        created: datetime | None = None,
        updated: datetime | None = None,
        deleted_at: datetime | None = None,
        tombstone: bool = False,
    ) -> str:
        """One execution and its schema rows.

        ``deleted_at`` marks it deleted upstream; ``tombstone`` adds the row the loader sends
        to delete an execution's old schema rows (schema '', ``_tombstone`` true).
        """
        eid = f"{sid}-{len(self.executions):03d}"
        created = created or (start - 30 * S if start else self.now)
        completed = start + duration * S if start is not None and duration is not None else None
        self.executions.append(
            {
                "id": eid,
                "bulk_sync_id": sid,
                "type": "scheduled",
                "status": status,
                "status_message": message,
                "output_disposition": "append",
                "is_partial": False,
                "is_resync": is_resync,
                "is_test": is_test,
                "record_count": records,
                "error_count": errors,
                "warning_count": 0,
                "created_at": created,
                "started_at": start,
                "completed_at": completed,
                "updated_at": updated or completed or start or created,
                "version": "v1",
                "deleted_at": deleted_at,
            }
        )
        specs = [
            (name, *((spec, records) if isinstance(spec, str) else spec))
            for name, spec in (schemas or {}).items()
        ]
        if tombstone:
            specs.append(("", None, None))
        for i, (name, s_status, s_records) in enumerate(specs):
            row = {
                "execution_id": eid,
                "bulk_sync_id": sid,
                "schema": name,
                "output_name": name,
                "status": s_status,
                "status_message": message if s_status == "failed" else None,
                "record_count": s_records,
                "error_count": 0,
                "warning_count": 0,
                "created_at": created,
                "started_at": start,
                "completed_at": completed,
                "updated_at": completed,
                "version": "v1",
                "_dlt_parent_id": f"p-{eid}",
                "_dlt_list_idx": i,
                "_dlt_id": f"c-{eid}-{i}",
                "_dlt_root_id": f"p-{eid}",
                "_tombstone": None,
            }
            if tombstone and i == len(specs) - 1:  # only its keys and the flag are set
                keys = {"execution_id": eid, "bulk_sync_id": sid, "schema": ""}
                row = {**dict.fromkeys(row), **keys, "_tombstone": True}
            self.schemas.append(row)
        return eid

    def day(self, days: int) -> datetime:
        """Midnight UTC of the day ``days`` away from ``now``'s day."""
        return self.now.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=days)


def build() -> History:
    h = History()
    ab = {"a": "completed", "b": "completed"}

    # inactive: paused, and deleted (gone from the API)
    h.sync("s_paused", "daily", active=False)
    h.run("s_paused", at(-1, 8), "completed")
    h.sync("s_deleted", "daily", deleted_at=NOW - 48 * H)
    h.run("s_deleted", at(-3, 8), "completed")

    # never run: an empty sync, and one with only a canceled and two in-flight runs
    h.sync("s_never", "hourly", created_days=-1)
    h.sync("s_first", "daily", created_days=-1)
    h.run("s_first", NOW - 2 * H, "canceled", 300)
    h.run("s_first", NOW - 20 * M, "running", None)
    h.run("s_first", None, "scheduled", None, created=NOW - 7 * H)  # queued 7 h: stuck

    # broken: S F S F F F, then a canceled run today that must be ignored
    h.sync("s_broken", "daily", created_days=-10)
    for day, status in zip(range(-6, 0), "SFSFFF", strict=True):
        failed = status == "F"
        h.run(
            "s_broken",
            at(day, 3),
            "failed" if failed else "completed",
            600,
            records=0 if failed else 100,
            message="Connection refused" if failed else None,
        )
    h.run("s_broken", at(0, 3), "canceled", 60)

    # degraded: an `errors` run without failures (partial), a success, then `errors` with a
    # failed schema
    h.sync("s_degraded", "daily")
    h.run("s_degraded", at(-3, 5), "errors", schemas={"x": "completed", "y": "completed"})
    h.run("s_degraded", at(-2, 5), "completed", schemas={"x": "completed", "y": "completed"})
    h.run(
        "s_degraded",
        at(-1, 5),
        "errors",
        errors=3,
        message="permission denied",
        schemas={"x": "failed", "y": "completed"},
    )

    # late: hourly, last success completed 2 h 59 min ago
    h.sync("s_late", "hourly")
    for hours in (5, 4, 3):
        h.run("s_late", NOW - hours * H, "completed", 60)

    # healthy hourly sync with a varied history: S F(never finished) F P S S S
    h.sync("s_healthy", "hourly")
    h.run("s_healthy", NOW - 40 * 24 * H, "completed", 200, schemas=ab)
    h.run("s_healthy", NOW - 20 * 24 * H, "interrupted", None, updated=NOW - 20 * 24 * H + 30 * M)
    h.run("s_healthy", NOW - 10 * 24 * H, "failed", 60, message="boom")
    h.run("s_healthy", NOW - 3 * 24 * H, "completed", 240, errors=2, schemas=ab)
    h.run("s_healthy", NOW - 30 * H, "completed", 300, schemas=ab)
    h.run("s_healthy", NOW - 2 * H, "completed", 180, schemas=ab)
    h.run("s_healthy", NOW - 1 * H, "completed", 120, schemas=ab)
    h.run("s_healthy", NOW - 90 * M, "canceled", 30)
    h.run("s_healthy", NOW - 100 * M, "paused_by_future_api", None)
    h.run("s_healthy", NOW - 30 * M, "failed", 60, is_test=True)
    h.run("s_healthy", NOW - 5 * M, "running", None)

    # flapping: 22 terminal runs (the oldest two are outside the 20-run window), 2 canceled
    h.sync("s_flap", "manual")
    for i, status in enumerate("FF" + "SSFSSSPSFFSSSSSSSSSS"):
        start = NOW - (22 - i) * H
        h.run(
            "s_flap",
            start,
            {"S": "completed", "P": "completed", "F": "failed"}[status],
            120,
            records=50,
            errors=1 if status == "P" else 0,
        )
        if i in (5, 12):
            h.run("s_flap", start + 30 * M, "canceled", 10)

    # volume: weekly on Wednesdays, 06:00; w-6 .. w0 (w0 = today)
    h.sync("s_volume", "weekly")
    volumes = {
        None: [1000, 1010, 990, 1005, 995, 1000, 600],  # execution level: w0 is an anomaly
        "orders": [100, 102, 98, 101, 99, 100, 125],  # +25 %, z 17: inside the 30 % band
        "customers": [50, 150, 60, 140, 100, 100, 140],  # +40 %, z 0.67: noisy baseline
        "events": [5, 40, 8, 35, 20, 22, 0],  # zero after non-zero (z only 1.05)
        "refunds": [10, 10, 10, 0, 10, 10, 10],  # zero with only 3 baseline runs
    }
    for w in range(7):
        h.run(
            "s_volume",
            at(-7 * (6 - w), 6),
            "completed",
            60,
            records=volumes[None][w],
            schemas={k: ("completed", v[w]) for k, v in volumes.items() if k},
        )
    h.run("s_volume", at(-7, 12), "completed", 600, records=50000, is_resync=True)

    # regressed durations: daily at 02:00, Wednesdays -28 .. 0, a Thursday outlier
    h.sync("s_regress", "daily")
    for day, duration in ((-28, 600), (-21, 600), (-14, 500), (-7, 950), (-6, 3000)):
        h.run("s_regress", at(day, 2), "completed", duration, records=500)
    h.run("s_regress", at(-14, 3), "completed", 700, records=500)
    h.run("s_regress", at(0, 0, 10), "failed", 300, records=0)
    h.run("s_regress", at(0, 2), "completed", 1000, records=500)
    h.run("s_regress", at(0, 4), "completed", 850, records=500)

    # stuck: p95 of 500/600/700 s is 690 s, so max(3 x 690 s, 30 min) = 2070 s; today's run
    # has been running for 40 min
    h.sync("s_stuck", "daily")
    for day, duration in ((-3, 500), (-2, 600), (-1, 700)):
        h.run("s_stuck", at(day, 13), "completed", duration)
    h.run("s_stuck", at(0, 11, 20), "running", None)

    # chronic schema: `flaky` fails in 3 of its last 5 runs inside completed executions
    h.sync("s_chronic", "daily")
    h.run(
        "s_chronic",
        at(-7, 13),
        "failed",
        600,
        message="flaky: quota",
        schemas={"good": "failed", "flaky": "failed", "meh": "failed"},
    )
    plan = [
        ("C", "C", 10),
        ("F", "F", 0),
        ("C", "C", 20),
        ("F", "C", 0),
        ("F", "F", 0),
        ("C", "C", 30),
    ]
    for day, (flaky, meh, records) in zip(range(-6, 0), plan, strict=True):
        msg = "flaky: timeout" if day == -2 else "flaky: quota"
        status = {"C": "completed", "F": "failed"}
        h.run(
            "s_chronic",
            at(day, 13),
            "completed",
            600,
            records=records,
            message=msg,
            schemas={"good": "completed", "flaky": (status[flaky], records), "meh": status[meh]},
        )
    return h
