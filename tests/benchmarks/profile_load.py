"""Profile one `polytomic-etl run` first load against a seeded sandbox; not part of the suite.

    python -m tests.benchmarks.profile_load --syncs 1000 --per-sync 200 --py-spy /tmp/p.txt
    python -m tests.benchmarks.profile_load --syncs 1000 --per-sync 200 \
        --memory /tmp/m.json --tracemalloc /tmp/t.json
    python -m tests.benchmarks.profile_load --summarize /tmp/p.txt     # top 15 of a profile

Starts the sandbox the suite uses (`sandbox_proc.py`, same seed and clock), then for each
mode a first load in a fresh working directory, with the command and environment the suite
uses (`measure.product_cmd`):

* `--py-spy FILE`: `py-spy record --nonblocking --function -f raw` (folded stacks, frames
  aggregated by the function's first line), then the top 15 by own and cumulative samples.
* `--memory FILE`: the run in-process under `memwatch.py` (RSS, Arrow pool, walk memory,
  stage, sampled every 0.1 s; what was live at the peak).
* `--tracemalloc FILE`: the same with the Python heap traced (slower, more memory).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from .measure import HERE, PY, SandboxProcess, clean_env, fmt_run, product_cmd, run_contestant


def summarize(path: Path, n: int = 15) -> str:
    """Top `n` frames by own samples (leaf) and by cumulative samples (anywhere in a stack)."""
    own: Counter[str] = Counter()
    cumulative: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        samples = int(count)
        frames = [_short(f) for f in stack.split(";")]
        total += samples
        own[frames[-1]] += samples
        for frame in set(frames):
            cumulative[frame] += samples
    lines = [f"{path}: {total} samples (all threads, idle excluded)", ""]
    for title, counter in (("own", own), ("cumulative", cumulative)):
        lines += [f"| # | {title} % | function (file:line) |", "|---:|---:|---|"]
        for i, (frame, samples) in enumerate(counter.most_common(n), 1):
            lines.append(f"| {i} | {100 * samples / max(1, total):.1f} | {frame} |")
        lines.append("")
    return "\n".join(lines)


def _short(frame: str) -> str:
    for marker in ("site-packages/", "/tmp/base/", "/work/main/", "lib/python3.11/"):
        if marker in frame:
            name, _, rest = frame.partition(" (")
            return f"{name} ({rest.split(marker)[-1]}" if rest else frame
    return frame


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--syncs", type=int, default=1000)
    parser.add_argument("--per-sync", type=int, default=200)
    parser.add_argument("--py-spy", type=Path, help="write the folded profile here")
    parser.add_argument("--rate", type=int, default=100, help="py-spy samples per second")
    parser.add_argument("--memory", type=Path, help="write memwatch's report here")
    parser.add_argument("--tracemalloc", type=Path, help="memwatch with tracemalloc, here")
    parser.add_argument("--summarize", type=Path, help="summarize a folded profile; no run")
    parser.add_argument("--plain", action="store_true", help="also one plain measured run")
    args = parser.parse_args(argv)
    if args.summarize:
        print(summarize(args.summarize))
        return 0
    with (
        SandboxProcess(args.syncs, args.per_sync) as sb,
        tempfile.TemporaryDirectory(prefix="polytomic-profile-") as tmp,
    ):
        env = clean_env()
        env.update(SOURCES__POLYTOMIC__API_KEY=sb.api_key, SOURCES__POLYTOMIC__BASE_URL=sb.base_url)
        if args.plain:
            run = run_contestant("polytomic-etl", sb, Path(tmp) / "plain")
            print(f"plain: {fmt_run(run)}", flush=True)
        modes: list[tuple[str, Path, list[str]]] = []
        if args.py_spy:
            spy = shutil.which("py-spy") or str(Path(PY).parent / "py-spy")
            record = [spy, "record", "--nonblocking", "--function", "-r", str(args.rate)]
            modes.append(("py-spy", args.py_spy, [*record, "-f", "raw", "-o", str(args.py_spy)]))
        watch = [PY, str(HERE / "memwatch.py")]
        if args.memory:
            modes.append(("memory", args.memory, [*watch, "--report", str(args.memory)]))
        if args.tracemalloc:
            traced = ["--report", str(args.tracemalloc), "--tracemalloc"]
            modes.append(("tracemalloc", args.tracemalloc, [*watch, *traced]))
        for name, out, prefix in modes:
            workdir = Path(tmp) / name
            workdir.mkdir()
            cmd = product_cmd(workdir)
            if name != "py-spy":
                cmd = cmd[1:]  # memwatch runs the CLI in-process: the arguments only
            sb.reset()
            done = subprocess.run([*prefix, "--", *cmd], env=env, cwd=workdir, text=True)
            print(f"{name}: exit {done.returncode}, wrote {out}", flush=True)
            if name == "py-spy":
                print(summarize(out), flush=True)
            else:
                report: dict[str, Any] = json.loads(out.read_text())
                print(json.dumps({k: report.get(k) for k in ("peak", "by_stage")}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
