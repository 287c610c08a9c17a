"""The README is executed (issue #12): its commands, cron lines, SQL examples and snippets.

Every `polytomic-etl …` command of every fenced block and inline code span (the rule is in
`readme_lines.py`) runs as written against an in-process sandbox: in a fresh working
directory, with a clean HOME and only the sandbox's URL and key in the environment, with the
defaults (no `--duckdb` unless the line has one). The harness substitutes only the sandbox URL
(and port), the key, temporary paths for the file paths a line names, and, in a synopsis
(`[--opt X]`), real values for its placeholders (ID, NAME, N): the form without the optional
parts and the form with all of them both run.

A line that cannot run offline sits in ALLOWLIST with its reason and is still run as far as it
can be. A line that is neither runnable nor allowlisted fails the test, and so does an
allowlist entry that no longer matches a README line.

How each kind of line runs:
- DuckDB lines share one working directory: `run`, then every other line that opens the
  warehouse for writing (`backfill`, `views`, `check`, any new subcommand), one at a time in
  README order; only after them, and after `demo`, the read-only lines (`report`, `sql`,
  `cleanup`) and the SQL examples, in parallel (DuckDB lets no reader open a file a writer
  holds).
  A bare `polytomic-etl sql` runs on a pseudo-terminal (type a statement, read the answer,
  Ctrl-D).
- cron lines: `env -i HOME=… PATH=/usr/bin:/bin`, from `/`, config in the `--config-dir` the
  line names; a first load and an idle run, each leaving stdout, stderr and the log empty.
- `sandbox` lines: a free port instead of 8765; the block's curl runs against it; Ctrl-C.
- remote destinations: allowlisted, run without credentials, exit 2 with one line.
- `--destination postgres`: for real, into a fresh database (its own test, which skips
  without a server unless CI=true).
- Python snippets: executed when their imports are available, else ruff (pyflakes).

README_TEST_TRACE=1 prints each subprocess with its wall time.
"""

from __future__ import annotations

import argparse
import ast
import functools
import importlib
import json
import os
import pty
import re
import resource
import select
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from pipelines.cli import build_parser
from tests.conftest import POSTGRES_DSN
from tests.ops import readme_lines as rl

CLI = Path(sys.executable).parent / "polytomic-etl"
RUFF = Path(sys.executable).parent / "ruff"
README = Path(__file__).resolve().parents[2] / "README.md"
REPO = README.parent
PATH = f"{CLI.parent}:/usr/bin:/bin"  # an activated venv, or `pip install` on PATH
CRON_PATH = "/usr/bin:/bin"
TIMEOUT = 60
# mostly CPU-bound subprocesses; one worker more than cores for lines that wait (a prompt)
WORKERS = min(4, (os.cpu_count() or 2) + 1)


@dataclass(frozen=True)
class Allowed:
    reason: str
    exit_code: int = 0  # what the line must still do when it is run here


def _remote(name: str) -> Allowed:
    return Allowed(
        f"remote destination: {name} needs cloud credentials (the exports before it are "
        "placeholders); run without them, it must exit 2 with one line naming the setting",
        exit_code=2,
    )


CRON_MAIL_LINE = (
    "/opt/polytomic-etl/.venv/bin/polytomic-etl run --quiet --config-dir /opt/polytomic-etl "
    "--duckdb /var/lib/polytomic/warehouse.duckdb >> /var/log/polytomic-etl.log 2>&1 || "
    'echo "polytomic-etl failed: exit $?" | mail -s polytomic-etl ops@example.com'
)
CURL_LINE = (
    'curl -s -H "Authorization: Bearer <key it printed>" "http://127.0.0.1:8765/api/bulk/syncs/'
    '<sync id>/executions?only_terminal=true&ascending=true&limit=2"'
)

# README line (as written) -> why it cannot run here exactly as written.
ALLOWLIST: dict[str, Allowed] = {
    "polytomic-etl run --destination bigquery": _remote("BigQuery"),
    "polytomic-etl run --destination snowflake": _remote("Snowflake"),
    "polytomic-etl run --destination databricks": _remote("Databricks"),
    "polytomic-etl run --destination motherduck": _remote("MotherDuck"),
    CRON_MAIL_LINE: Allowed(
        "`mail` needs a mail transport: replaced by a stub that records what it would send "
        "(a successful run must send nothing)"
    ),
    CURL_LINE: Allowed(
        "placeholders `<key it printed>` and `<sync id>`: filled in from what the sandbox "
        "printed when it started"
    ),
}

# Only these open the shared DuckDB file read-only, or not at all (`cleanup` deletes only the
# working dirs of files that are gone, under their run lock). DuckDB lets no reader beside a
# writer, so every other line for the file (`check` writes a test table) runs in the one
# sequence of writers.
READERS = ("report", "sql", "cleanup")
INDEPENDENT = ("demo",)  # its own file, demo.duckdb
SYNOPSIS_N = {"--port": "{port}", "--seed": "1", "--syncs": "2", "--executions": "5"}


@functools.cache
def subcommands() -> list[str]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return list(action.choices)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Outcome:
    label: str
    ok: bool
    detail: str = ""
    kind: str = "command"  # command, sql, snippet
    allowlisted: str = ""
    skipped: str = ""


@dataclass
class Proc:
    code: int
    out: str
    err: str
    seconds: float

    def brief(self) -> str:
        tail = (self.err.strip() or self.out.strip())[-600:]
        return f"exit {self.code} after {self.seconds:.1f}s: {tail}"


def execute(
    argv: list[str] | str, cwd: Path | str, env: dict[str, str], stdin: str | None = None
) -> Proc:
    """One subprocess; a string is a shell line, run by bash like a terminal would."""
    args = ["bash", "-c", argv] if isinstance(argv, str) else argv
    start = time.monotonic()
    if os.environ.get("README_TEST_TRACE"):
        print(f"[{time.strftime('%X')}] start {str(argv)[:150]}", flush=True)
    try:
        done = subprocess.run(
            args,
            cwd=cwd,
            env=env,
            input=stdin,
            stdin=None if stdin is not None else subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
        )
    except subprocess.TimeoutExpired as exc:
        return Proc(-1, str(exc.stdout or ""), f"timed out after {TIMEOUT}s", TIMEOUT)
    if os.environ.get("README_TEST_TRACE"):
        print(
            f"[{time.strftime('%X')}] {time.monotonic() - start:.1f}s {str(argv)[:150]}", flush=True
        )
    return Proc(done.returncode, done.stdout, done.stderr, time.monotonic() - start)


def on_terminal(argv: list[str], cwd: Path, env: dict[str, str], typed: str) -> Proc:
    """Run on a pseudo-terminal: wait for a prompt, type `typed`, wait for the answer (42),
    then Ctrl-D (repeated while it runs). Each step waits for the output to go quiet."""
    master, slave = pty.openpty()
    start = time.monotonic()
    proc = subprocess.Popen(
        argv, cwd=cwd, env={**env, "TERM": "dumb"}, stdin=slave, stdout=slave, stderr=slave
    )
    os.close(slave)
    output, stage, last = b"", 0, time.monotonic()
    try:
        while time.monotonic() - start < TIMEOUT:
            ready, _, _ = select.select([master], [], [], 0.1)
            chunk = b""
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: the child closed the terminal
                    pass
            if chunk:
                output, last = output + chunk, time.monotonic()
                continue
            if proc.poll() is not None:
                break
            quiet = time.monotonic() - last > 0.3
            if stage == 0 and quiet and (output or time.monotonic() - start > 10):
                os.write(master, typed.encode())
                stage = 1
            elif stage >= 1 and quiet and b"42" in output and time.monotonic() - last > stage:
                # Ctrl-D at the prompt; again if it came before readline took the terminal
                os.write(master, b"\x04")
                stage, last = stage + 1, time.monotonic()
        else:
            proc.kill()
    finally:
        code = proc.wait(timeout=10)
        os.close(master)
    text = output.decode(errors="replace").replace("\r\n", "\n")
    return Proc(code, text, "", time.monotonic() - start)


@dataclass
class Line:
    """One README command line, in the form it runs here."""

    readme: rl.Command
    text: str  # after synopsis expansion
    route: str
    linenos: list[int] = field(default_factory=list)

    @property
    def label(self) -> str:
        where = ",".join(str(n) for n in self.linenos)
        return f"README:{where} {self.text}"


def destination_of(text: str) -> str | None:
    match = re.search(r"--destination[ =](\w+)", text)
    return match.group(1) if match else None


def route_of(cmd: rl.Command, text: str) -> str:
    if cmd.where == "cron":
        return "cron"
    if cmd.subcommand == "sandbox":
        return "sandbox"
    dest = destination_of(text)
    if dest == "postgres":
        return "postgres"
    if dest and dest != "duckdb":
        return "remote"
    if cmd.subcommand in INDEPENDENT:
        return "independent"
    if cmd.subcommand in READERS:
        return "reader"
    return "writer"


def readme_lines(text: str) -> list[Line]:
    """Every command line of the README, synopses expanded, duplicates merged."""
    found: dict[tuple[str, ...], Line] = {}
    for cmd in rl.commands(text, subcommands()):
        forms = rl.expand_synopsis(cmd.text)
        for form in forms:
            if len(forms) > 1:  # a synopsis: `a|b` picks the first
                form = re.sub(r"(?<=\s)([\w-]+)\|[\w|-]+(?=\s|$)", r"\1", form)
            route = route_of(cmd, form)
            key = (route, form, *cmd.script)
            if key not in found:
                found[key] = Line(cmd, form, route)
            found[key].linenos.append(cmd.lineno)
    return list(found.values())


def not_runnable(text: str) -> str:
    """Why a line (after substitution) cannot run as written, or ''."""
    if re.search(r"(^|[|;&]\s*)mail\b", text):
        return "pipes into `mail`"
    left = rl.PLACEHOLDER.search(text)
    if left:
        return f"placeholder {left.group(0)!r}"
    return ""


class Readme:
    """One run of the README: a sandbox, temporary directories, and the outcomes."""

    def __init__(self, sandbox: Any, tmp: Path) -> None:
        self.sb = sandbox
        self.tmp = tmp
        self.ids = sandbox.sync_ids()
        self.names = {s["id"]: s["name"] for s in sandbox.truth_syncs()}
        self.outcomes: list[Outcome] = []
        self.used_allowlist: set[str] = set()
        self.runs = 0
        self.lock = threading.Lock()
        self.work = self.fresh_dir("work")
        self.home = self.fresh_dir("home")

    # -- environment -------------------------------------------------------------------------

    def fresh_dir(self, name: str) -> Path:
        path = self.tmp / name
        suffix = 1
        while path.exists():
            suffix += 1
            path = self.tmp / f"{name}{suffix}"
        path.mkdir(parents=True)
        return path

    def env(self, home: Path | None = None, **extra: str) -> dict[str, str]:
        return {
            "HOME": str(home or self.home),
            "PATH": PATH,
            "SOURCES__POLYTOMIC__API_KEY": self.sb.api_key,
            "SOURCES__POLYTOMIC__BASE_URL": self.sb.base_url,
            **extra,
        }

    def allowed(self, text: str) -> Allowed | None:
        entry = ALLOWLIST.get(text)
        if entry is not None:
            self.used_allowlist.add(text)
        return entry

    def record(self, line: Line | str, ok: bool, detail: str = "", **kw: Any) -> None:
        label = line.label if isinstance(line, Line) else line
        with self.lock:
            self.outcomes.append(Outcome(label, ok, detail, **kw))

    def count_run(self) -> None:
        with self.lock:
            self.runs += 1

    # -- substitution ------------------------------------------------------------------------

    def substitute(self, text: str, root: Path | None = None, port: int | None = None) -> str:
        """Temporary paths for the paths a line names; real values for synopsis placeholders."""

        def path(match: re.Match[str]) -> str:
            value = match.group(0)
            after = text[match.end() :].split(None, 1)
            if value.endswith("/polytomic-etl") and after and after[0] in subcommands():
                return str(CLI)
            if not value.startswith("/") or root is None:
                return value
            mirrored = root / value.lstrip("/")
            mirrored.parent.mkdir(parents=True, exist_ok=True)
            return str(mirrored)

        text = re.sub(r"(?<![\w.:/-])[\w.]*/[\w./@-]+", path, text)
        if port is not None:
            text = re.sub(r"(?<=:)8765\b|(?<=--port )(?:8765|N)\b", str(port), text)
        return text

    def argv(self, text: str, port: int | None = None) -> list[str]:
        """Split a (non-shell) line and fill in a synopsis' placeholders."""
        tokens = shlex.split(text, comments=True)
        ids = iter(self.ids * 2)
        out: list[str] = []
        for i, token in enumerate(tokens):
            flag = tokens[i - 1] if i else ""
            if token == "ID":
                token = next(ids)
            elif token == "NAME":
                token = self.names[self.ids[0]]
            elif token == "I/N":
                token = "0/2"
            elif token == "N" and flag in SYNOPSIS_N:
                token = SYNOPSIS_N[flag].format(port=port)
            out.append(token)
        if out and out[0].endswith("/polytomic-etl"):
            out[0] = str(CLI)
        return out

    # -- runners -----------------------------------------------------------------------------

    def check(self, line: Line, proc: Proc, expect: int = 0, extra: str = "") -> bool:
        self.count_run()
        ok = proc.code == expect and not extra
        detail = "" if ok else f"expected exit {expect}; {proc.brief()} {extra}".strip()
        allowed = ALLOWLIST.get(line.text)
        self.record(line, ok, detail, allowlisted=allowed.reason if allowed else "")
        return ok

    def run_plain(self, line: Line, cwd: Path | None = None) -> None:
        """A line for the shared warehouse in the shared working directory."""
        cwd = cwd or self.work
        text = self.substitute(line.text)
        why = not_runnable(text)
        if why and not self.allowed(line.readme.text):
            self.record(line, False, f"not runnable here ({why}) and not in ALLOWLIST")
            return
        if line.readme.subcommand == "sql" and re.fullmatch(r"\S*polytomic-etl sql", text):
            proc = on_terminal(self.argv(text), cwd, self.env(), "SELECT 42 AS answer;\n")
            self.check(line, proc, extra="" if "42" in proc.out else "(no answer on the prompt)")
            return
        shell = bool(rl.SHELL_SYNTAX.search(rl.strip_quoted(text)))
        proc = execute(text if shell else self.argv(text), cwd, self.env())
        missing = ""
        tokens = shlex.split(text, comments=True)
        for i, token in enumerate(tokens[:-1]):
            if token in (">", "--html") and not (cwd / tokens[i + 1]).exists():
                missing = f"(it did not write {tokens[i + 1]})"
        self.check(line, proc, extra=missing if proc.code == 0 else "")

    def run_remote(self, line: Line) -> None:
        allowed = self.allowed(line.text)
        if allowed is None:
            self.record(line, False, "remote destination not in ALLOWLIST (add it with a reason)")
            return
        dest = destination_of(line.text) or ""
        home = self.fresh_dir("home-remote")
        proc = execute(self.argv(line.text), self.fresh_dir("remote"), self.env(home))
        lines = proc.err.strip().splitlines()
        problem = ""
        if len(lines) != 1 or proc.out.strip():
            problem = f"(want one line on stderr, nothing on stdout; got {len(lines)} lines)"
        elif f"DESTINATION__{dest.upper()}__" not in lines[0]:
            problem = f"(the line does not name DESTINATION__{dest.upper()}__…)"
        self.check(line, proc, expect=allowed.exit_code, extra=problem)

    def run_sandbox(self, line: Line) -> None:
        port = free_port()
        text = self.substitute(line.text, port=port)
        argv = self.argv(text, port=port)
        if "--port" not in argv:  # the default port may be taken on a shared machine
            argv += ["--port", str(port)]
        self.count_run()
        start = time.monotonic()
        proc = subprocess.Popen(
            argv,
            cwd=self.fresh_dir("sandbox"),
            env=self.env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        printed: list[str] = []
        problems: list[str] = []
        watchdog = threading.Timer(TIMEOUT, proc.kill)  # a sandbox that never prints its URL
        watchdog.start()
        try:
            assert proc.stdout is not None
            while True:
                out = proc.stdout.readline()
                if not out:
                    break
                printed.append(out)
                if out.startswith("Try:"):
                    break
            said = "".join(printed)
            key = re.search(r"API key: (\S+)", said)
            first = re.search(r"/api/bulk/syncs/([^/\s]+)/executions", said)
            if not key or not first or f":{port}" not in said:
                problems.append(f"it did not print its URL, key and a sync: {said[-400:]!r}")
            else:
                problems += self.talk_to_sandbox(line, port, key.group(1), first.group(1))
        except Exception as exc:
            problems.append(f"talking to it failed: {exc!r}")
        finally:
            watchdog.cancel()
            proc.send_signal(signal.SIGINT)  # Ctrl-C
            try:
                code = proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                code = proc.wait()
                problems.append("Ctrl-C did not stop it")
        seconds = time.monotonic() - start
        if code != 0:
            problems.append(f"exit {code} after Ctrl-C")
        allowed = ALLOWLIST.get(line.readme.script[0]) if line.readme.script else None
        detail = "; ".join(problems) + f" ({seconds:.1f}s)" if problems else ""
        self.record(line, not problems, detail, allowlisted=allowed.reason if allowed else "")

    def talk_to_sandbox(self, line: Line, port: int, key: str, sync_id: str) -> list[str]:
        if not line.readme.script:  # answers with the key it printed
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/api/bulk/syncs",
                headers={"Authorization": f"Bearer {key}"},
            )
            direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))
            with direct.open(request, timeout=10) as response:
                return [] if response.status == 200 else [f"HTTP {response.status}"]
        problems = []
        for step in line.readme.script:
            if not_runnable(step) and not self.allowed(step):
                problems.append(f"{step!r}: not runnable here and not in ALLOWLIST")
                continue
            text = self.substitute(step, port=port)
            text = text.replace("<key it printed>", key).replace("<sync id>", sync_id)
            if not_runnable(text):
                problems.append(f"{step!r}: {not_runnable(text)} the harness cannot fill in")
                continue
            proc = execute(text, self.work, self.env())
            try:
                items = json.loads(proc.out)["data"]
                assert proc.code == 0 and 0 < len(items) <= 2
            except Exception:
                problems.append(f"{step!r}: {proc.brief()} {proc.out[:300]!r}")
        return problems

    def run_cron_block(self, lines: list[Line]) -> None:
        """As cron does: `env -i HOME=… PATH=/usr/bin:/bin`, from `/`, twice (load, idle)."""
        root = self.fresh_dir("cron")
        home = root / "home"
        home.mkdir()
        mail_box = root / "mail.txt"
        stub = root / "bin" / "mail"
        stub.parent.mkdir()
        stub.write_text(f'#!/bin/sh\n{{ echo "mail $*"; cat; }} >> {mail_box}\n')
        stub.chmod(0o700)
        prepared = []
        for line in lines:
            why = not_runnable(line.text)
            if why and not self.allowed(line.text):
                self.record(line, False, f"not runnable here ({why}) and not in ALLOWLIST")
                continue
            text = self.substitute(line.text, root=root)
            text = re.sub(r"(?<=\|)\s*mail\b", f" {stub}", text)
            config = re.search(r"--config-dir\s+(\S+)", text)
            if config:
                dlt_dir = Path(config.group(1)) / ".dlt"
                dlt_dir.mkdir(parents=True, exist_ok=True)
                (dlt_dir / "secrets.toml").write_text(
                    f'[sources.polytomic]\napi_key = "{self.sb.api_key}"\n'
                )
                (dlt_dir / "config.toml").write_text(
                    f'[sources.polytomic]\nbase_url = "{self.sb.base_url}"\n'
                )
            prepared.append((line, text))
        env = ["env", "-i", f"HOME={home}", f"PATH={CRON_PATH}"]
        failed: set[str] = set()
        for attempt in ("first load", "idle run"):
            for line, text in prepared:
                if line.text in failed:
                    continue
                proc = execute([*env, "/bin/sh", "-c", text], "/", os.environ.copy())
                problems = []
                if proc.code != 0:
                    problems.append(f"exit {proc.code}")
                if proc.out or proc.err:
                    problems.append(f"cron would mail this: {(proc.out + proc.err)[-600:]!r}")
                for target in re.findall(r">>?\s*(/\S+)", text):
                    written = Path(target).read_text() if Path(target).exists() else ""
                    if written:
                        problems.append(f"{target} got: {written[-600:]!r}")
                        Path(target).write_text("")
                if mail_box.exists():
                    problems.append(f"mail sent: {mail_box.read_text()[-600:]!r}")
                    mail_box.unlink()
                self.count_run()
                if problems:
                    failed.add(line.text)
                    allowed = ALLOWLIST.get(line.text)
                    reason = allowed.reason if allowed else ""
                    detail = f"{attempt}: " + "; ".join(problems)
                    self.record(line, False, detail, allowlisted=reason)
        for line, text in prepared:
            if line.text in failed:
                continue
            db = re.search(r"--duckdb\s+(\S+)", text)
            problem = ""
            if db:
                try:
                    with duckdb.connect(db.group(1), read_only=True) as con:
                        query = "SELECT count(*) FROM polytomic.bulk_syncs"
                        count = con.execute(query).fetchone()
                    if not count or count[0] != len(self.ids):
                        problem = f"bulk_syncs holds {count} rows, the sandbox {len(self.ids)}"
                except Exception as exc:
                    problem = f"the warehouse it names cannot be read: {exc}"
            allowed = ALLOWLIST.get(line.text)
            self.record(line, not problem, problem, allowlisted=allowed.reason if allowed else "")

    def run_sql_example(
        self, example: rl.SqlExample, extra: list[str], cwd: Path, **env: str
    ) -> None:
        self.count_run()
        proc = execute([str(CLI), "sql", *extra, example.sql], cwd, self.env(**env))
        target = " ".join(extra) or "the default DuckDB warehouse"
        label = f"README:{example.lineno} SQL ({example.title or 'untitled'}) on {target}"
        self.record(label, proc.code == 0, "" if proc.code == 0 else proc.brief(), kind="sql")

    def run_snippet(self, block: rl.Block) -> None:
        """Executed with the destination swapped to DuckDB where its imports are available;
        otherwise it must pass ruff's pyflakes checks (F821: undefined names, F401, ...) and
        the README must say, just before it, that it is not tested here."""
        self.count_run()
        label = f"README:{block.start} python snippet"
        missing = _unavailable(block.code)
        if not missing:
            code = re.sub(r'destination="\w+"', 'destination="duckdb"', block.code)
            proc = execute(
                [sys.executable, "-c", code],
                self.fresh_dir("snippet"),
                self.env(PYTHONPATH=str(REPO)),
            )
            detail = "" if proc.code == 0 else f"executed with DuckDB: {proc.brief()}"
            self.record(label, proc.code == 0, detail, kind="snippet")
            return
        stdin_as = ["--stdin-filename", f"readme_{block.start}.py", "-"]
        lint = subprocess.run(
            [str(RUFF), "check", "--isolated", "--no-cache", "--select", "F", *stdin_as],
            input=block.code,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
        )
        problems = [f"ruff (pyflakes): {lint.stdout.strip()}"] if lint.returncode else []
        if "not tested here" not in block.lead:
            problems.append(
                f"needs {', '.join(missing)}, which this suite lacks: the README must say "
                "'not tested here' just before it"
            )
        reason = f"not tested here: needs {', '.join(missing)}; checked with ruff only"
        self.record(label, not problems, "; ".join(problems), kind="snippet", allowlisted=reason)


def _unavailable(code: str) -> list[str]:
    """The modules a snippet imports that cannot be imported here."""
    names = set()
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    missing = []
    for name in sorted(names):
        try:
            importlib.import_module(name)
        except Exception:  # not installed, or a helper whose own dependency is missing
            missing.append(name)
    return missing


def run_all(jobs: list[Callable[[], None]], workers: int = 3) -> None:
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures: list[Future[None]] = [pool.submit(job) for job in jobs]
        for future in futures:
            future.result()


def summary(readme: Readme) -> str:
    kinds = [o.kind for o in readme.outcomes]
    allowlisted = {o.label: o.allowlisted for o in readme.outcomes if o.allowlisted}
    head = (
        f"README: {kinds.count('command')} command lines ({readme.runs} runs in all), "
        f"{kinds.count('sql')} SQL examples, {kinds.count('snippet')} Python snippets; "
        f"{len(allowlisted)} allowlisted"
    )
    return "\n".join([head, *(f"  allowlisted {k}: {v}" for k, v in allowlisted.items())])


def failures(readme: Readme) -> str:
    return "\n".join(f"  {o.label}\n    {o.detail}" for o in readme.outcomes if not o.ok)


# -- the tests -----------------------------------------------------------------------------------


def test_the_readme_runs_against_the_sandbox(make_sandbox, tmp_path):
    started = time.monotonic()
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_before = usage.ru_utime + usage.ru_stime
    sb = make_sandbox(seed=12, syncs=3, executions=12)
    readme = Readme(sb, tmp_path)
    text = README.read_text()
    lines = readme_lines(text)
    examples = rl.sql_examples(text)
    assert examples, "the README has no SQL examples"
    by_route: dict[str, list[Line]] = {}
    for line in lines:
        by_route.setdefault(line.route, []).append(line)
    assert by_route.get("writer") and by_route.get("cron"), "the extraction found no commands"

    def writers() -> None:
        # `run` first (a fresh clone has no warehouse), then the others in README order
        for line in sorted(by_route["writer"], key=lambda li: li.text != "polytomic-etl run"):
            readme.run_plain(line)

    cron: dict[int, list[Line]] = {}
    for line in by_route["cron"]:
        cron.setdefault(line.readme.block_start, []).append(line)

    def guarded(job: Callable[..., None], *args: Any) -> Callable[[], None]:
        def call() -> None:
            try:
                job(*args)
            except Exception as exc:  # a harness error is reported with the README lines
                readme.record(f"{job.__name__}{args!r}"[:300], False, f"harness error: {exc!r}")

        return call

    independent = by_route.get("independent", [])
    demos = [li for li in independent if li.readme.subcommand == "demo"]
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        # The writers (one sequence: the critical path) and the demo first; the lines that
        # touch neither of their files fill the other workers meanwhile. Only when both are
        # done are the readers queued: no reader ever opens a file while a line writes it.
        gate = [pool.submit(guarded(writers))]
        gate += [pool.submit(guarded(readme.run_plain, li)) for li in demos]
        rest = [
            *(pool.submit(guarded(readme.run_cron_block, group)) for group in cron.values()),
            *(pool.submit(guarded(readme.run_plain, li)) for li in independent if li not in demos),
            *(pool.submit(guarded(readme.run_remote, li)) for li in by_route.get("remote", [])),
            *(pool.submit(guarded(readme.run_sandbox, li)) for li in by_route.get("sandbox", [])),
            *(pool.submit(guarded(readme.run_snippet, b)) for b in rl.python_snippets(text)),
        ]
        for future in gate:
            future.result()
        rest += [pool.submit(guarded(readme.run_plain, li)) for li in by_route.get("reader", [])]
        rest += [
            pool.submit(guarded(readme.run_sql_example, ex, [], readme.work)) for ex in examples
        ]
        for future in rest:
            future.result()

    for entry in sorted(k for k in ALLOWLIST if k not in readme.used_allowlist):
        readme.record(f"ALLOWLIST {entry!r}", False, "matches no README line any more")
    cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
    report = summary(readme) + (
        f"\n  wall time {time.monotonic() - started:.1f}s; "
        f"subprocess CPU {cpu.ru_utime + cpu.ru_stime - cpu_before:.1f}s"
    )
    print("\n" + report)
    assert all(o.ok for o in readme.outcomes), f"{report}\nfailing:\n{failures(readme)}"


def test_the_readme_postgres_lines_load_for_real(make_sandbox, tmp_path, postgres_dataset):
    """The Postgres example runs as written, into a fresh database instead of `test`."""
    import psycopg2

    sb = make_sandbox(seed=13, syncs=2, executions=8)
    readme = Readme(sb, tmp_path)
    text = README.read_text()
    lines = [li for li in readme_lines(text) if li.route == "postgres"]
    assert lines, "the README has no Postgres example"
    database = postgres_dataset
    admin = psycopg2.connect(POSTGRES_DSN)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f"CREATE DATABASE {database}")
    try:
        for line in lines:
            url = line.readme.env.get("DESTINATION__POSTGRES__CREDENTIALS", "")
            fresh = re.sub(r"/[^/?]+(?=\?|$)", f"/{database}", url)
            env = {**line.readme.env, "DESTINATION__POSTGRES__CREDENTIALS": fresh}
            proc = execute(readme.argv(line.text), readme.work, readme.env(**env))
            if readme.check(line, proc):
                run_all(
                    [
                        lambda ex=ex, env=env: readme.run_sql_example(
                            ex, ["--destination", "postgres"], readme.work, **env
                        )
                        for ex in rl.sql_examples(text)
                    ]
                )
    finally:
        with admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
        admin.close()
    report = summary(readme)
    print("\n" + report)
    assert all(o.ok for o in readme.outcomes), f"{report}\nfailing:\n{failures(readme)}"


def test_a_fresh_clone_runs_reports_and_queries_with_the_defaults(make_sandbox, tmp_path):
    """No --duckdb, a clean HOME, only the sandbox's URL and key in the environment."""
    sb = make_sandbox(seed=15, syncs=2, executions=10)
    cwd, home = tmp_path / "clone", tmp_path / "home"
    cwd.mkdir()
    home.mkdir()
    env = {
        "HOME": str(home),
        "PATH": PATH,
        "SOURCES__POLYTOMIC__API_KEY": sb.api_key,
        "SOURCES__POLYTOMIC__BASE_URL": sb.base_url,
    }
    steps = [
        ["polytomic-etl", "run"],
        ["polytomic-etl", "report"],
        ["polytomic-etl", "sql", "SELECT count(*) FROM bulk_sync_executions"],
    ]
    for argv in steps:
        proc = execute(argv, cwd, env)
        assert proc.code == 0, f"{' '.join(argv)}: {proc.brief()}"
    assert str(len(sb.truth_executions())) in proc.out, proc.out
    assert (cwd / "polytomic_etl.duckdb").exists()
    assert not (cwd / "polytomic.duckdb").exists()


SAMPLE = """
Run `polytomic-etl` from cron; `polytomic-etl run` loads, `pipelines.runner.run` is code.

```sh
polytomic-etl report [--since 2025-06-01] [--bulk-sync-id ID]...   # a synopsis
.venv/bin/polytomic-etl sql --duckdb demo.duckdb "SELECT 1"
echo "SELECT 1" | polytomic-etl sql --json
make demo
```

```
polytomic-etl run: syncs=8 executions=124
```

```cron
# m h dom mon dow  command
7 * * * *  /opt/x/.venv/bin/polytomic-etl run --quiet --config-dir /opt/x
```
"""


def test_the_extraction_rule():
    found = {(c.where, c.text) for c in rl.commands(SAMPLE, subcommands())}
    assert found == {
        ("inline", "polytomic-etl run"),
        ("sh", "polytomic-etl report [--since 2025-06-01] [--bulk-sync-id ID]..."),
        ("sh", '.venv/bin/polytomic-etl sql --duckdb demo.duckdb "SELECT 1"'),
        ("sh", 'echo "SELECT 1" | polytomic-etl sql --json'),
        ("cron", "/opt/x/.venv/bin/polytomic-etl run --quiet --config-dir /opt/x"),
    }
    assert rl.expand_synopsis(
        "polytomic-etl report [--since 2025-06-01] [--bulk-sync-id ID]..."
    ) == [
        "polytomic-etl report",
        "polytomic-etl report --since 2025-06-01 --bulk-sync-id ID --bulk-sync-id ID",
    ]
    # what makes a line need an ALLOWLIST entry
    assert not_runnable('x || echo "failed" | mail -s etl ops@example.com')
    assert not_runnable("polytomic-etl sql <query>")
    assert not_runnable('polytomic-etl sql "SELECT …"')
    assert not not_runnable('polytomic-etl sql "SELECT * FROM sync_health"')


def test_only_read_only_lines_run_beside_each_other():
    """DuckDB lets no process open a file another one writes: `check` writes a test table, so
    it runs in the sequence of writers, never beside a `report` or `sql` line; a subcommand not
    known to be read-only is a writer."""
    sample = "```sh\n" + "\n".join(f"polytomic-etl {name}" for name in subcommands()) + "\n```\n"
    routes = {line.readme.subcommand: line.route for line in readme_lines(sample)}
    assert routes == {
        "run": "writer",
        "backfill": "writer",
        "views": "writer",
        "check": "writer",
        "report": "reader",
        "sql": "reader",
        "cleanup": "reader",
        "demo": "independent",
        "sandbox": "sandbox",
    }
