"""Reading the lake: explicit schemas, and a clear message when the lake does not match."""

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from jobs.frames import LakeSchemaError, read_table
from schemas.lake import TABLES, arrow_schema
from tests.lakefixtures import write_lake


def test_reads_with_the_documented_schema_across_files_and_partitions(spark, tmp_path):
    # Hive-style partition folders and several files per folder are a lake's normal shape.
    full = arrow_schema("courses")
    schema = full.remove(full.get_field_index("channel"))
    for channel, files in {"org1": [["c1"], ["c2"]], "org2": [["c3"]]}.items():
        folder = tmp_path / "courses" / f"channel={channel}"
        folder.mkdir(parents=True)
        for i, ids in enumerate(files):
            rows = [dict(course_id=c, name=c.upper()) for c in ids]
            pq.write_table(pa.Table.from_pylist(rows, schema=schema), folder / f"part-{i}.parquet")
    df = read_table(spark, str(tmp_path), "courses")
    assert df.schema == TABLES["courses"]
    assert sorted((r.course_id, r.channel) for r in df.collect()) == [("c1", "org1"), ("c2", "org1"), ("c3", "org2")]


def test_missing_column_is_named(spark, tmp_path):
    lake = write_lake(tmp_path, {})
    pq.write_table(pa.table({"user_id": ["u1"], "first_name": ["A"]}), tmp_path / "users" / "part-00000.parquet")
    with pytest.raises(LakeSchemaError) as error:
        read_table(spark, str(lake), "users")
    assert "lake table 'users'" in str(error.value)
    assert "column 'email' is missing (expected string)" in str(error.value)


def test_wrong_type_is_named(spark, tmp_path):
    lake = write_lake(tmp_path, {})
    bad = arrow_schema("assessment_attempts").set(
        arrow_schema("assessment_attempts").get_field_index("total_score"), pa.field("total_score", pa.string())
    )
    pq.write_table(
        pa.Table.from_pylist([dict(user_id="u", total_score="7")], schema=bad),
        tmp_path / "assessment_attempts" / "part-00000.parquet",
    )
    with pytest.raises(LakeSchemaError, match="column 'total_score' is string, expected double"):
        read_table(spark, str(lake), "assessment_attempts")


def test_missing_table_is_named(spark, tmp_path):
    with pytest.raises(LakeSchemaError, match="lake table 'enrolments' cannot be read"):
        read_table(spark, str(tmp_path), "enrolments")
