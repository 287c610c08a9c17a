"""``python -m pipelines.sandbox`` serves until interrupted."""

from __future__ import annotations

import argparse
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from pipelines.sandbox import cli

ROOT = Path(__file__).resolve().parents[2]


def test_add_arguments_and_build_use_the_documented_options() -> None:
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    args = parser.parse_args(
        "--port 0 --seed 4 --syncs 2 --executions 30 --token-style offset --paginate-syncs "
        "--no-list-schemas --latency-ms 5 --failure-rate 0.5".split()
    )
    sb = cli.build(args)
    assert len(sb.sync_ids()) == 2
    assert len(sb.truth_executions()) == 60
    options = sb.options
    assert (options.token_style, options.paginate_syncs) == ("offset", True)
    assert options.list_includes_schemas is False and options.latency_ms == 5


def test_python_dash_m_serves_and_stops_on_ctrl_c() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipelines.sandbox", "--port", "0", "--seed", "1", "--syncs", "3",
         "--executions", "200", "--token-style", "offset"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(4)]
        base_url = re.search(r"http://127\.0\.0\.1:\d+", lines[0]).group(0)  # type: ignore[union-attr]
        api_key = lines[1].split(":", 1)[1].strip()
        assert "curl" in lines[3] and api_key in lines[3]
        curl_args = re.findall(r'"([^"]*)"', lines[3].split("curl", 1)[1])
        if shutil.which("curl"):
            out = subprocess.run(
                ["curl", "-sS", "-H", curl_args[0], "-H", curl_args[1], curl_args[2]],
                capture_output=True,
                text=True,
                timeout=10,
                check=True,
            )
            assert '"data":[' in out.stdout
        body = requests.get(
            f"{base_url}/api/bulk/syncs", headers={"Authorization": f"Bearer {api_key}"}, timeout=5
        ).json()
        assert len(body["data"]) == 3
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize("sig", [signal.SIGTERM])
def test_python_dash_m_stops_cleanly_on_sigterm(sig: signal.Signals) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipelines.sandbox", "--port", "0", "--executions", "5"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert "serving at" in proc.stdout.readline()
        proc.send_signal(sig)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
