"""The night's Spark application alone, as spark-submit runs it: every report type and the figures, one request each.

    .venv/bin/python benchmarks/spark_night.py [--learners 200] [--work DIR] [KEY=VALUE ...]

For comparing Spark settings: run it with each setting in turn, a few pairs, and compare
the medians of their wall and CPU seconds, e.g. adaptive execution on a small lake
(docs/performance.md, "What changed"):

    /usr/bin/time -v .venv/bin/python benchmarks/spark_night.py
    /usr/bin/time -v .venv/bin/python benchmarks/spark_night.py spark.sql.adaptive.enabled=true

The lake (coursedash.lakegen) and the manifests are made in DIR on the first run and
reused; every run builds the reports and the figures again. The application gets the
settings a night gets (coursedash.spark.spark_submit_command: a small lake's among them),
then the KEY=VALUE pairs given here.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the jobs of this checkout

from coursedash.classarchive import training_night
from coursedash.spark import SparkSubmit


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--learners", type=int, default=200, help="the generated lake's learners (default 200)")
    parser.add_argument("--work", default="var/spark-night", help="the lake and the night's folders")
    parser.add_argument("conf", nargs="*", metavar="KEY=VALUE", help="Spark settings for this run")
    args = parser.parse_args()
    if any("=" not in pair for pair in args.conf):
        parser.error("Spark settings are KEY=VALUE pairs")
    work = Path(args.work).resolve() / f"{args.learners}-learners"
    lake, night_args = work / "lake", work / "night-args"
    if not night_args.exists():
        shutil.rmtree(work, ignore_errors=True)
        night_args.parent.mkdir(parents=True)
        night_args.write_text("\n".join(training_night(lake, work, args.learners)), encoding="utf-8")
    for output in ("figures", "progress", "userinfo", "response"):
        shutil.rmtree(work / output, ignore_errors=True)
    conf = dict(pair.split("=", 1) for pair in args.conf)
    logging.basicConfig(level=logging.WARNING)
    quiet = logging.getLogger("spark_night")  # Spark's output; a failure still names its reason
    night = night_args.read_text(encoding="utf-8").splitlines()
    SparkSubmit("jobs/night.py", night, master="local[2]", conf=conf, log=quiet, lake_uri=str(lake)).run()


if __name__ == "__main__":
    main()
