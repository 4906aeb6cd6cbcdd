"""Build the class archive that Spark's JVMs map at start (coursedash.spark.class_archive).

    python -m coursedash.classarchive [--force]

A Spark driver loads about 17,000 classes from Spark's jars before its first query
finishes, and the JVM parses and verifies each of them again at every start. HotSpot's
class data sharing keeps them parsed and verified in an archive file that the JVM maps
into memory instead. This builds one for the Java and the Spark installed here: it runs
a small night of every report type and the dashboard's figures, on a generated lake,
with `-XX:ArchiveClassesAtExit`, so that the archive holds the classes a night loads.
`make` runs it once after installing the requirements, the Dockerfile once in the image;
it takes about a minute. Every later driver, of a night, of `coursedash sync` or of
the tests, then starts in seconds less CPU, and so do a cluster's executors and the
stack's master and worker, which start with the same class path (docs/performance.md,
"A class archive for the driver").

An archive that cannot be built is not an error: Spark starts without it, only slower.
So this warns and exits 0.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
from pathlib import Path

log = logging.getLogger("coursedash.classarchive")


def training_night(lake: Path, work: Path, learners: int = 50) -> list[str]:
    """The arguments of jobs/night.py for a night of every report type, and the figures, on a lake generated at `lake`.

    One request of each type, on one batch; their manifests and output folders in `work`.
    benchmarks/spark_night.py times the same night.
    """
    import pyarrow.parquet as pq

    from coursedash.lakegen import generate_lake
    from coursedash.manifest import Manifest

    generate_lake(lake, learners=learners)
    batches = pq.read_table(lake / "batches", columns=["batch_id", "course_id"]).to_pylist()
    batch = next(b for b in batches if b["batch_id"] and b["course_id"])
    args = ["--lake", str(lake), "--figures", str(work / "figures")]
    for report_type in ("progress", "userinfo", "response"):
        request = {"request_id": f"archive-{report_type}", **batch}
        Manifest(report_type, "2026-01-01", str(lake), [request]).save(work / f"{report_type}.json")
        args += ["--manifest", str(work / f"{report_type}.json"), "--out", str(work / report_type)]
    return args


def build(archive: Path) -> None:
    """Write the archive at `archive`, whole or not at all: a driver may start meanwhile."""
    from coursedash.spark import SparkSubmit

    archive.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="coursedash-classarchive-") as tmp:
        partial = archive.with_name(f".{archive.name}.{os.getpid()}")
        quiet = logging.getLogger("coursedash.classarchive.spark")
        quiet.setLevel(logging.WARNING)  # Spark's output; a failure still names its reason
        lake = Path(tmp) / "lake"
        args = training_night(lake, Path(tmp) / "work")
        conf = {"spark.driver.extraJavaOptions": f"-XX:ArchiveClassesAtExit={partial}"}
        try:
            SparkSubmit("jobs/night.py", args, master="local[2]", conf=conf, log=quiet, lake_uri=str(lake)).run()
            if not partial.is_file():
                raise RuntimeError("the JVM wrote no archive")
            partial.replace(archive)
        finally:
            partial.unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build the class archive that Spark's JVMs map at start.")
    parser.add_argument("--force", action="store_true", help="build it again even if it exists")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from coursedash.spark import class_archive

    archive = class_archive()
    if archive is None:
        log.info("COURSEDASH_SPARK_CLASS_ARCHIVE is empty: no class archive is used")
        return 0
    if archive.is_file() and not args.force:
        log.info("Spark's class archive is in place: %s", archive)
        return 0
    log.info("building Spark's class archive (about a minute, once): %s", archive)
    try:
        build(archive)
    except Exception as e:  # an archive only makes Spark start faster
        log.warning("warning: Spark's class archive could not be built (%s); Spark starts without it, slower", e)
        return 0
    log.info("Spark's class archive built: %d MB", archive.stat().st_size // 2**20)
    return 0


if __name__ == "__main__":
    sys.exit(main())
