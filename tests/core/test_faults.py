"""HTTP faults, auth failures, deleted and failing syncs, malformed records."""

from __future__ import annotations

import json

import pytest

from pipelines.sandbox import Fault
from tests.conftest import assert_matches_truth, first_walk_page


@pytest.mark.parametrize("kind", ["429", "500", "502", "503", "502_html", "reset"])
def test_transient_faults_are_retried_and_survived(make_sandbox, make_etl, kind):
    sb = make_sandbox(seed=21, syncs=2, executions=150)
    sb.inject(Fault(kind, times=2, kind_filter="list_executions", retry_after=0))
    etl = make_etl(sb)
    summary = etl.run()
    assert summary["failed_syncs"] == []
    assert_matches_truth(etl)
    assert any(r.status != 200 for r in sb.requests) or kind == "reset"


@pytest.mark.parametrize("body", ["api_error", "legacy"])
def test_a_401_ends_the_run_with_one_clean_line_and_exit_2(make_sandbox, make_etl, body):
    sb = make_sandbox(seed=22, syncs=1, executions=5, unauthorized_body=body)
    etl = make_etl(sb, API_KEY="wrong-key-0123456789")
    code, out, err = etl.cli("run")
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "authentication failed" in lines[0]
    assert "Traceback" not in err and "wrong-key-0123456789" not in err + out


def test_missing_credentials_name_the_setting_and_its_environment_variable(
    make_sandbox, make_etl, monkeypatch
):
    sb = make_sandbox(seed=23, syncs=1, executions=5)
    etl = make_etl(sb, API_KEY="")
    monkeypatch.delenv("SOURCES__POLYTOMIC__API_KEY", raising=False)
    code, _, err = etl.cli("run")
    assert code == 2
    assert "SOURCES__POLYTOMIC__API_KEY" in err and len(err.strip().splitlines()) == 1


def test_plain_http_base_url_is_refused_unless_loopback(make_sandbox, make_etl):
    sb = make_sandbox(seed=24, syncs=1, executions=5)
    etl = make_etl(sb, BASE_URL="http://polytomic.example.com")
    code, _, err = etl.cli("run")
    assert code == 2 and "plain-http" in err


def test_basic_auth_with_deployment_key_and_organization_id_loads(make_sandbox, make_etl):
    sb = make_sandbox(seed=25, syncs=1, executions=30)
    etl = make_etl(
        sb, API_KEY="", DEPLOYMENT_KEY=sb.deployment_key, ORGANIZATION_ID=sb.organization_id
    )
    etl.run()
    assert_matches_truth(etl)
    assert all(r.auth_ok for r in sb.requests if r.kind != "other")


def test_a_sync_deleted_between_listing_and_walking_is_skipped(make_sandbox, make_etl):
    sb = make_sandbox(seed=26, syncs=3, executions=40)
    gone = sb.sync_ids()[1]

    def delete_after_listing(sandbox, record):
        if record.kind == "list_executions" and gone in sandbox.sync_ids():
            sandbox.delete_sync(gone)  # listed a moment ago, gone before its own walk

    sb.add_hook(delete_after_listing)
    etl = make_etl(sb, CONCURRENCY="1")
    code, _out, err = etl.cli("run", "--json")
    assert code == 0, err
    assert "not found" in err
    assert_matches_truth(etl, sync_ids=set(sb.sync_ids()))


def test_an_unknown_explicit_bulk_sync_id_is_a_usage_error(make_sandbox, make_etl):
    sb = make_sandbox(seed=27, syncs=1, executions=5)
    code, _, err = make_etl(sb).cli("run", "--bulk-sync-id", "no-such-sync")
    assert code == 2 and "no-such-sync" in err


def test_a_sync_that_keeps_failing_does_not_stop_the_others(make_sandbox, make_etl):
    sb = make_sandbox(seed=28, syncs=3, executions=60)
    bad = sb.sync_ids()[0]
    sb.inject(Fault("500", times=None, sync_id=bad, kind_filter="list_executions"))
    etl = make_etl(sb)
    code, out, err = etl.cli("run", "--json")
    assert code == 1
    assert bad in err
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["failed_syncs"] == [bad]
    others = set(sb.sync_ids()) - {bad}
    assert_matches_truth(etl, sync_ids=others)
    sb.clear_faults()
    etl.run()
    assert_matches_truth(etl)


def test_a_malformed_record_is_quarantined_and_the_rest_load(make_sandbox, make_etl):
    sb = make_sandbox(seed=29, syncs=1, executions=230)
    sync_id = sb.sync_ids()[0]
    real = first_walk_page(sb, sync_id)
    page = real["data"]
    wrong_types = {**page[1], "record_count": str(page[1]["record_count"]), "schemas": {"a": 1}}
    broken = [{"status": "completed"}, {**page[0], "id": "x-1", "updated_at": "yesterday"}]
    body = {**real, "data": [page[0], wrong_types, *broken, *page[2:]]}
    sb.inject(Fault("body", kind_filter="list_executions", sync_id=sync_id, body=body))
    etl = make_etl(sb)
    summary = etl.run()
    assert summary["skipped"] == 2
    reasons = sorted(r[0] for r in etl.query("SELECT reason FROM polytomic.rejected_records"))
    assert reasons == ["missing or non-string id", "missing or unparsable updated_at"]
    assert etl.executions()[page[1]["id"]]["record_count"] == page[1]["record_count"]
    assert_matches_truth(etl)  # the quarantine did not stall the cursor or lose a row


def test_a_non_json_page_fails_that_sync_and_the_next_run_recovers(make_sandbox, make_etl):
    sb = make_sandbox(seed=30, syncs=2, executions=40)
    bad = sb.sync_ids()[1]
    sb.inject(Fault("body", sync_id=bad, kind_filter="list_executions", body=b"<html>oops"))
    etl = make_etl(sb)
    code, _, err = etl.cli("run")
    assert code == 1 and bad in err
    etl.run()
    assert_matches_truth(etl)
