"""A one-line progress display for `run` and `backfill` on a terminal.

A first load of many syncs takes minutes; without this it is silent. The line shows syncs
done out of the total, executions extracted, requests and the rate, redrawn at most twice a
second on stderr, and erased when the run ends. The CLI shows it only when stdout is a
terminal and neither `--quiet`, `--json` nor a dlt `--progress` collector is asked for.
"""

from __future__ import annotations

import sys
import threading
import time
from types import TracebackType
from typing import Any, TextIO

INTERVAL = 0.5


class ProgressLine:
    def __init__(self, context: Any, stream: TextIO | None = None) -> None:
        self.context = context
        self.stream = stream or sys.stderr
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="progress", daemon=True)
        self._started = time.monotonic()
        self._drawn = False

    def __enter__(self) -> ProgressLine:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        if self._drawn:
            self.stream.write("\r\x1b[K")  # the summary line follows on a clean line
            self.stream.flush()

    def line(self) -> str:
        counts = self.context.counts
        total, done = counts.get("syncs_total", 0), counts.get("syncs_done", 0)
        client = self.context.client
        requests = sum(client.requests.values()) if client is not None else 0
        executions = counts.get("executions", 0)
        rate = executions / max(time.monotonic() - self._started, 0.001)
        return (
            f"polytomic-etl: {done}/{total} syncs · {executions:,} executions · "
            f"{requests:,} requests · {rate:,.0f} executions/s"
        )

    def _loop(self) -> None:
        while not self._stop.wait(INTERVAL):
            try:
                self.stream.write("\r\x1b[K" + self.line())
                self.stream.flush()
                self._drawn = True
            except (OSError, ValueError):
                return  # the terminal went away; the run goes on
