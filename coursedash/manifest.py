"""What passes between the nightly run and a report job: the manifest in, the summary out.

Both are JSON files in the run's work folder. The manifest holds request ids and
batches, never passwords; the summary is written last, so its presence says the
job's staged rows are complete.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

SUMMARY_FILE = "_SUMMARY.json"
SKIPPED_FILE = "skipped.json"  # the dashboard figures job's rows it could not use, by reason
FIGURES_LAKE_FILE = "lake.json"  # the lake tables that changed while the dashboard figures read them
FIGURES_KNOWN_FILE = "known.json"  # the fingerprints of the figures the dashboard holds, by batch id


@dataclass(frozen=True)
class Manifest:
    report_type: str
    report_date: str
    lake_uri: str
    requests: list[dict]  # request_id, course_id, batch_id

    @classmethod
    def load(cls, path: str | Path) -> Manifest:
        return cls(**json.loads(Path(path).read_text(encoding="utf-8")))

    def save(self, path: str | Path) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(asdict(self), indent=1), encoding="utf-8")

    @property
    def batch_ids(self) -> list[str]:
        return sorted({r["batch_id"] for r in self.requests})

    @property
    def course_ids(self) -> list[str]:
        return sorted({r["course_id"] for r in self.requests})


def read_summary(out: str | Path) -> dict | None:
    path = Path(out) / SUMMARY_FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def write_summary(out: str | Path, summary: dict) -> None:
    path = Path(out) / SUMMARY_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(summary, indent=1, sort_keys=True), encoding="utf-8")
    tmp.replace(path)


def clear_summary(out: str | Path) -> None:
    (Path(out) / SUMMARY_FILE).unlink(missing_ok=True)
