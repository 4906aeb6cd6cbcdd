"""Where the dashboard figures' time goes on a lake: each part timed alone, in one local Spark session.

    .venv/bin/python benchmarks/figures_parts.py var/benchmark/lakes/<lake>/lake [--repeat 2]

The figures (jobs/dashboard_figures.py) read the whole lake, so they are the part of a
night that grows with it (docs/performance.md, "What makes a bigger lake cost more").
Each part is written to Spark's `noop` sink, which computes every row and stores
nothing; the first round also warms the JVM, so compare the later rounds. The session
has the settings of a local night on a lake above the small-lake size.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the jobs package of this checkout

from coursedash.spark import get_session
from jobs import dashboard_figures
from jobs.frames import active_enrolments, one_content_each
from jobs.progress_report import best_attempts


def seconds(df: DataFrame) -> float:
    start = time.perf_counter()
    df.write.format("noop").mode("overwrite").save()
    return time.perf_counter() - start


def parts(spark, lake: str) -> dict[str, DataFrame]:
    """The figures' parts on `lake`, by name, as frames: the whole figures last."""
    frames = dashboard_figures.extract(spark, lake)
    enrolments, attempts = frames["enrolments"], frames["attempts"]
    keys = ["batch_id", "user_id"]
    return {
        "enrolments: read": enrolments,
        "enrolments: read, without the content map": enrolments.drop("content_status"),
        "enrolments: read and shuffled by learner": enrolments.repartition(*keys),
        "enrolments: read, shuffled and sorted": enrolments.repartition(*keys).sortWithinPartitions(*keys),
        "enrolments: one per learner (active_enrolments)": active_enrolments(enrolments),
        "attempts: read": attempts,
        "attempts: the best per assessment (best_attempts)": best_attempts(
            attempts, one_content_each(frames["contents"]).filter(F.col("is_assessment")), frames["batches"]
        ),
        "the figures of every batch": dashboard_figures.transform(**frames)[1],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("lake", help="a lake folder, as benchmarks/night.py generates them")
    parser.add_argument("--repeat", type=int, default=2, help="rounds of every part (default 2)")
    args = parser.parse_args()
    spark = get_session("figures_parts", "local[*]")
    timed = parts(spark, args.lake)
    enrolments, attempts = (timed[f"{t}: read"] for t in ("enrolments", "attempts"))
    print(f"enrolments {enrolments.count():,} rows, attempts {attempts.count():,} rows")
    for round_ in range(1, args.repeat + 1):
        for name, df in timed.items():
            print(f"round {round_}  {seconds(df):6.1f} s  {name}", flush=True)
    spark.stop()


if __name__ == "__main__":
    main()
