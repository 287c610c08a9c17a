"""A long run on a terminal shows one progress line; a pipe, `--quiet` and `--json` see none."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import Etl

CLI = str(Path(sys.executable).with_name("polytomic-etl"))


@pytest.fixture
def slow_org(make_sandbox, make_etl) -> Etl:
    """Enough latency that the run outlasts the display's half-second refresh."""
    sandbox = make_sandbox(seed=4, syncs=3, executions=120, latency_ms=150)
    return make_etl(sandbox)


def _on_a_terminal(etl: Etl, *extra: str) -> tuple[int, str]:
    """Run the CLI with stdout and stderr on a pseudo-terminal; return its exit and output."""
    leader, follower = pty.openpty()
    env = {**os.environ, **etl.env(), "HOME": str(etl.tmp)}
    proc = subprocess.Popen(
        [CLI, *etl.args("run", *extra)], stdout=follower, stderr=follower, env=env
    )
    os.close(follower)
    chunks = []
    while True:
        ready, _, _ = select.select([leader], [], [], 60)
        if not ready:
            break
        try:
            data = os.read(leader, 4096)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    os.close(leader)
    return proc.wait(timeout=60), b"".join(chunks).decode(errors="replace")


def test_a_run_on_a_terminal_shows_one_redrawn_progress_line(slow_org):
    code, screen = _on_a_terminal(slow_org)
    assert code == 0, screen
    frames = [f for f in screen.split("\r") if "syncs ·" in f]
    assert frames, screen
    assert "/3 syncs" in frames[-1] and "executions" in frames[-1] and "requests" in frames[-1]
    assert "\n" not in "".join(frames).replace("\x1b[K", "").split("polytomic-etl run:")[0]
    assert screen.rstrip().splitlines()[-1].lstrip("\r\x1b[K").startswith("polytomic-etl run:")


@pytest.mark.parametrize("extra", [(), ("--quiet",), ("--json",)])
def test_a_pipe_or_quiet_or_json_gets_no_progress_line(slow_org, extra):
    if extra:  # on a terminal, but asked to be quiet or to print JSON
        code, screen = _on_a_terminal(slow_org, *extra)
        assert code == 0 and "syncs ·" not in screen
        return
    env = {**os.environ, **slow_org.env(), "HOME": str(slow_org.tmp)}
    done = subprocess.run(
        [CLI, *slow_org.args("run")], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "syncs ·" not in done.stdout + done.stderr and "\r" not in done.stderr


def test_verbose_says_what_each_sync_did_without_dlts_info_lines(make_sandbox, make_etl):
    etl = make_etl(make_sandbox(seed=5, syncs=2, executions=30))
    code, _, err = etl.cli("run", "--verbose")
    assert code == 0, err
    per_sync = [line for line in err.splitlines() if "INFO: sync " in line]
    assert len(per_sync) == 2 and all("page(s)" in line and "cursor" in line for line in per_sync)
    assert "|[INFO]|" not in err and "|[WARNING]|" not in err
