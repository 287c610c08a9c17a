"""The HTML page's digest: the lists ``model.digest_sections`` gives the terminal, with each
time marked UTC and, where one run is meant, its execution id (to find it in Polytomic)."""

from __future__ import annotations

from pipelines.reports.charts import utc
from pipelines.reports.model import DIGEST_ANOMALIES, Report, Row, fmt_seconds, sync_label
from pipelines.reports.terminal import html_name, html_text

Item = tuple[str, str, list[tuple[str, str]]]  # name, detail, [(what, execution id)]


def _latest(report: Report, sid: str, outcome: str) -> list[tuple[str, str]]:
    """The sync's latest run with ``outcome`` among the report's runs, as an id to show."""
    found = [r for r in report.runs if r["bulk_sync_id"] == sid and r["outcome"] == outcome]
    if not found:
        return []
    what = {"failed": "latest failed run", "partial": "latest partial run"}
    return [(what.get(outcome, "latest success"), str(found[-1]["execution_id"]))]


def _chronic_run(report: Report, row: Row) -> list[tuple[str, str]]:
    failed = [
        c
        for c in report.schema_grid
        if c["bulk_sync_id"] == row["bulk_sync_id"]
        and c["schema"] == row["schema"]
        and c["schema_outcome"] == "failed"
    ]
    return [("latest failure", str(failed[-1]["execution_id"]))] if failed else []


def _anomaly(row: Row) -> str:
    if row["zero_after_nonzero"]:
        change = " (zero after non-zero)"
    elif row["pct_change"] is not None:
        change = f" ({row['pct_change'] * 100:+.0f}%)"
    else:
        change = ""
    return (
        f"{utc(row['run_at'])}: {row['record_count']} rows vs median "
        f"{row['baseline_median']:.0f}{change}"
    )


def sections(report: Report) -> list[tuple[str, list[Item]]]:
    """(title, items) in the terminal's order; empty sections included."""
    out: list[tuple[str, list[Item]]] = []
    for health, outcome in (("broken", "failed"), ("degraded", "partial"), ("late", "success")):
        out.append(
            (
                health.capitalize(),
                [
                    (sync_label(r), r["health_reason"], _latest(report, r["bulk_sync_id"], outcome))
                    for r in report.with_health(health)
                ],
            )
        )
    flapping = [
        (
            sync_label(r),
            f"{r['flips']} flips in the last {r['terminal_runs']} runs: {r['sequence']}",
            [],
        )
        for r in report.flapping
    ]
    out.append(("Flapping", flapping))
    chronic = [
        (
            f"{sync_label(r)} / {r['schema']}",
            f"failed {r['chronic_failures']} of its last {r['chronic_window_runs']} completed runs"
            + (f": {r['latest_error_message']}" if r["latest_error_message"] else ""),
            _chronic_run(report, r),
        )
        for r in report.chronic
    ]
    out.append(("Chronic schemas", chronic))
    stuck = [
        (
            sync_label(r),
            f"{r['status']} for {fmt_seconds(r['running_s'])} (since "
            f"{utc(r['started_at'] or r['created_at'])}), threshold "
            f"{fmt_seconds(r['threshold_s'])} ({r['threshold_basis']})",
            [("run", str(r["execution_id"]))],
        )
        for r in report.stuck
    ]
    out.append(("Stuck runs", stuck))
    incidents = [
        (
            sync_label(r),
            f"{r['length_runs']} run(s) since {utc(r['started_at'])}"
            + (f": {r['first_error_message']}" if r["first_error_message"] else ""),
            [("first failed run", str(r["first_failed_execution_id"]))],
        )
        for r in report.incidents
        if r["state"] == "open"
    ]
    out.append(("Open incidents", incidents))
    anomalies: list[Item] = [
        (
            sync_label(r) + (f" / {r['schema']}" if r["schema"] else ""),
            _anomaly(r),
            [("run", str(r["execution_id"]))],
        )
        for r in report.anomalies[:DIGEST_ANOMALIES]
    ]
    hidden = len(report.anomalies) - DIGEST_ANOMALIES
    if hidden > 0:
        anomalies.append(("…", f"{hidden} more in volume_anomalies (WHERE is_anomaly)", []))
    out.append((f"Volume anomalies since {utc(report.since)}", anomalies))
    return out


def _item(name: str, detail: str, ids: list[tuple[str, str]]) -> str:
    runs = "".join(
        f' <span class="exec">· {html_text(what)}: execution <code>{html_text(eid)}</code></span>'
        for what, eid in ids
    )
    return f"<li><b>{html_name(name)}</b>: {html_text(detail)}{runs}</li>"


def digest_html(report: Report) -> str:
    """The digest's lists, or a line saying nothing needs attention."""
    html = "".join(
        f"<h3>{html_text(title)}</h3><ul>" + "".join(_item(*item) for item in items) + "</ul>"
        for title, items in sections(report)
        if items
    )
    return html or "<p>Nothing needs attention.</p>"
