"""The duplicate rule's complete order (docs/lake.md, "Duplicates"), on rows made for each case."""

import datetime as dt

from pyspark.sql import functions as F

from jobs.frames import dedupe

SCHEMA = "batch_id string, user_id string, enrolled_on timestamp, content_status map<string,int>, note string"
DAY, LATER = dt.datetime(2026, 11, 1, 9), dt.datetime(2026, 11, 2, 9)


def winners(spark, rows, partitions=1):
    df = spark.createDataFrame(rows, SCHEMA).repartition(partitions)
    kept = dedupe(df, ["batch_id", "user_id"], F.col("enrolled_on").desc_nulls_last())
    return sorted(tuple(r) for r in kept.collect())


def test_a_key_of_one_row_keeps_it_whole(spark):
    rows = [
        ("b1", "u1", DAY, {"c1": 2}, "only"),
        ("b1", "u2", None, None, None),
        ("b2", "u1", LATER, {}, "another batch"),
    ]
    assert winners(spark, rows) == sorted(rows)


def test_the_named_order_first(spark):
    rows = [("b1", "u1", DAY, {"c1": 2}, "a"), ("b1", "u1", LATER, {"c1": 0}, "z"), ("b1", "u1", None, None, "a")]
    assert winners(spark, rows) == [("b1", "u1", LATER, {"c1": 0}, "z")]


def test_a_tie_goes_to_the_first_by_every_column_a_map_by_its_sorted_entries(spark):
    # Tied in the key and the named order; only the map tells them apart, then a null map last.
    rows = [
        ("b1", "u1", DAY, {"c2": 0, "c1": 2}, "same"),
        ("b1", "u1", DAY, {"c1": 1, "c2": 9}, "same"),
        ("b1", "u1", DAY, None, "same"),
    ]
    expected = [("b1", "u1", DAY, {"c1": 1, "c2": 9}, "same")]
    for order in (rows, rows[::-1]):
        for partitions in (1, 3):
            assert winners(spark, order, partitions) == expected
