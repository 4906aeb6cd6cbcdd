"""Does one nightly pass cost what the data costs, not what the request count costs?

    .venv/bin/python benchmarks/single_pass.py [--learners 200000]

Generates a lake, then builds progress reports three ways and prints ratios:
  one request      - the job for a single batch
  all in one pass  - the job for every batch's requests at once (what the DAG does)
  one job each     - the naive alternative: a separate job per request
Lake bytes scanned come from Spark's own event log (the scans' file-size metrics);
wall times are medians of --repeat runs on this machine and only their ratios mean
anything. Nothing here is asserted by the test suite: rerun it to check a claim.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from coursedash.lakegen import generate_lake  # noqa: E402
from coursedash.manifest import Manifest, read_summary  # noqa: E402
from coursedash.spark import submit  # noqa: E402


def lake_bytes_scanned(event_dir: Path) -> int:
    """Bytes of lake files the job's Parquet scans covered, from Spark's event log.

    A scan's "size of files read" is a driver-side SQL metric; summing it over the
    scans that ran counts each read of a table, and none of the cached re-reads.
    """
    scan_metrics: set[int] = set()
    total = 0

    def collect(plan: dict) -> None:
        if plan.get("nodeName", "").startswith("Scan parquet"):
            scan_metrics.update(m["accumulatorId"] for m in plan["metrics"] if m["name"] == "size of files read")
        for child in plan.get("children", []):
            collect(child)

    for log in (p for p in event_dir.rglob("*") if p.is_file()):  # Spark 4 writes a folder per app
        for line in log.read_text().splitlines():
            event = json.loads(line) if line.startswith("{") else {}
            if "sparkPlanInfo" in event:  # execution start, or its adaptive re-plan
                collect(event["sparkPlanInfo"])
            elif event.get("Event", "").endswith("SparkListenerDriverAccumUpdates"):
                total += sum(value for accumulator, value in event["accumUpdates"] if accumulator in scan_metrics)
    return total


def run_job(lake: Path, requests: list[dict], work: Path, name: str) -> tuple[float, int, int]:
    """(seconds, lake bytes scanned, rows staged) of one progress job over these requests."""
    manifest, out, events = work / f"{name}.json", work / name, work / f"{name}-events"
    events.mkdir(parents=True)
    Manifest("progress", "2026-11-28", str(lake), requests).save(manifest)
    started = time.perf_counter()
    submit("jobs/progress_report.py", ["--manifest", str(manifest), "--out", str(out)],
           conf={"spark.eventLog.enabled": "true", "spark.eventLog.dir": events.as_uri(),
                 "spark.eventLog.compress": "false"})
    seconds = time.perf_counter() - started
    rows = sum(r.get("rows", 0) for r in read_summary(out)["requests"].values())
    return seconds, lake_bytes_scanned(events), rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--learners", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    import logging

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")  # the jobs' progress
    with tempfile.TemporaryDirectory(prefix="coursedash-bench-") as tmp:
        work = Path(tmp)
        summary = generate_lake(work / "lake", learners=args.learners)
        batches = summary["batches"]
        requests = [
            {"request_id": f"r{i}", "course_id": b["course_id"], "batch_id": b["batch_id"]}
            for i, b in enumerate(batches)
        ]

        def median(name, reqs):
            runs = [run_job(work / "lake", reqs, work, f"{name}-{i}") for i in range(args.repeat)]
            return statistics.median(r[0] for r in runs), runs[0][1], runs[0][2]

        one = median("one", requests[:1])
        together = median("together", requests)
        each = [run_job(work / "lake", [r], work, f"each-{r['request_id']}") for r in requests]
        each_seconds, each_bytes = sum(e[0] for e in each), sum(e[1] for e in each)

    print(f"\nlake: {args.learners} learners, {len(requests)} progress requests (one per batch)\n")
    print("| way | requests | time vs one request | lake bytes scanned vs one request |")
    print("|---|---|---|---|")
    print("| one request | 1 | 1.00 | 1.00 |")
    print(f"| all in one pass | {len(requests)} | {together[0] / one[0]:.2f} | {together[1] / one[1]:.2f} |")
    print(f"| one job each | {len(requests)} | {each_seconds / one[0]:.2f} | {each_bytes / one[1]:.2f} |")
    print(f"\none pass is {each_seconds / together[0]:.1f}x faster than a job per request "
          f"and scans {each_bytes / together[1]:.1f}x less of the lake; rows staged: {together[2]}")


if __name__ == "__main__":
    main()
