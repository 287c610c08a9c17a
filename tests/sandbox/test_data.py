"""The generated data: field sets, invariants, timestamps and determinism."""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import timedelta

import pytest

from pipelines.sandbox import Sandbox, SyncPlan

from .conftest import PINNED_NOW, Client, us

EXECUTION_FIELDS = {
    "id", "type", "status", "status_message", "fetch_mode", "output_disposition", "is_partial",
    "is_resync", "is_test", "record_count", "error_count", "warning_count", "created_at",
    "started_at", "completed_at", "updated_at", "schemas",
}  # fmt: skip
SCHEMA_FIELDS = {
    "schema", "output_name", "status", "status_message", "record_count", "error_count",
    "warning_count", "created_at", "started_at", "completed_at", "updated_at",
}  # fmt: skip
SYNC_FIELDS = {
    "id", "name", "active", "organization_id", "source_connection_id",
    "destination_connection_id", "mode", "default_schedule", "additional_schedules",
    "automatically_add_new_fields", "automatically_add_new_objects", "normalize_names",
    "concurrency_limit", "resync_concurrency_limit", "data_cutoff_timestamp",
    "disable_record_timestamps", "destination_configuration", "source_configuration",
    "policies", "created_at", "created_by", "updated_at", "updated_by",
}  # fmt: skip
EXECUTION_STATUSES = {
    "created", "scheduled", "running", "exporting", "canceling", "canceled", "completed",
    "failed", "processing", "errors", "interrupted",
}  # fmt: skip
SCHEMA_STATUSES = {
    "created", "scheduled", "running", "exporting", "canceled", "completed", "failed",
    "interrupted", "processing",
}  # fmt: skip
TERMINAL = {"completed", "failed", "canceled", "errors", "interrupted"}
RUNNING = {"running", "exporting", "processing", "canceling"}


@pytest.fixture(scope="module")
def big() -> Sandbox:
    """A larger, never-mutated sandbox (no server needed) shared by the invariant tests.

    Failures are planted at 10 % (the default organisation is a healthy one, 1.5 %), so that
    every terminal status occurs often enough to check its invariants."""
    return Sandbox(seed=3, syncs=5, executions=300, failure_rate=0.1, now=PINNED_NOW)


@pytest.fixture(scope="module")
def big_truth(big: Sandbox) -> list[dict]:
    return big.truth_executions()


def test_executions_carry_every_documented_field_and_known_enums(big_truth: list[dict]) -> None:
    for ex in big_truth:
        assert EXECUTION_FIELDS <= set(ex)
        assert set(ex) - EXECUTION_FIELDS <= {"version", "bulk_sync_id"}
        assert ex["status"] in EXECUTION_STATUSES
        assert ex["fetch_mode"] in {"none", "incremental", "full"}
        assert ex["output_disposition"] in {"retain", "truncate", "rebuild"}
        assert 1 <= len(ex["schemas"])
        for schema in ex["schemas"]:
            assert SCHEMA_FIELDS <= set(schema) <= SCHEMA_FIELDS | {"version"}
            assert schema["status"] in SCHEMA_STATUSES


def test_the_data_covers_every_status_type_and_the_optional_version(
    big_truth: list[dict],
) -> None:
    rows = big_truth
    statuses = Counter(e["status"] for e in rows)
    assert TERMINAL <= set(statuses)
    assert statuses["completed"] > len(rows) * 0.8
    assert {"scheduled", "manual", "api"} <= {e["type"] for e in rows}
    assert any(e["is_test"] for e in rows)
    with_version = [e for e in rows if "version" in e]
    assert 0 < len(with_version) < len(rows)


def test_timestamps_use_go_rfc3339nano_with_all_three_fraction_widths(
    big_truth: list[dict],
) -> None:
    widths = Counter()
    for ex in big_truth:
        stamps = [ex[k] for k in ("created_at", "started_at", "completed_at", "updated_at")]
        stamps += [s[k] for s in ex["schemas"] for k in ("created_at", "completed_at")]
        for stamp in filter(None, stamps):
            assert stamp.endswith("Z") and "+" not in stamp
            fraction = stamp[:-1].partition(".")[2]
            assert not fraction.endswith("0")
            widths[len(fraction)] += 1
    assert widths[0] and widths[6]
    assert any(widths[n] for n in range(1, 6))


def test_schema_counts_sum_to_the_execution_counts(big_truth: list[dict]) -> None:
    for ex in big_truth:
        for field in ("record_count", "error_count", "warning_count"):
            assert ex[field] == sum(s[field] for s in ex["schemas"]), (ex["id"], field)
        if ex["status"] in {"failed", "errors"}:
            assert ex["error_count"] > 0


def test_lifecycle_timestamps_are_consistent_with_status(big_truth: list[dict]) -> None:
    for ex in big_truth:
        created, updated = us(ex["created_at"]), us(ex["updated_at"])
        assert updated <= us(PINNED_NOW.isoformat())
        if ex["status"] in TERMINAL:
            assert created <= us(ex["started_at"]) <= us(ex["completed_at"]) <= updated
        else:
            assert ex["completed_at"] is None
        if ex["status"] in {"created", "scheduled"}:
            assert ex["started_at"] is None
        for schema in ex["schemas"]:
            if schema["started_at"] and ex["started_at"]:
                assert us(ex["started_at"]) <= us(schema["started_at"])
            if schema["completed_at"] and ex["completed_at"]:
                assert us(schema["completed_at"]) <= us(ex["completed_at"])


def test_at_most_one_running_execution_per_sync_and_some_syncs_are_in_flight(
    big: Sandbox, big_truth: list[dict]
) -> None:
    running = Counter(e["bulk_sync_id"] for e in big_truth if e["status"] in RUNNING)
    assert max(running.values()) == 1
    assert running[big.sync_ids()[0]] == 1


def test_history_is_spaced_by_the_schedule_and_ends_at_now(
    big: Sandbox, big_truth: list[dict]
) -> None:
    by_sync = {s["id"]: s for s in big.truth_syncs()}
    for sync_id in big.sync_ids():
        frequency = by_sync[sync_id]["default_schedule"]["frequency"]
        rows = [e for e in big_truth if e["bulk_sync_id"] == sync_id]
        newest = max(us(e["created_at"]) for e in rows)
        assert us(PINNED_NOW.isoformat()) - newest < 8 * 86_400 * 1_000_000
        if frequency == "hourly":
            starts = sorted(us(e["created_at"]) for e in rows)
            gaps = [b - a for a, b in itertools.pairwise(starts)]
            assert abs(sorted(gaps)[len(gaps) // 2] - 3600 * 1_000_000) < 60 * 1_000_000


def test_sync_objects_are_full_bulk_sync_responses(sb: Sandbox, client: Client) -> None:
    listed = client.json("/api/bulk/syncs")["data"]
    for sync in listed:
        assert set(sync) == SYNC_FIELDS
        assert sync["default_schedule"]["frequency"] in {"hourly", "daily", "weekly", "manual"}
        assert set(sync["created_by"]) == {"id", "name", "type"}
        assert "schema" in sync["destination_configuration"]
        assert sync["organization_id"] == sb.organization_id
        assert client.json(f"/api/bulk/syncs/{sync['id']}")["data"] == sync
    assert listed == sorted(listed, key=lambda s: -us(s["updated_at"]))


def test_list_items_can_omit_or_null_schemas_but_the_detail_always_has_them(
    sb: Sandbox, client: Client
) -> None:
    sync_id = sb.sync_ids()[0]
    assert all("schemas" in e for e in client.executions_page(sync_id)["data"])
    sb.configure(list_includes_schemas=False)
    page = client.executions_page(sync_id)["data"]
    assert all("schemas" not in e for e in page)
    sb.configure(list_includes_schemas="null")
    assert all(e["schemas"] is None for e in client.executions_page(sync_id)["data"])
    detail = client.json(f"/api/bulk/syncs/{sync_id}/executions/{page[0]['id']}")["data"]
    assert detail["schemas"]


def test_the_api_serves_exactly_the_ground_truth(sb: Sandbox, client: Client) -> None:
    truth = {e["id"]: e for e in sb.truth_executions()}
    for sync_id in sb.sync_ids():
        for row in client.walk(sync_id, limit=100):
            expected = {k: v for k, v in truth[row["id"]].items() if k != "bulk_sync_id"}
            assert row == expected
    sample = next(iter(truth.values()))
    detail = client.json(f"/api/bulk/syncs/{sample['bulk_sync_id']}/executions/{sample['id']}")
    assert {**detail["data"], "bulk_sync_id": sample["bulk_sync_id"]} == sample
    flat = sb.truth_schemas()
    assert len(flat) == sum(len(e["schemas"]) for e in truth.values())
    assert {"execution_id", "bulk_sync_id", "schema", "record_count"} <= set(flat[0])


def test_ground_truth_is_a_deep_copy(sb: Sandbox) -> None:
    first = sb.truth_executions()
    first[0]["schemas"][0]["record_count"] = -1
    first[0]["status"] = "tampered"
    again = sb.truth_executions()[0]
    assert again["status"] != "tampered" and again["schemas"][0]["record_count"] != -1


def test_the_same_seed_gives_the_same_data_and_credentials() -> None:
    a = Sandbox(seed=11, syncs=2, executions=50, now=PINNED_NOW)
    b = Sandbox(seed=11, syncs=2, executions=50, now=PINNED_NOW)
    c = Sandbox(seed=12, syncs=2, executions=50, now=PINNED_NOW)
    assert a.truth_executions() == b.truth_executions()
    assert a.truth_syncs() == b.truth_syncs()
    assert (a.api_key, a.organization_id, a.deployment_key) == (
        b.api_key,
        b.organization_id,
        b.deployment_key,
    )
    assert a.truth_executions() != c.truth_executions()
    a.add_executions(a.sync_ids()[0], n=2)
    b.add_executions(b.sync_ids()[0], n=2)
    assert a.truth_executions() == b.truth_executions()


def test_a_wall_clock_sandbox_ends_its_history_now() -> None:
    sb = Sandbox(seed=1, syncs=1, executions=30)
    newest = max(us(e["updated_at"]) for e in sb.truth_executions())
    assert abs(us(sb.now().isoformat()) - newest) < 3600 * 1_000_000
    later = sb.advance(120)
    assert later - sb.now() < timedelta(seconds=1)


def test_sync_plans_shape_each_sync() -> None:
    plans = [
        SyncPlan(name="Stuck", frequency="daily", executions=10, inflight=("running",),
                 ends_before_now=20 * 3600),
        SyncPlan(name="Paused", frequency="weekly", executions=5, active=False, schemas=("A", "B")),
        SyncPlan(name="Manual", frequency="manual", executions=8, schemas=2, failure_rate=0.0),
    ]  # fmt: skip
    sb = Sandbox(seed=5, plans=plans, now=PINNED_NOW)
    syncs = {s["name"]: s for s in sb.truth_syncs()}
    assert set(syncs) == {"Stuck", "Paused", "Manual"}
    assert syncs["Paused"]["active"] is False
    rows = sb.truth_executions()
    stuck = [e for e in rows if e["bulk_sync_id"] == syncs["Stuck"]["id"]]
    assert stuck[-1]["status"] == "running"
    age = us(PINNED_NOW.isoformat()) - us(stuck[-1]["started_at"])
    assert age > 19 * 3600 * 1_000_000
    paused = [e for e in rows if e["bulk_sync_id"] == syncs["Paused"]["id"]]
    assert {s["schema"] for e in paused for s in e["schemas"]} <= {"A", "B"}
    manual = [e for e in rows if e["bulk_sync_id"] == syncs["Manual"]["id"]]
    assert {e["status"] for e in manual} == {"completed"}
    assert {e["type"] for e in manual} <= {"manual", "api"}
    assert all(len(e["schemas"]) <= 2 for e in manual)
