"""`polytomic-etl demo` runs end to end and every planted problem shows up in the views."""

from __future__ import annotations

import contextlib
import io
import shlex

import duckdb

from pipelines.cli import main


def test_demo_runs_end_to_end_and_each_planted_problem_shows(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["demo", "--duckdb", "demo.duckdb", "--html", "demo-report.html"])
    assert code == 0
    text = out.getvalue()
    assert "syncs=8" in text and "failed_syncs=0" in text
    hints = [shlex.split(line) for line in text.splitlines() if " sql --duckdb " in line]
    queries = [argv for argv in hints if argv[-1].startswith("SELECT")]
    assert len(queries) == 2 and all(argv[0].endswith("polytomic-etl") for argv in queries)
    for argv in queries:  # the closing hint works as printed
        answer = io.StringIO()
        with contextlib.redirect_stdout(answer):
            assert main(argv[1:]) == 0, argv
        assert "HubSpot" in answer.getvalue()
    html = (tmp_path / "demo-report.html").read_text()
    assert "<svg" in html and "http://" not in html.replace("http://www.w3.org", "")

    con = duckdb.connect(str(tmp_path / "demo.duckdb"), read_only=True)

    def one(sql: str) -> list[tuple]:
        return con.execute(sql).fetchall()

    # the run log marks the file as the demo's: the next demo may replace it, nothing else
    assert one("SELECT DISTINCT mode FROM polytomic.etl_runs") == [("demo",)]
    health = dict(one("SELECT name, health FROM polytomic.sync_health"))
    assert health["HubSpot → BigQuery"] == "broken"
    assert health["NetSuite → Snowflake"] == "late"
    assert health["Legacy MySQL → Snowflake"] == "inactive"
    assert health["Salesforce → Snowflake"] == "healthy"
    flapping = dict(one("SELECT name, flapping FROM polytomic.flapping"))
    assert flapping["Postgres → Redshift"] is True
    assert flapping["Salesforce → Snowflake"] is False
    chronic = one('SELECT name, "schema" FROM polytomic.schema_health WHERE chronic')
    assert chronic == [("Salesforce CPQ → Snowflake", "Opportunity")]
    stuck = one("SELECT name FROM polytomic.stuck_executions")
    assert stuck == [("Marketo → Snowflake",)]
    drop = one(
        "SELECT count(*) FROM polytomic.volume_anomalies WHERE is_anomaly AND level = 'execution' "
        "AND name = 'Zendesk → Postgres' AND run_at > now() - INTERVAL '2 days'"
    )
    assert drop == [(1,)]
    open_incidents = one("SELECT name FROM polytomic.incidents WHERE state = 'open'")
    assert ("HubSpot → BigQuery",) in open_incidents
