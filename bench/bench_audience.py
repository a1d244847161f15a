"""Resolving a 1,000,000-row CSV audience: time and peak memory.

Each measurement runs in a fresh child process, so its peak resident memory (`ru_maxrss`) is its
own; the child's memory after imports is subtracted. Peak Python allocations are measured again
with `tracemalloc` in a separate child (tracemalloc slows the code, so it is not timed).

* baseline: a bare `csv.reader` loop over the file (no classification, nothing kept);
* reach: `core.audience.funnel` (segment -> with id -> valid -> unique, samples), what the
  console shows before launch;
* freeze: the launch's outbox for shared content (multicasts of 500, retry keys, exclusions),
  written to disk in batches;
* for scale: a list of `Profile` objects for the first 100,000 rows, what holding the audience
  as objects would cost (x10 for a million).

    .venv/bin/python bench/bench_audience.py [--rows 1000000]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def job(kind: str, path: Path) -> Any:
    from core.audience import funnel, iter_profiles
    from core.models import CampaignSpec, Segment, SenderAccount, TextV2Message
    from core.outbox import Outbox, freeze

    segment = Segment(parent_segment="All", segment="Members", profiles_file=str(path))
    if kind == "baseline":
        with path.open(newline="", encoding="utf-8") as handle:
            rows = sum(1 for _ in csv.reader(handle)) - 1
        return {"rows": rows}
    if kind == "reach":
        reach = funnel(segment)
        return {
            "segment": reach.segment,
            "unique": reach.unique,
            "missing": reach.missing,
            "invalid": reach.invalid,
            "duplicate": reach.duplicate,
        }
    if kind == "freeze":
        spec = CampaignSpec(
            name="bench", messages=[TextV2Message(text="冬のセール https://example.com/sale")]
        )
        outbox = Outbox(Path(tempfile.mkdtemp(prefix="lcc-bench-outbox-")) / "outbox")
        from core.audience import resolve_batches
        from core.compose import Composer

        manifest = freeze(
            outbox,
            campaign_id="cmp-bench",
            spec=spec,
            account=SenderAccount(id="oa", name="Bench OA"),
            aggregation_unit="bench",
            batches=resolve_batches(segment, attributes=False),
            personalised=False,
            render=Composer(spec, campaign_id="cmp-bench").bundle,
            frozen_at=datetime.now(UTC),
        )
        size = sum(f.stat().st_size for f in outbox.directory.iterdir())
        return {"requests": manifest.totals.requests, "outbox_mb": size / 1e6}
    if kind == "objects":
        profiles = []
        for profile in iter_profiles(segment):
            profiles.append(profile)
            if len(profiles) >= 100_000:
                break
        return {"profiles": len(profiles)}
    raise SystemExit(f"unknown job {kind}")


def child(kind: str, path: Path, traced: bool) -> None:
    # Imports are not part of the measurement.
    import core.audience
    import core.outbox
    import core.service  # noqa: F401  (the launch path, as a launch loads it)

    before = rss_mb()
    if traced:
        tracemalloc.start()
    started_cpu, started = time.process_time(), time.perf_counter()
    result = job(kind, path)
    seconds, cpu = time.perf_counter() - started, time.process_time() - started_cpu
    peak_traced = tracemalloc.get_traced_memory()[1] / 1e6 if traced else None
    result.update(
        seconds=seconds,
        cpu=cpu,
        rss_peak_mb=rss_mb(),
        rss_growth_mb=rss_mb() - before,
        traced_peak_mb=peak_traced,
    )
    sys.stdout.write(json.dumps(result) + "\n")


def run_child(kind: str, path: Path, *, traced: bool = False) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", kind, str(path)]
    if traced:
        command.append("--traced")
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{kind} failed:\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--child", nargs=2, metavar=("JOB", "CSV"), help=argparse.SUPPRESS)
    parser.add_argument("--traced", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], Path(args.child[1]), args.traced)
        return
    from bench_delivery import load_generator

    folder = Path(tempfile.mkdtemp(prefix="lcc-bench-audience-"))
    path = folder / "members.csv"
    started = time.perf_counter()
    stats = load_generator().write_audience(path, args.rows)
    print(
        f"audience CSV: {stats.rows:,} rows ({path.stat().st_size / 1e6:.0f} MB), "
        f"{stats.unique:,} unique ids, {stats.missing:,} missing, {stats.invalid:,} invalid, "
        f"{stats.duplicate:,} duplicates (written in {time.perf_counter() - started:.1f} s)"
    )
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}, load average {os.getloadavg()[0]:.1f}"
    )
    print(
        f"{'measurement':34} {'wall s':>7} {'CPU s':>6} {'rows/s':>10} {'RSS growth':>11} "
        f"{'traced peak':>11}"
    )
    baseline = run_child("baseline", path)
    for kind, label in (
        ("baseline", "bare csv.reader loop"),
        ("reach", "reach funnel (funnel)"),
        ("freeze", "freeze to outbox (multicast)"),
        ("objects", "Profile objects, first 100,000"),
    ):
        measured = baseline if kind == "baseline" else run_child(kind, path)
        traced = run_child(kind, path, traced=True)
        rows = 100_000 if kind == "objects" else stats.rows
        print(
            f"{label:34} {measured['seconds']:7.2f} {measured['cpu']:6.2f} "
            f"{rows / measured['seconds']:10,.0f} {measured['rss_growth_mb']:9.0f} MB "
            f"{traced['traced_peak_mb']:9.0f} MB"
        )
        if kind == "reach":
            check = (measured["unique"], measured["missing"], measured["invalid"])
            if check != (stats.unique, stats.missing, stats.invalid):
                raise SystemExit(f"reach counted {check}, the file holds {stats}")
        if kind == "freeze":
            print(
                f"{'':34} {measured['requests']:,} multicast requests, outbox "
                f"{measured['outbox_mb']:.0f} MB on disk"
            )


if __name__ == "__main__":
    main()
