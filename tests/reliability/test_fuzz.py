"""Hostile response shapes, fuzzed with hypothesis and injected into a real page.

The mutated page is the real first page of a sync's walk, fetched from the sandbox, so its
page token is real and the walk goes on truthfully after it. Per example:
* record-level damage never crashes the run (exit 0): records that cannot be merged are
  quarantined in `rejected_records` and counted as `skipped`; every other record is loaded;
* page-level damage (not JSON, `data` not a list, a broken envelope) fails that sync
  alone, cleanly (exit 1), and the next run, with the fault gone, loads it;
* after the next run the warehouse equals the truth, except the executions whose own
  values were corrupted on the wire (those are present, with what the API sent).
"""

from __future__ import annotations

import copy
import json
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

from pipelines.sandbox import Fault, Sandbox, SyncPlan
from tests.conftest import PINNED_NOW, Etl, ts
from tests.reliability.helpers import (
    assert_equal_to_truth_except,
    assert_optional_fields_match,
    terminal_pages,
)

TIMESTAMPS = ("created_at", "started_at", "completed_at", "updated_at")
COUNTS = ("record_count", "error_count", "warning_count")
BAD_TIMESTAMPS = ("yesterday", "", 12345, "2026-13-45T99:00:00Z", {"t": 1}, [2026])
BAD_IDS = (None, "", 123, ["x"], {"id": "x"})
GARBAGE = ("lots", 1.5, [], {"n": 1}, True, -1e30, "∞")
NOT_OBJECTS = ("oops", 5, None, [], [1, 2])
PAGE_SHAPES = {
    "html": b"<html><body>502 Bad Gateway</body></html>",
    "empty": b"",
    "truncated": b'{"data": [{"id": "a"',
    "json-null": b"null",
    "envelope-list": b"[]",
    "data-object": {"data": {"id": "x"}},
    "data-string": {"data": "rows"},
    "token-number": {"data": [], "pagination": {"next_page_token": 5}},
}

record_damage = st.one_of(
    st.tuples(
        st.just("drop"),
        st.sampled_from(
            ("id", "updated_at", "status", "schemas", "record_count", "started_at", "type")
        ),
    ),
    st.tuples(
        st.just("null"),
        st.sampled_from(
            ("id", "updated_at", "status", "schemas", "record_count", "completed_at", "is_test")
        ),
    ),
    st.tuples(st.just("count-as-string"), st.sampled_from(COUNTS)),
    st.tuples(
        st.just("count-garbage"), st.tuples(st.sampled_from(COUNTS), st.sampled_from(GARBAGE))
    ),
    st.tuples(st.just("schemas-not-a-list"), st.sampled_from(({"a": 1}, "Contact", 7, None))),
    st.tuples(st.just("schemas-junk-items"), st.just(None)),
    st.tuples(st.just("schema-item-garbage"), st.sampled_from(("record_count", "schema"))),
    st.tuples(
        st.just("bad-timestamp"),
        st.tuples(st.sampled_from(TIMESTAMPS), st.sampled_from(BAD_TIMESTAMPS)),
    ),
    st.tuples(st.just("bad-id"), st.sampled_from(BAD_IDS)),
    st.tuples(
        st.just("wrong-type"),
        st.tuples(
            st.sampled_from(("status", "is_test", "type", "fetch_mode")), st.sampled_from(GARBAGE)
        ),
    ),
    st.tuples(st.just("not-an-object"), st.sampled_from(NOT_OBJECTS)),
    st.tuples(
        st.just("new-field"),
        st.sampled_from(
            (
                ("surprise", {"a": [1, {"b": 2}]}),
                ("Weird Key-Ü", "v"),
                ("list_field", [{"x": 1}, {"x": 2}]),
            )
        ),
    ),
    st.tuples(st.just("extra-copy-unmergeable"), st.sampled_from(("no-id", "bad-updated_at"))),
)


@st.composite
def cases(draw: Any) -> dict[str, Any]:
    damage = draw(st.lists(st.tuples(st.integers(0, 99), record_damage), min_size=1, max_size=5))
    # about half the examples also break the other sync's page as a whole
    shapes = sorted(PAGE_SHAPES)
    page = draw(st.sampled_from([None] * len(shapes) + shapes))
    return {"damage": damage, "other_page": page}


@dataclass
class Applied:
    body: dict[str, Any]
    unmergeable: int = 0  # records on the page that cannot be merged
    corrupted: set[str] = field(default_factory=set)  # real ids loaded with wrong values
    lost: set[str] = field(default_factory=set)  # real ids turned unmergeable
    kinds: Counter[str] = field(default_factory=Counter)


def _mergeable(record: Any) -> bool:
    """The issue's rule, judged by the test's own parser: an `id` and a parsable `updated_at`."""
    if not isinstance(record, dict):
        return False
    if not isinstance(record.get("id"), str) or not record["id"]:
        return False
    value = record.get("updated_at")
    if not isinstance(value, str) or not value:
        return False
    try:
        ts(value)
    except ValueError:
        return False
    return True


def apply(page: dict[str, Any], damage: list[tuple[int, tuple[str, Any]]]) -> Applied:
    body = copy.deepcopy(page)
    rows: list[Any] = body["data"]
    real_ids = [r["id"] for r in rows]
    applied = Applied(body=body)
    extra: list[Any] = []
    touched: dict[int, set[str]] = {}
    for index, (kind, arg) in damage:
        i = index % len(rows)
        applied.kinds[kind] += 1
        record = rows[i]
        harmless = False
        if kind == "extra-copy-unmergeable":
            base = copy.deepcopy(page["data"][i])
            if arg == "no-id":
                base.pop("id")
            else:
                base["id"], base["updated_at"] = f"fuzz-{len(extra)}", "not a time"
            extra.append(base)
            continue
        if not isinstance(record, dict):
            continue  # already replaced by a non-object
        if kind == "drop":
            record.pop(arg, None)
            harmless = arg == "schemas"  # hydrated from the detail endpoint
        elif kind == "null":
            record[arg] = None
            harmless = arg == "schemas"
        elif kind == "count-as-string":
            record[arg] = str(record[arg])
            harmless = True
        elif kind == "count-garbage":
            record[arg[0]] = arg[1]
        elif kind == "schemas-not-a-list":
            record["schemas"] = arg
            harmless = True
        elif kind == "schemas-junk-items":
            if isinstance(record.get("schemas"), list):
                record["schemas"] = [*record["schemas"], None, 5, {"no_schema": 1}, {"schema": 7}]
            harmless = True
        elif kind == "schema-item-garbage":
            items = record.get("schemas")
            if isinstance(items, list) and items and isinstance(items[0], dict):
                if arg == "schema":
                    items[0].pop("schema", None)
                else:
                    items[0]["record_count"] = "lots"
            else:
                harmless = True
        elif kind == "bad-timestamp":
            record[arg[0]] = arg[1]
        elif kind == "bad-id":
            record["id"] = arg
        elif kind == "wrong-type":
            record[arg[0]] = arg[1]
        elif kind == "not-an-object":
            rows[i] = arg
        elif kind == "new-field":
            record[arg[0]] = arg[1]
            harmless = True
        if not harmless:
            touched.setdefault(i, set()).add(kind)
    for i, row in enumerate(rows):
        if not _mergeable(row):
            applied.lost.add(real_ids[i])
        elif i in touched:
            applied.corrupted.add(real_ids[i])
    body["data"] = rows + extra
    applied.unmergeable = sum(not _mergeable(r) for r in body["data"])
    return applied


@pytest.fixture(scope="module")
def fuzz_world():
    sb = Sandbox(
        seed=101,
        now=PINNED_NOW,
        plans=[SyncPlan(executions=230, inflight=("running",)), SyncPlan(executions=30)],
    ).start()
    target, other = sb.sync_ids()
    pages = {target: terminal_pages(sb, target)[0], other: terminal_pages(sb, other)[0]}
    yield sb, target, other, pages
    sb.stop()


def _fuzz(fuzz_world, examples: int, seed_value: int) -> Counter[str]:
    sb, target, other, pages = fuzz_world
    tried: Counter[str] = Counter()

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        # each example is two real runs: report the failing case as drawn, do not shrink it
        phases=[Phase.explicit, Phase.generate],
        report_multiple_bugs=False,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(case=cases())
    def one_case(case: dict[str, Any]) -> None:
        sb.clear_faults()
        sb.reset_log()
        applied = apply(pages[target], case["damage"])
        sb.inject(Fault("body", kind_filter="list_executions", sync_id=target, body=applied.body))
        if case["other_page"]:
            broken = PAGE_SHAPES[case["other_page"]]
            if isinstance(broken, dict):
                broken = {**pages[other], **broken}
            sb.inject(Fault("body", kind_filter="list_executions", sync_id=other, body=broken))
        with tempfile.TemporaryDirectory() as tmp:
            etl = Etl(sandbox=sb, tmp=Path(tmp), db_path=Path(tmp) / "wh.duckdb")
            code, out, err = etl.cli("run", "--json")
            summary = json.loads(out.strip().splitlines()[-1])
            assert "Traceback" not in err, err
            lines = err.strip().splitlines()
            if case["other_page"]:
                assert code == 1, err
                assert summary["failed_syncs"] == [other]
                assert lines[-1] == f"polytomic-etl: 1 sync(s) failed: {other}"
            else:
                assert code == 0, err
                assert summary["failed_syncs"] == []
            assert summary["skipped"] == applied.unmergeable
            loaded = etl.executions()
            if applied.unmergeable:
                raws = etl.query("SELECT raw, bulk_sync_id FROM polytomic.rejected_records")
                assert len(raws) == applied.unmergeable
                assert {r[1] for r in raws} == {target}
            truth_target = {e["id"] for e in sb.truth_executions() if e["bulk_sync_id"] == target}
            # every record that could be merged is loaded, in this very run
            assert truth_target - applied.lost <= set(loaded)
            assert not applied.lost & set(loaded)
            sb.clear_faults()
            code, _, err = etl.cli("run")
            assert code == 0, err
            assert_equal_to_truth_except(etl, applied.corrupted | applied.lost)
            assert applied.corrupted <= set(etl.executions())
        tried["examples"] += 1
        tried["page:" + (case["other_page"] or "none")] += 1
        tried.update(applied.kinds)

    seed(seed_value)(one_case)()
    return tried


def test_fuzzed_response_shapes_never_crash_quarantine_what_cannot_merge_and_lose_nothing(
    fuzz_world,
):
    tried = _fuzz(fuzz_world, examples=5, seed_value=1107)
    print(f"fuzz cases tried: {tried['examples']}; shapes: {dict(sorted(tried.items()))}")
    assert tried["examples"] >= 5


@pytest.mark.soak
def test_fuzzed_response_shapes_soak(fuzz_world):
    tried = _fuzz(fuzz_world, examples=120, seed_value=20261101)
    print(f"fuzz cases tried: {tried['examples']}; shapes: {dict(sorted(tried.items()))}")
    assert tried["examples"] >= 100


@pytest.mark.parametrize("shape", [pytest.param("missing", marks=pytest.mark.soak), "null"])
def test_a_page_without_data_but_with_a_next_token_does_not_silently_skip_its_rows(
    make_sandbox, make_etl, shape
):
    sb = make_sandbox(seed=102, syncs=1, executions=230)
    sync_id = sb.sync_ids()[0]
    page = terminal_pages(sb, sync_id)[0]
    body = {k: v for k, v in page.items() if k != "data"}
    if shape == "null":
        body["data"] = None
    sb.inject(Fault("body", kind_filter="list_executions", sync_id=sync_id, body=body))
    # An empty page with a token is a legitimate mid-list answer (a server that filters after
    # paging), so the walk follows it. The rows it hid are found by the rolling verification,
    # on by default, within the same run.
    etl = make_etl(sb, VERIFY_PAGES_PER_RUN="20")
    code, _, _ = etl.cli("run")
    sb.clear_faults()
    missing = {e["id"] for e in sb.truth_executions()} - set(etl.executions())
    assert code == 0 and not missing, (code, len(missing))


@pytest.mark.parametrize(
    "first_lacks",
    [
        pytest.param("version", marks=pytest.mark.soak),
        "status",
        pytest.param("completed_at", marks=pytest.mark.soak),
    ],
)
def test_a_field_the_first_record_of_a_page_lacks_is_kept_for_every_other_record(
    make_sandbox, make_etl, first_lacks
):
    sb = make_sandbox(seed=104, syncs=1, executions=150)
    sync_id = sb.sync_ids()[0]
    page = terminal_pages(sb, sync_id)[0]
    rows = copy.deepcopy(page["data"])
    rows[0].pop(first_lacks, None)  # omitted, as Go's omitempty does
    version = {"version": "2026.1.0"}
    rows[1:] = [{**r, **version} if first_lacks == "version" else r for r in rows[1:]]
    sb.inject(
        Fault("body", kind_filter="list_executions", sync_id=sync_id, body={**page, "data": rows})
    )
    etl = make_etl(sb)
    etl.run()
    loaded = etl.executions()
    served = {r["id"]: r for r in rows}
    assert all(loaded[i].get(first_lacks) is not None for i in list(served)[1:]), first_lacks
    for exec_id, row in list(served.items())[1:]:
        if first_lacks == "completed_at":
            assert ts(loaded[exec_id]["completed_at"]) == ts(row["completed_at"])
        else:
            assert loaded[exec_id][first_lacks] == row[first_lacks]


def test_the_sandbox_version_field_is_loaded_for_every_execution_that_has_it(
    make_sandbox, make_etl
):
    # Real wire data: only newer executions carry `version`, so ascending pages start
    # without it.
    sb = make_sandbox(seed=5, syncs=2, executions=200)
    assert any(e.get("version") for e in sb.truth_executions())
    etl = make_etl(sb)
    etl.run()
    assert_optional_fields_match(etl)


def test_counts_beyond_64_bits_neither_fail_the_sync_nor_stall_it(make_sandbox, make_etl):
    sb = make_sandbox(seed=103, syncs=2, executions=60)
    sync_id = sb.sync_ids()[0]
    page = terminal_pages(sb, sync_id)[0]
    rows = copy.deepcopy(page["data"])
    rows[0]["record_count"] = 2**70  # orjson refuses it; the stdlib parser keeps it exact
    rows[1]["warning_count"] = -1e30  # a float that is_integer()
    rows[2]["schemas"][0]["error_count"] = "9" * 25
    corrupted = {rows[0]["id"], rows[1]["id"], rows[2]["id"]}
    sb.inject(
        Fault("body", kind_filter="list_executions", sync_id=sync_id, body={**page, "data": rows})
    )
    etl = make_etl(sb)
    code, _, err = etl.cli("run")
    assert code == 0 and "Traceback" not in err, err
    assert corrupted <= set(etl.executions())
    etl.run()
    assert_equal_to_truth_except(etl, corrupted)


def test_the_fuzz_oracle_classifies_records_like_the_issue_defines():
    page = {"data": [{"id": "a", "updated_at": "2026-01-01T00:00:00Z", "record_count": 1}]}
    assert apply(page, [(0, ("bad-id", None))]).unmergeable == 1
    assert apply(page, [(0, ("count-as-string", "record_count"))]).corrupted == set()
    assert apply(page, [(0, ("count-garbage", ("record_count", "lots")))]).corrupted == {"a"}
    assert apply(page, [(0, ("extra-copy-unmergeable", "no-id"))]).unmergeable == 1
    assert apply(page, [(0, ("extra-copy-unmergeable", "bad-updated_at"))]).unmergeable == 1
    assert apply(page, [(0, ("bad-timestamp", ("updated_at", "2026-13-45T99:00:00Z")))]).lost == {
        "a"
    }
