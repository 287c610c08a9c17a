"""The README's "The warehouse" table names every table and view a load creates, and only those.

A name is `table` for the dataset (`polytomic`) or `polytomic_staging.table` for the staging
dataset dlt merges through. `rejected_records` (in both) appears with the first rejected
record only: the demo (whose records are all well-formed) must not have it, and a load that
rejects a record must.
"""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import duckdb

from pipelines.cli import main
from pipelines.reports.views import VIEWS
from pipelines.sandbox import Fault
from tests.conftest import first_walk_page

README = Path(__file__).resolve().parents[2] / "README.md"
DATASET, STAGING = "polytomic", "polytomic_staging"
REJECTED = [(DATASET, "rejected_records"), (STAGING, "rejected_records")]
KINDS = {  # the README's kind -> what information_schema calls it
    "table": "BASE TABLE",
    "internal (this tool)": "BASE TABLE",
    "dlt internal": "BASE TABLE",
    "dlt staging": "BASE TABLE",
    "view": "VIEW",
    "helper view": "VIEW",
}


def documented() -> dict[tuple[str, str], str]:
    """(schema, name) -> kind, from the table under `## The warehouse`."""
    text = README.read_text()
    section = text.split("\n## The warehouse\n", 1)[1].split("\n#", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ")]
    assert rows and rows[0].startswith("| name | kind | purpose |"), rows[:1]
    found: dict[tuple[str, str], str] = {}
    for row in rows[1:]:
        name_cell, kind = (cell.strip() for cell in row.strip("|").split("|")[:2])
        assert kind in KINDS, f"unknown kind {kind!r} in README row {row[:80]!r}"
        for name in re.findall(r"`([^`]+)`", name_cell):
            schema, _, table = name.rpartition(".")
            key = (schema or DATASET, table)
            assert key not in found, f"{name} is listed twice"
            found[key] = kind
    return found


def created(db: Path) -> dict[tuple[str, str], str]:
    """(schema, name) -> table type of everything in the dataset and its staging dataset."""
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute(
            "SELECT table_schema, table_name, table_type FROM information_schema.tables "
            "WHERE table_schema IN (?, ?)",
            [DATASET, STAGING],
        ).fetchall()
    return {(schema, name): kind for schema, name, kind in rows}


def assert_documented(found: dict[tuple[str, str], str], doc: dict[tuple[str, str], str]) -> None:
    undocumented = sorted(set(found) - set(doc))
    assert not undocumented, f"in the warehouse, not in the README table: {undocumented}"
    for key, kind in found.items():
        assert KINDS[doc[key]] == kind, f"{key}: the README says {doc[key]}, it is a {kind}"


def test_the_demo_creates_exactly_what_the_readme_lists_but_rejected_records(tmp_path):
    doc = documented()
    db = tmp_path / "demo.duckdb"
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["demo", "--duckdb", str(db), "--html", str(tmp_path / "demo.html")]) == 0
    found = created(db)
    assert_documented(found, doc)
    missing = sorted(set(doc) - set(found))
    assert missing == sorted(REJECTED), f"listed in the README, not created by a load: {missing}"


def test_a_load_that_rejects_a_record_creates_rejected_records_too(make_sandbox, make_etl):
    sandbox = make_sandbox(seed=71, syncs=2, executions=20)
    sync_id = sandbox.sync_ids()[0]
    page = first_walk_page(sandbox, sync_id)
    body = {**page, "data": [*page["data"], {"status": "completed"}]}  # no id: cannot merge
    sandbox.inject(Fault("body", kind_filter="list_executions", sync_id=sync_id, body=body))
    etl = make_etl(sandbox)
    assert etl.run()["skipped"] == 1
    found = created(etl.db_path)
    assert_documented(found, documented())
    assert set(found) == set(documented())


def test_the_readme_lists_every_reporting_view_the_tool_defines():
    doc = documented()
    views = {name for (schema, name), kind in doc.items() if kind in ("view", "helper view")}
    assert views == set(VIEWS)
