"""Where one `polytomic-etl` run's memory goes: the CLI in-process, sampled from a thread.

    python tests/benchmarks/memwatch.py --report OUT.json [--tracemalloc] -- run --duckdb ...

Every 0.1 s a thread records the process's RSS, the bytes Arrow's memory pool holds, what the
run's `WalkMemory` objects hold (entries of `seen`, `loaded`, `pages`, `continued`, summed
over syncs), with `--tracemalloc` the Python heap, and the stage the main thread is in (dlt
extract, normalize or load, from its stack). At each new RSS peak it keeps the stage and
the innermost frames. With `--tracemalloc` it also snapshots the Python heap by line at the
end of each extract (as normalize starts, on the main thread), where that heap peaks.
`--tracemalloc` slows the run and adds its own memory (reported as `tracemalloc_own_mb`);
read the RSS figures of a run without it.
Used by `profile_load.py`; not part of the suite.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
import tracemalloc
import weakref
from collections import Counter
from pathlib import Path
from typing import Any

STAGES = (("dlt/load", "load"), ("dlt/normalize", "normalize"), ("dlt/extract", "extract"))


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def arrow_mb() -> float:
    pa = sys.modules.get("pyarrow")
    return pa.total_allocated_bytes() / 2**20 if pa is not None else 0.0


def stage_of(frame: Any) -> tuple[str, list[str]]:
    """The dlt stage the main thread is in, and its innermost frames of interest."""
    files, frames = [], []
    while frame is not None:
        name = frame.f_code.co_filename
        files.append(name)
        if ("sources/polytomic" in name or "/dlt/" in name or "duckdb" in name) and len(frames) < 4:
            short = name.split("site-packages/")[-1].split("/tmp/base/")[-1]
            frames.append(f"{frame.f_code.co_name} ({short}:{frame.f_lineno})")
        frame = frame.f_back
    for needle, stage in STAGES:
        if any(needle in f for f in files):
            return stage, frames
    return "other", frames


class Watch:
    def __init__(self, trace: bool) -> None:
        self.trace = trace
        self.samples: list[dict[str, Any]] = []
        self.peak: dict[str, Any] = {"rss_mb": 0.0}
        self.contexts: list[weakref.ref[Any]] = []  # RunContext is a dataclass: unhashable
        self.main = threading.main_thread().ident
        self.stop = threading.Event()
        self.started = time.perf_counter()
        self.heap_snapshot: tracemalloc.Snapshot | None = None  # at the end of an extract
        self.heap_peak: dict[str, Any] = {}
        self._last_heap_mb = 0.0

    def hook_contexts(self) -> None:
        """Remember every `RunContext` the run creates, to size its walk memory."""
        from sources.polytomic import fanout

        init = fanout.RunContext.__init__
        watch = self

        def tracked(self: Any, *args: Any, **kwargs: Any) -> None:
            init(self, *args, **kwargs)
            watch.contexts.append(weakref.ref(self))

        fanout.RunContext.__init__ = tracked  # type: ignore[method-assign]

    def hook_normalize(self) -> None:
        """With tracing, snapshot the Python heap as each normalize starts: the end of an
        extract, where the heap peaks. Taken on the main thread (a snapshot from the sampler
        thread can deadlock with Arrow's threads on Python 3.11)."""
        from dlt.pipeline.pipeline import Pipeline

        normalize = Pipeline.normalize
        watch = self

        def snapshot_first(pipeline: Any, *args: Any, **kwargs: Any) -> Any:
            heap, _ = tracemalloc.get_traced_memory()
            if heap / 2**20 > watch._last_heap_mb:
                watch._last_heap_mb = heap / 2**20
                watch.heap_snapshot = tracemalloc.take_snapshot()
                watch.heap_peak = {
                    "t": round(time.perf_counter() - watch.started, 2),
                    "rss_mb": round(rss_mb(), 1),
                    "arrow_mb": round(arrow_mb(), 1),
                    "python_heap_mb": round(heap / 2**20, 1),
                    "walk_memory": watch.walk_memory(),
                }
            return normalize(pipeline, *args, **kwargs)

        Pipeline.normalize = snapshot_first  # type: ignore[method-assign]

    def walk_memory(self) -> dict[str, int]:
        sizes: Counter[str] = Counter()
        for ref in list(self.contexts):
            ctx = ref()
            for memory in list(getattr(ctx, "memory", {}).values()):
                sizes["syncs"] += 1
                for name in ("seen", "loaded", "pages", "continued"):
                    sizes[name] += len(getattr(memory, name, ()) or ())
        return dict(sizes)

    def sample(self) -> None:
        rss = rss_mb()
        frame = sys._current_frames().get(self.main)
        stage, frames = stage_of(frame) if frame is not None else ("other", [])
        point: dict[str, Any] = {
            "t": round(time.perf_counter() - self.started, 2),
            "rss_mb": round(rss, 1),
            "arrow_mb": round(arrow_mb(), 1),
            "stage": stage,
            "walk_memory": self.walk_memory(),
        }
        if self.trace:
            current, _ = tracemalloc.get_traced_memory()
            point["python_heap_mb"] = round(current / 2**20, 1)
            point["tracemalloc_own_mb"] = round(tracemalloc.get_tracemalloc_memory() / 2**20, 1)
        self.samples.append(point)
        if rss > self.peak["rss_mb"]:
            self.peak = {**point, "frames": frames}

    def loop(self) -> None:
        while not self.stop.wait(0.1):
            try:
                self.sample()
            except Exception as exc:  # a sampler bug must not kill the run
                self.samples.append({"error": repr(exc)})

    def report(self, returncode: int) -> dict[str, Any]:
        by_stage: dict[str, dict[str, float]] = {}
        for s in self.samples:
            if "stage" not in s:
                continue
            top = by_stage.setdefault(s["stage"], {"max_rss_mb": 0.0, "max_arrow_mb": 0.0})
            top["max_rss_mb"] = max(top["max_rss_mb"], s["rss_mb"])
            top["max_arrow_mb"] = max(top["max_arrow_mb"], s["arrow_mb"])
            top["seconds"] = top.get("seconds", 0.0) + 0.1
        out: dict[str, Any] = {
            "returncode": returncode,
            "seconds": time.perf_counter() - self.started,
            "peak": self.peak,
            "by_stage": by_stage,
            "samples": self.samples[:: max(1, len(self.samples) // 400)],
        }
        if self.heap_snapshot is not None:
            out["heap_peak"] = self.heap_peak
            out["heap_peak_python_heap"] = top_lines(self.heap_snapshot, 25)
            out["heap_peak_python_heap_by_file"] = top_files(self.heap_snapshot, 15)
        return out


def _short(path: str) -> str:
    return path.split("site-packages/")[-1].split("/tmp/base/")[-1].split("/work/main/")[-1]


def top_lines(snapshot: tracemalloc.Snapshot, n: int) -> list[dict[str, Any]]:
    stats = snapshot.statistics("lineno")
    return [
        {
            "where": f"{_short(s.traceback[0].filename)}:{s.traceback[0].lineno}",
            "mb": round(s.size / 2**20, 1),
            "blocks": s.count,
        }
        for s in stats[:n]
    ]


def top_files(snapshot: tracemalloc.Snapshot, n: int) -> list[dict[str, Any]]:
    stats = snapshot.statistics("filename")
    return [
        {"file": _short(s.traceback[0].filename), "mb": round(s.size / 2**20, 1)} for s in stats[:n]
    ]


def main() -> int:
    argv = sys.argv[1:]
    split = argv.index("--") if "--" in argv else len(argv)
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--report", type=Path, required=True)
    parser.add_argument("--tracemalloc", action="store_true")
    args = parser.parse_args(argv[:split])
    if args.tracemalloc:
        tracemalloc.start(1)
    watch = Watch(args.tracemalloc)
    watch.hook_contexts()
    if args.tracemalloc:
        watch.hook_normalize()
    thread = threading.Thread(target=watch.loop, daemon=True)
    from pipelines.cli import main as cli

    code = 1
    thread.start()
    try:
        code = cli(argv[split + 1 :])
    finally:
        watch.stop.set()
        thread.join()
        args.report.write_text(json.dumps(watch.report(code), indent=1) + "\n")
    return code


if __name__ == "__main__":
    sys.exit(main())
