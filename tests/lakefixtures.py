"""Hand-written lake rows for tests: dicts in, frames or Parquet tables out, the lake's schemas."""

import datetime as dt
from pathlib import Path

from schemas.lake import TABLES, arrow_schema


def ts(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


def d(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


def _complete(table: str, rows: list[dict]) -> list[dict]:
    names = TABLES[table].fieldNames()
    for row in rows:
        unknown = set(row) - set(names)
        assert not unknown, f"{table} has no column {unknown}"
    return [{name: row.get(name) for name in names} for row in rows]


def frame(spark, table: str, rows: list[dict]):
    return spark.createDataFrame([tuple(r.values()) for r in _complete(table, rows)], TABLES[table])


def write_lake(root: Path, tables: dict[str, list[dict]], split: bool = False) -> Path:
    """Write each table as Parquet, as the lake keeps it; tables not given are empty.

    `split`: the same rows laid out otherwise, as another upstream job might: in reverse
    order, over two files, and the tables with a batch_id in Hive partitions by batch.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    for table in TABLES:
        folder = root / table
        folder.mkdir(parents=True, exist_ok=True)
        rows = _complete(table, tables.get(table, []))
        schema = arrow_schema(table)
        data = pa.Table.from_pylist(
            [{k: (list(v.items()) if isinstance(v, dict) else v) for k, v in r.items()} for r in rows],
            schema=schema,
        )
        if not split:
            pq.write_table(data, folder / "part-00000.parquet")
            continue
        data = data.take(list(reversed(range(data.num_rows))))
        half = data.num_rows // 2
        for i, part in enumerate((data.slice(0, half), data.slice(half))):
            if "batch_id" in schema.names and table != "batches":
                pq.write_to_dataset(
                    part, folder, partition_cols=["batch_id"], basename_template=f"part-{i}-{{i}}.parquet"
                )
            else:
                pq.write_table(part, folder / f"part-{i}.parquet")
    return root
