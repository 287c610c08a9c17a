"""Deterministic generation of syncs and their execution histories from a seed."""

from __future__ import annotations

import random
import re
from typing import Any

from .clock import US_PER_S
from .outcomes import build_execution, check_override_keys, pick_terminal, quantize
from .plans import PERIOD_S, SyncPlan
from .records import Execution, SyncRecord, new_uuid

SOURCES: dict[str, tuple[str, tuple[str, ...]]] = {
    "salesforce": (
        "Salesforce",
        (
            "Account",
            "Contact",
            "Opportunity",
            "Lead",
            "Campaign",
            "Task",
            "Event",
            "Case",
            "User",
            "OpportunityLineItem",
            "CampaignMember",
            "Product2",
        ),
    ),
    "hubspot": (
        "HubSpot",
        ("contacts", "companies", "deals", "tickets", "engagements", "owners", "line_items"),
    ),
    "postgres": (
        "Postgres",
        ("public.orders", "public.customers", "public.invoices", "public.events", "billing.plans"),
    ),
}
DESTINATIONS: tuple[tuple[str, str], ...] = (
    ("Snowflake", "RAW"),
    ("BigQuery", "polytomic_raw"),
    ("Databricks", "bronze"),
)
_FREQUENCY_CYCLE: tuple[str, ...] = ("hourly", "daily", "hourly", "manual", "weekly")
# Share of a default organisation's terminal runs that do not complete: a real one is
# mostly healthy (1 to 2 % of runs fail, are canceled or end with errors).
DEFAULT_FAILURE_RATE = 0.015
_INFLIGHT_CHOICES: tuple[tuple[str, ...], ...] = (
    (),
    (),
    (),
    ("running",),
    ("exporting",),
    ("processing",),
    ("running", "scheduled"),
    ("created",),
    ("canceling",),
)
PEOPLE: tuple[str, ...] = ("Ada Lovelace", "Grace Hopper", "Alan Turing", "Edsger Dijkstra")


def snake(name: str) -> str:
    name = name.split(".")[-1]
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


def default_plans(
    seed: int, syncs: int, executions: int, schemas: Any, failure_rate: float
) -> list[SyncPlan]:
    """The plans behind ``Sandbox(syncs=..., executions=...)``: a healthy organisation.

    Sync 0 always has a running execution; the others get a seeded mix of idle and in-flight
    tails, all started minutes ago.  Failures are spread at ``failure_rate`` (default
    ``DEFAULT_FAILURE_RATE``, 1.5 %, as in a real organisation), every history ends at the
    clock's now, and volumes are steady: the reports flag next to nothing.  Problems are
    planted explicitly, with ``SyncPlan`` (see ``pipelines/demo.py``)."""
    rng = random.Random(f"{seed}:plans")
    plans = []
    for i in range(syncs):
        inflight = ("running",) if i == 0 else rng.choice(_INFLIGHT_CHOICES)
        plans.append(
            SyncPlan(
                frequency=_FREQUENCY_CYCLE[i % len(_FREQUENCY_CYCLE)],
                executions=executions,
                schemas=schemas,
                failure_rate=failure_rate,
                inflight=inflight[:executions],
            )
        )
    return plans


def actors(seed: int) -> list[dict[str, str]]:
    rng = random.Random(f"{seed}:people")
    return [{"id": new_uuid(rng), "name": name, "type": "user"} for name in PEOPLE]


def _schema_names(plan: SyncPlan, rng: random.Random, pool: tuple[str, ...]) -> list[str]:
    spec = plan.schemas
    if isinstance(spec, int):
        count = spec
    elif spec and all(isinstance(x, str) for x in spec):
        return [str(x) for x in spec]
    else:
        low, high = (int(x) for x in spec)  # type: ignore[misc]
        count = rng.randint(low, high)
    if count < 1:
        raise ValueError("a sync needs at least one schema")
    names = rng.sample(pool, min(count, len(pool)))
    names += [f"custom_object_{k}" for k in range(count - len(names))]
    return names


def _slots(plan: SyncPlan, rng: random.Random, end_us: int, phase_s: int) -> list[int]:
    n = plan.executions
    flight = min(len(plan.inflight), n)
    if flight:
        return _slots_in_flight(plan, rng, end_us, flight)
    if plan.frequency == "manual":
        slots, t = [], end_us - rng.randint(5 * 60, 2 * 3600) * US_PER_S
        for _ in range(n):
            slots.append(t)
            t -= rng.randint(2 * 3600, 3 * 86_400) * US_PER_S + rng.randint(0, US_PER_S)
        return slots[::-1]
    period = PERIOD_S[plan.frequency] * US_PER_S
    phase = phase_s * US_PER_S
    last = (end_us - 90 * US_PER_S - phase) // period * period + phase
    return [last - (n - 1 - k) * period for k in range(n)]


def _slots_in_flight(plan: SyncPlan, rng: random.Random, end_us: int, flight: int) -> list[int]:
    """What is in flight at the end started (or was queued) a few minutes before it, as in a
    healthy organisation, whatever the schedule's phase: the first in-flight run 1 to 10
    minutes before, any queued behind it seconds later.  The finished history before it keeps
    the schedule's spacing (a manual sync's gaps).  ``ends_before_now`` moves all of it back,
    which makes a stalled sync: a run in flight for that long."""
    first = end_us - rng.randint(60, 600) * US_PER_S
    tail = [first]
    for _ in range(flight - 1):
        tail.append(min(tail[-1] + rng.randint(5, 60) * US_PER_S, end_us - 35 * US_PER_S))
    done = plan.executions - flight
    if plan.frequency == "manual":
        slots, t = [], first
        for _ in range(done):
            t -= rng.randint(2 * 3600, 3 * 86_400) * US_PER_S + rng.randint(0, US_PER_S)
            slots.append(t)
        return slots[::-1] + tail
    period = PERIOD_S[plan.frequency] * US_PER_S
    return [first - (done - k) * period for k in range(done)] + tail


def build_sync(
    plan: SyncPlan,
    index: int,
    seed: int,
    now_us: int,
    org_id: str,
    people: list[dict[str, str]],
    created_now: bool = False,
) -> tuple[SyncRecord, list[Execution]]:
    """One sync and its history; the newest slot lies ``plan.paused_gap_s()`` before now."""
    rng = random.Random(f"{seed}:sync:{index}")
    sync_id = new_uuid(rng)
    source_key = plan.source or tuple(SOURCES)[index % len(SOURCES)]
    source_label, pool = SOURCES[source_key]
    dest_label, dest_schema = DESTINATIONS[index % len(DESTINATIONS)]
    names = _schema_names(plan, rng, pool)
    hour, minute = rng.randint(0, 23), rng.choice((0, 5, 15, 30, 45))
    phase_s = {"hourly": minute * 60, "daily": (hour * 60 + minute) * 60}.get(plan.frequency, 0)
    if plan.frequency == "weekly":
        phase_s = 4 * 86_400 + (hour * 60 + minute) * 60  # epoch was a Thursday: +4 d = Monday
    end_us = now_us - round(plan.paused_gap_s() * US_PER_S)
    slots = _slots(plan, rng, end_us, phase_s)
    first = slots[0] if slots else end_us
    created = quantize(rng, first - rng.randint(1, 30) * 86_400 * US_PER_S)
    updated = now_us if created_now else quantize(rng, rng.randint(created, max(created, end_us)))
    creator, editor = rng.choice(people), rng.choice(people)
    schedule: dict[str, Any] = {
        "id": new_uuid(rng),
        "frequency": plan.frequency,
        "minute": None if plan.frequency == "manual" else str(minute),
        "hour": str(hour) if plan.frequency in ("daily", "weekly") else None,
        "day_of_week": "monday" if plan.frequency == "weekly" else None,
        "day_of_month": None,
        "month": None,
        "created_at": created,
        "created_by": dict(creator),
        "updated_at": created,
        "updated_by": dict(creator),
    }
    additional: list[dict[str, Any]] = []
    if rng.random() < 0.3:
        additional.append(
            {
                "id": new_uuid(rng),
                "frequency": "weekly",
                "minute": "0",
                "hour": "2",
                "day_of_week": "sunday",
                "day_of_month": None,
                "month": None,
                "resync_mode": "resync",
                "schemas": names[:1],
                "selective_mode": "none",
                "created_at": created,
                "created_by": dict(creator),
                "updated_at": created,
                "updated_by": dict(creator),
            }
        )
    wire: dict[str, Any] = {
        "id": sync_id,
        "name": plan.name or f"{source_label} → {dest_label} #{index + 1}",
        "active": plan.active,
        "organization_id": org_id,
        "source_connection_id": new_uuid(rng),
        "destination_connection_id": new_uuid(rng),
        "mode": rng.choices(("replicate", "snapshot", "append"), (6, 3, 1))[0],
        "default_schedule": schedule,
        "additional_schedules": additional,
        "automatically_add_new_fields": rng.choice(("all", "onlyIncremental", "none")),
        "automatically_add_new_objects": rng.choice(("all", "none")),
        "normalize_names": rng.choice(("enabled", "enabled", "disabled", "legacy")),
        "concurrency_limit": rng.choice((10, 25, 50)),
        "resync_concurrency_limit": rng.choice((1, 5)),
        "data_cutoff_timestamp": None,
        "disable_record_timestamps": rng.random() < 0.1,
        "destination_configuration": {"schema": f"{dest_schema}_{snake(source_label)}"},
        "source_configuration": {},
        "policies": [],
        "created_at": created,
        "created_by": dict(creator),
        "updated_at": max(created, updated),
        "updated_by": dict(editor),
    }
    sync = SyncRecord(
        id=sync_id,
        index=index,
        plan=plan,
        wire_fields=wire,
        schema_names=[(n, snake(n)) for n in names],
        volumes={n: int(10 ** rng.uniform(1.5, 4.7)) for n in names},
        rng=random.Random(f"{seed}:scenario:{index}"),
    )
    sync.version_since_us = slots[len(slots) * 2 // 5] if slots else end_us
    return sync, _history(sync, rng, slots, now_us)


def _history(
    sync: SyncRecord, rng: random.Random, slots: list[int], now_us: int
) -> list[Execution]:
    plan = sync.plan
    n = len(slots)
    first_inflight = n - len(plan.inflight)
    period_us = PERIOD_S.get(plan.frequency, 3600) * US_PER_S
    out: list[Execution] = []
    for k, slot in enumerate(slots):
        ov = plan.override_for(k)
        check_override_keys(ov)
        status = plan.inflight[k - first_inflight] if k >= first_inflight else None
        terminal = pick_terminal(rng, plan.failure_rate)
        if ov.get("skip"):
            continue
        delay = ov.get("start_delay")
        start = slot + (
            round(float(delay) * US_PER_S) if delay is not None else rng.randint(1, 30 * US_PER_S)
        )
        start = min(start, now_us - US_PER_S)
        cap_s = (now_us - start - US_PER_S) / US_PER_S
        if "duration" not in ov:
            cap_s = min(cap_s, period_us * 0.8 / US_PER_S)
        execution = build_execution(
            sync,
            rng,
            status=status or terminal,
            start_us=start,
            now_us=now_us,
            overrides=ov,
            max_duration_s=cap_s,
        )
        if k >= n // 2 and "is_test" not in ov:
            # test runs belong to a sync's set-up, the older half of its history: a recent
            # slot taken by one would look like a missed run (the reports leave tests out)
            execution.fields["is_test"] = False
            execution.touch()
        out.append(execution)
    return out
