"""`polytomic-etl cleanup`: delete the dlt working directories of DuckDB warehouses that are gone.

Each target has a working directory `polytomic_etl_<destination>_<dataset>[_shard]_<hash>`
under the pipelines directory (see the README's "Local dlt state"). dlt records no warehouse
location there that can be read back safely (only its pickled trace holds the path), so every
run writes a small marker, `polytomic_etl_target.json`: the destination type and, for DuckDB,
the file's absolute path (no credentials), and under `served` every warehouse it has served
(newest first, up to `SERVED`: one `--pipeline-name` may serve several). A directory is
deleted only when all of these hold:

- every warehouse its marker names is a DuckDB file, and none of them (nor its `.wal`) exists;
- no run holds its lock (`<name>.lock` beside it; taken for the deletion itself);
- it holds no pending load package (extracted or normalized, not yet loaded).

Everything else is kept and says why: no marker (written by an older version), a server
warehouse (cannot be checked offline), a file that exists or cannot be checked, a marker that
cannot be used. Each directory is judged on its own; its marker is deleted last, so a
deletion that fails half-way leaves a directory the next cleanup still knows.
"""

from __future__ import annotations

import errno
import json
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pipelines.lock import LockHeld, PipelineLock, held_by

log = logging.getLogger("polytomic_etl")

PREFIX = "polytomic_etl_"
MARKER = "polytomic_etl_target.json"
ABOUT = "written by polytomic-etl: the warehouse this dlt working directory serves"
# dlt's folders of load packages not loaded yet: extracted, being normalized, normalized
PENDING_FOLDERS = ("normalize/extracted", "load/new", "load/normalized")
SERVED = 20  # warehouses a marker remembers, newest first
WAREHOUSE = ("destination", "duckdb_path", "dataset", "shard")
_REMEMBERED: dict[str, list[dict[str, Any]]] = {}  # per working dir, in this process

DELETE, DELETED, KEPT, FAILED = "delete", "deleted", "kept", "failed"


class CleanupFailed(Exception):
    exit_code = 1


@dataclass
class Verdict:
    """What cleanup does with one working directory, and why."""

    path: str
    action: str  # delete (would, without --yes), deleted, kept, failed
    reason: str
    destination: str | None = None
    duckdb_path: str | None = None

    def line(self) -> str:
        verb = {DELETE: "would delete", DELETED: "deleted", KEPT: "kept", FAILED: "NOT deleted"}
        return f"{verb[self.action]} {self.path}: {self.reason}"


def marker_content(
    destination: str, duckdb_path: str | None, dataset: str, shard: str | None
) -> str:
    """The marker's text: nothing secret, only what tells the warehouse apart offline."""
    path = duckdb_path if destination == "duckdb" else None
    fields = {"about": ABOUT, "destination": destination, "duckdb_path": path}
    return json.dumps({**fields, "dataset": dataset, "shard": shard}, indent=2) + "\n"


def _served(marker: dict[str, Any]) -> list[dict[str, Any]]:
    """The warehouses a marker names, newest first (a marker of 0.x names only its latest)."""
    listed = marker.get("served")
    entries = [e for e in listed if isinstance(e, dict)] if isinstance(listed, list) else []
    return [{k: e.get(k) for k in WAREHOUSE} for e in entries or [marker]]


def remember_marker(working_dir: Path) -> list[dict[str, Any]]:
    """What the marker names, kept for this process: dlt empties a working directory whose
    warehouse lost its dataset during a run, the marker with it."""
    old, known = read_marker(working_dir), _REMEMBERED.setdefault(str(working_dir), [])
    known += [e for e in (_served(old) if old else []) if e["destination"] and e not in known]
    return known


def _merged(working_dir: Path, content: str) -> str:
    """`content`, with the warehouses the marker named before (newest first) after its own."""
    fields = json.loads(content)
    served = _served(fields)
    served += [e for e in remember_marker(working_dir) if e not in served]
    _REMEMBERED[str(working_dir)] = served = served[:SERVED]
    return json.dumps({**fields, "served": served}, indent=2) + "\n"


def write_marker(working_dir: Path, content: str) -> None:
    """Write the marker into an existing working directory, when it differs; never fails a run."""
    path = working_dir / MARKER
    try:
        if not working_dir.is_dir():
            return
        content = _merged(working_dir, content)
        if path.is_file() and path.read_text() == content:
            return
        temporary = working_dir / f".{MARKER}.{os.getpid()}"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(content)
        os.replace(temporary, path)
    except OSError as exc:
        log.warning("could not write %s: %s", path, exc)


def read_marker(working_dir: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((working_dir / MARKER).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def pending_packages(working_dir: Path) -> list[str]:
    """Load packages dlt has extracted or normalized there but not loaded."""
    found: list[str] = []
    for folder in PENDING_FOLDERS:
        root = working_dir / folder
        if root.is_dir():
            found += sorted(p.name for p in root.iterdir() if p.is_dir())
    return found


def _present(path: Path) -> Path | None:
    """The DuckDB file, or its write-ahead log, that exists (None: neither); raises when unsure."""
    for candidate in (path, path.with_name(path.name + ".wal")):
        try:
            candidate.stat()
        except OSError as exc:
            if exc.errno in (errno.ENOENT, errno.ENOTDIR):
                continue
            raise
        return candidate
    return None


def judge(working_dir: Path, lock_is_ours: bool = False) -> Verdict:
    """Whether `working_dir` can go, and why (or why not); changes nothing.

    `lock_is_ours`: this process holds the directory's run lock (to delete it).
    """
    where = str(working_dir)
    if working_dir.is_symlink():
        return Verdict(where, KEPT, "a symbolic link, not a working directory this tool made")
    marker = read_marker(working_dir)
    if marker is None:
        state = "unreadable" if (working_dir / MARKER).exists() else "no"
        why = "a run by an older version; the next run of its warehouse writes one"
        return Verdict(where, KEPT, f"unknown warehouse: {state} {MARKER} ({why})")
    served = _served(marker)
    destination = str(served[0]["destination"] or "?")
    for index, entry in enumerate(served):
        if entry["destination"] != "duckdb":
            other = str(entry["destination"] or "?")
            also = "it also served " if index else ""
            reason = f"{also}a {other} warehouse: only DuckDB files can be checked offline"
            return Verdict(where, KEPT, reason, destination)
    paths = [entry["duckdb_path"] for entry in served]
    verdict = Verdict(where, KEPT, "", destination, paths[0])
    for raw in paths:
        usable = isinstance(raw, str) and "\0" not in raw and Path(raw).is_absolute()
        if not (usable and Path(raw).name):
            verdict.reason = f"unknown warehouse: {MARKER} names no DuckDB file ({raw!r})"
            return verdict
        try:
            present = _present(Path(raw))
        except OSError as exc:
            verdict.reason = f"cannot tell whether its DuckDB file {raw} exists: {exc.strerror}"
            return verdict
        if present is not None:
            wal = f" is gone, but its write-ahead log {present}" if str(present) != raw else ""
            verdict.reason = f"its DuckDB file {raw}{wal} exists"
            return verdict
    one = len(paths) == 1
    files = f"its DuckDB file{'' if one else 's'} {', '.join(paths)}"
    gone = f"{files} {'is' if one else 'are'} gone"
    holder = None if lock_is_ours else held_by(lock_path(working_dir))
    if holder is not None:
        verdict.reason = f"{gone}, but a run holds its lock ({holder})"
        return verdict
    pending = pending_packages(working_dir)
    if pending:
        verdict.reason = (
            f"{gone}, but it holds {len(pending)} pending load "
            f"package(s) ({', '.join(pending)}) that were never loaded (a load that did not "
            "finish): delete it by hand if that data is not wanted"
        )
        return verdict
    verdict.action, verdict.reason = DELETE, f"{files} no longer exist{'s' if one else ''}"
    return verdict


def _judged(working_dir: Path) -> Verdict:
    """`judge`, but a directory that cannot be judged is kept, saying why: never the others."""
    try:
        return judge(working_dir)
    except Exception as exc:
        return Verdict(str(working_dir), KEPT, f"cannot be judged: {exc}")


def lock_path(working_dir: Path) -> Path:
    return working_dir.with_name(f"{working_dir.name}.lock")


def working_dirs(root: Path) -> list[Path]:
    """The directories under `root` that this tool's pipelines use (by name)."""
    return sorted(
        p for p in root.iterdir() if p.name.startswith(PREFIX) and (p.is_dir() or p.is_symlink())
    )


def delete(verdict: Verdict) -> None:
    """Delete a directory judged deletable, under its run lock, after judging it again."""
    working_dir = Path(verdict.path)
    try:
        with PipelineLock(lock_path(working_dir)):  # no run can start on it meanwhile
            again = judge(working_dir, lock_is_ours=True)
            if again.action != DELETE:
                verdict.action, verdict.reason = again.action, again.reason
                return
            _remove(working_dir)
            lock_path(working_dir).unlink(missing_ok=True)
            log.info("deleted %s and its lock file", working_dir)
    except LockHeld as exc:
        verdict.action = KEPT
        verdict.reason = f"its DuckDB file {verdict.duckdb_path} is gone, but {exc}"
        return
    except OSError as exc:
        where = f" ({exc.filename})" if exc.filename else ""
        verdict.action, verdict.reason = FAILED, f"{exc.strerror or exc}{where}"
        return
    verdict.action = DELETED


def _remove(working_dir: Path) -> None:
    """Delete `working_dir`, its marker last (put back if the directory stays)."""
    marker = working_dir / MARKER
    for top, dirs, files in os.walk(working_dir, topdown=False):
        for name in files:
            if (path := os.path.join(top, name)) != str(marker):
                os.unlink(path)  # an error names the full path
        for name in dirs:
            path = os.path.join(top, name)
            os.unlink(path) if os.path.islink(path) else os.rmdir(path)
    text = marker.read_text() if marker.is_file() else None
    marker.unlink(missing_ok=True)
    _REMEMBERED.pop(str(working_dir), None)
    try:
        working_dir.rmdir()
    except OSError:
        if text is not None:
            marker.write_text(text)
        raise


def cleanup(root: Path, yes: bool) -> list[Verdict]:
    """Judge every working directory of this tool under `root`; delete with `yes`."""
    if not root.is_dir():
        return []
    judged = [_judged(path) for path in working_dirs(root)]
    verdicts = sorted(judged, key=lambda v: v.action != DELETE)  # what goes first, by name
    if yes:
        for verdict in verdicts:
            if verdict.action == DELETE:
                delete(verdict)
    return verdicts


def summary_line(root: Path, verdicts: list[Verdict], yes: bool) -> str:
    count = {a: sum(v.action == a for v in verdicts) for a in (DELETE, DELETED, KEPT, FAILED)}
    if not verdicts:
        return f"polytomic-etl cleanup: no working directories of polytomic-etl under {root}"
    if yes:
        text = f"deleted {count[DELETED]}, kept {count[KEPT]}"
        text += f", failed {count[FAILED]}" if count[FAILED] else ""
        return f"polytomic-etl cleanup: {text} (under {root})"
    hint = "; re-run with --yes to delete" if count[DELETE] else ""
    return (
        f"polytomic-etl cleanup: {count[DELETE]} to delete, {count[KEPT]} kept (under {root}){hint}"
    )


def as_json(root: Path, verdicts: list[Verdict], yes: bool) -> dict[str, Any]:
    ok, directories = not any(v.action == FAILED for v in verdicts), [asdict(v) for v in verdicts]
    return {"ok": ok, "pipelines_dir": str(root), "deleting": yes, "directories": directories}


def report(root: Path, verdicts: list[Verdict], yes: bool, style: str) -> None:
    """Print the outcome (`text`, `json` or `quiet`); a failed deletion is exit 1."""
    failed = [v for v in verdicts if v.action == FAILED]
    if style == "json":
        print(json.dumps(as_json(root, verdicts, yes)))
    elif style == "text":
        from pipelines.reports.terminal import printable  # names are shown, never obeyed

        for verdict in verdicts:
            print(printable(verdict.line()))
        print(printable(summary_line(root, verdicts, yes)))
    if failed:
        raise CleanupFailed(f"could not delete {failed[0].path}: {failed[0].reason}")
